package main

import (
	"strings"
	"testing"
)

// plan prints everything its JSON holds (a blocked plan's safe and destructive statements, the
// rows that fail a data check, the values a destructive conversion would not convert) and says
// with its exit status what reconcile would do; a second reconcile of blocked tenants says they
// are still blocked and exits 1.
func TestPlanAndReconcileSayWhatTheyKnow(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.writeModule("ledger", `schema "tenant" {}
table "entries" {
  schema = schema.tenant
  column "code" {
    type = text
  }
  column "memo" {
    type = text
    null = true
  }
}
`)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.sql(`INSERT INTO tenant_acme.entries (code, memo) VALUES ('12', 'a'), ('x9', 'b')`)
	c.sql(`INSERT INTO tenant_globex.entries (code, memo) VALUES ('7', 'c')`)
	if r := c.run("plan", "--all", "--detailed-exitcode"); r.code != 0 {
		t.Fatalf("plan with nothing to do: exit %d\n%s", r.code, r.stdout)
	}
	// A new column (safe), memo dropped (destructive) and code to integer (a conversion acme's
	// 'x9' fails).
	c.writeModule("ledger", `schema "tenant" {}
table "entries" {
  schema = schema.tenant
  column "code" {
    type = integer
  }
  column "amount" {
    type = integer
    null = true
  }
}
`)
	r := c.run("plan", "--all")
	if r.code != 1 {
		t.Fatalf("plan predicting refusals: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkErrorMessage(t, r, "reconcile would refuse 2 tenants")
	contains(t, "plan", r.stdout, `ADD COLUMN "amount"`, `DROP COLUMN "memo"`, "-- destructive", "! table entries: column code does not convert to the new type in 1 row")
	if r := c.run("plan", "--all", "--detailed-exitcode"); r.code != 4 {
		t.Fatalf("plan --detailed-exitcode predicting refusals: exit %d", r.code)
	}

	// Published: reconcile blocks both; a second reconcile says they are still blocked.
	c.ok("module", "publish", "--allow-destructive")
	c.expect(1, "blocked", "reconcile", "--all")
	r = c.expect(1, "2 tenants are blocked", "reconcile", "--all")
	contains(t, "second reconcile", r.stdout, "2 still blocked", "still blocked: nothing changed since")
	if strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("blocked tenants reported unchanged:\n%s", r.stdout+r.stderr)
	}
	for s, n := range map[string]int{"acme": 2, "globex": 1} {
		if got := c.count(`SELECT count(*) FROM tenant_` + s + `.entries WHERE memo IS NOT NULL`); got != n {
			t.Fatalf("%s's rows: %d, want %d", s, got, n)
		}
	}

	// Changes that would all apply: exit 3 with --detailed-exitcode, 0 without.
	c.writeModule("ledger", `schema "tenant" {}
table "entries" {
  schema = schema.tenant
  column "code" {
    type = text
  }
  column "memo" {
    type = text
    null = true
  }
  column "note" {
    type = text
    null = true
  }
}
`)
	c.ok("module", "publish")
	if r := c.run("plan", "--all", "--detailed-exitcode"); r.code != 3 {
		t.Fatalf("plan --detailed-exitcode with changes pending: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.ok("plan", "--all")
}
