package main

import (
	"fmt"
	"strings"
	"testing"
)

const notesModule = `schema "tenant" {}
table "notes" {
  schema = schema.tenant
  column "body" {
    type = text
  }
%s}
`

// reconcile --all stages a change: a bad one halts after --max-failures and holds the rest,
// which tenant list shows; a fixed module rolls out; bad flags change nothing.
func TestReconcileAllStagedRollout(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.writeModule("notes", fmt.Sprintf(notesModule, ""))
	// The first command on a new database publishes generation 1 from its module files.
	contains(t, "publish", c.ok("module", "publish", "-m", "notes").stdout, "Nothing to publish: the module files are generation 1")
	for _, s := range []string{"a1", "a2", "a3", "a4", "a5"} {
		c.ok("tenant", "create", s, "--modules", "notes")
		c.sql(fmt.Sprintf(`INSERT INTO tenant_%s.notes (body) VALUES ('x')`, s))
	}
	c.writeModule("notes", fmt.Sprintf(notesModule, "  column \"n\" {\n    type    = integer\n    default = sql(\"1 / 0\")\n  }\n"))
	c.expect(2, "--canary must be 0 or more", "reconcile", "--all", "--canary", "-1")
	c.expect(2, "--resume", "reconcile", "a1", "--resume")
	c.expect(2, "--max-failures must be 0 or more", "daemon", "--max-failures", "-2")
	if n := c.count(`SELECT count(*) FROM erpctl.rollouts`); n != 0 {
		t.Fatalf("bad flags recorded %d rollouts", n)
	}
	r := c.expect(1, "rollout 1 halted in stage all after 1 failed tenant (its budget: 1)", "reconcile", "--all", "--publish", "--canary", "2", "--max-failures", "1")
	contains(t, "halted pass", r.stdout, "1 failed", "4 held", "rollout 1: halted, 0 of 5 tenants applied, 1 failed, 4 held")
	list := c.ok("tenant", "list").stdout
	if strings.Count(list, "(rollout halted)") != 4 {
		t.Fatalf("tenant list does not show the held tenants:\n%s", list)
	}
	if n := c.count(`SELECT count(*) FROM information_schema.columns WHERE column_name = 'n' AND table_name = 'notes'`); n != 0 {
		t.Fatalf("the bad change reached %d tenants", n)
	}
	c.writeModule("notes", fmt.Sprintf(notesModule, "  column \"n\" {\n    type    = integer\n    default = 0\n  }\n"))
	r = c.ok("reconcile", "--all", "--publish")
	contains(t, "fixed pass", r.stdout, "Published module generation 3", "5 applied", "rollout 2: done, 5 of 5 tenants applied, 0 failed, 0 held, 3 waves")
	if strings.Contains(c.ok("tenant", "list").stdout, "halted") {
		t.Fatal("tenants still shown held after the fix")
	}
}

// module show lists an enum column's values.
func TestModuleShowEnum(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.writeModule("sales", `schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = ["draft", "shipped"]
}
table "orders" {
  schema = schema.tenant
  column "status" {
    type = enum.order_status
  }
}
`)
	contains(t, "module show", c.ok("module", "show", "sales").stdout, "order_status", "one of draft, shipped")
	contains(t, "module show -o json", c.ok("module", "show", "sales", "-o", "json").stdout, `"choices": [`, `"kind": "choice"`)
}
