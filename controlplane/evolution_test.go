package controlplane_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// crmV1 is a module whose later versions rename things.
const crmV1 = `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "notes" {
    type = text
    null = true
  }
  index "contacts_email_idx" {
    columns = [column.email]
  }
}
`

// crmV2 renames contacts to people, notes to remarks and the index, and declares how.
const crmV2 = `schema "tenant" {}
table "people" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "remarks" {
    type = text
    null = true
  }
  index "people_email_idx" {
    columns = [column.email]
  }
}
rename "table" {
  from = "contacts"
  to   = "people"
}
rename "column" {
  table = "people"
  from  = "notes"
  to    = "remarks"
}
rename "index" {
  table = "people"
  from  = "contacts_email_idx"
  to    = "people_email_idx"
}
`

// rowsOf lists a table's rows as "col1|col2|…" text, by id.
func rowsOf(e *cptest.Env, table string, cols ...string) []string {
	e.T.Helper()
	var parts []string
	for _, c := range cols {
		parts = append(parts, "coalesce("+c+"::text, '<null>')")
	}
	return e.Strings(`SELECT ` + strings.Join(parts, ` || '|' || `) + ` FROM ` + table + ` ORDER BY id`)
}

func TestDeclaredRenamesKeepEveryValue(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		e.WriteModule("crm", crmV1)
		e.Create("acme")
		e.Create("globex")
		e.Exec(`INSERT INTO tenant_acme.contacts (email, notes) VALUES ('a@x', 'first'), ('b@x', NULL), ('c@x', 'third')`)
		before := rowsOf(e, "tenant_acme.contacts", "id", "email", "notes", "created_at")

		e.WriteModule("crm", crmV2)
		plan := reconcileAll(t, e, controlplane.ReconcileOptions{DryRun: true})
		for _, s := range []string{"acme", "globex"} {
			r := plan.Result(s)
			sql := strings.Join(r.SQL, "\n")
			if r.Action != controlplane.ActionPlanned || len(r.Destructive) != 0 ||
				!strings.Contains(sql, `ALTER TABLE "contacts" RENAME TO "people"`) ||
				!strings.Contains(sql, `RENAME COLUMN "notes" TO "remarks"`) ||
				!strings.Contains(sql, `ALTER INDEX "contacts_email_idx" RENAME TO "people_email_idx"`) ||
				strings.Contains(sql, "DROP") {
				t.Fatalf("plan of %s: %+v", s, r)
			}
		}
		pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
		if pass.Counts[controlplane.ActionApplied] != 2 {
			t.Fatalf("rename pass: %+v", pass.Results)
		}
		if got := rowsOf(e, "tenant_acme.people", "id", "email", "remarks", "created_at"); !slices.Equal(got, before) {
			t.Fatalf("rows after the rename:\n%v\nbefore:\n%v", got, before)
		}
		if n := e.Count(`SELECT count(*) FROM tenant_globex.people`); n != 0 {
			t.Fatalf("globex gained %d rows", n)
		}
		for _, s := range []string{"acme", "globex"} {
			if tbls := e.Tables("tenant_" + s); slices.Contains(tbls, "contacts") {
				t.Fatalf("%s still has contacts: %v", s, tbls)
			}
			e.DebugHealthy(s)
		}
		// The hints stay: a tenant made now gets the new names directly, and nothing is pending.
		e.Create("initech")
		pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
		if pass.Counts[controlplane.ActionUnchanged] != 3 || len(inspected(pass)) != 0 {
			t.Fatalf("pass after the rename: %+v", pass.Results)
		}
		r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("initech"), controlplane.ReconcileOptions{DryRun: true})
		if err != nil || len(r.SQL) != 0 {
			t.Fatalf("initech plan with the hints in place: %+v %v", r, err)
		}
	})
}

func TestRenameOfAnObjectNoModuleDeclaresIsRefused(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	for _, bad := range []struct{ src, want string }{
		{strings.Replace(crmV2, `to    = "remarks"`, `to    = "nothing"`, 1), `declares no column "nothing"`},
		{strings.Replace(crmV2, `  to   = "people"`, `  to   = "ghosts"`, 1), `declares no table "ghosts"`},
		{crmV2 + "rename \"view\" {\n  from = \"a\"\n  to = \"b\"\n}\n", `rename "table", "column" or "index"`},
		{crmV2 + "rename \"column\" {\n  from = \"a\"\n  to = \"b\"\n}\n", `needs table`},
	} {
		if err := writeModuleErr(e, "crm", bad.src); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "crm.hcl:") {
			t.Errorf("module with a bad rename: %v, want %q with file and line", err, bad.want)
		}
	}
	// The last good modules stay in use: nothing changes.
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 2 || !slices.Contains(e.Tables("tenant_acme"), "contacts") {
		t.Fatalf("pass after refused modules: %+v", pass.Results)
	}
}

// writeModuleErr writes a module file and reloads the modules, returning the load error.
func writeModuleErr(e *cptest.Env, name, src string) error {
	e.T.Helper()
	if err := os.WriteFile(filepath.Join(e.ModulesDir, name+".hcl"), []byte(src), 0o644); err != nil {
		e.T.Fatal(err)
	}
	return e.P.ReloadModules()
}
