package controlplane_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

const ledgerV1 = `schema "tenant" {}
table "entries" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "notes" {
    type = text
    null = true
  }
  column "product_id" {
    type = bigint
    null = true
  }
}
`

// schemaState is everything of a tenant schema a refused change must leave as it was.
func schemaState(e *cptest.Env, schemaName string) []string {
	e.T.Helper()
	return e.Strings(`SELECT c.relname || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL SELECT conrelid::regclass::text || ' ' || conname FROM pg_constraint WHERE connamespace = $1::regnamespace
		UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`, schemaName)
}

func TestDataDependentChangesApplyOnlyWhereTheRowsPass(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		from, to    string // the module edit
		good, bad   string // rows of the tenant that passes and of the one that does not
		want        string // in the refused tenant's message
		rows        int64
		destructive bool
	}{
		{name: "set not null", from: "    type = text\n    null = true\n  }\n  column \"product_id\"", to: "    type = text\n    null = false\n  }\n  column \"product_id\"",
			good: `('a@x', 'n', NULL)`, bad: `('a@x', NULL, NULL), ('b@x', NULL, NULL), ('c@x', 'n', NULL)`,
			want: "table entries: column notes is made NOT NULL, and is NULL in 2 rows", rows: 2},
		{name: "add not null without default", from: "  column \"product_id\"", to: "  column \"phone\" {\n    type = text\n  }\n  column \"product_id\"",
			good: ``, bad: `('a@x', NULL, NULL)`,
			want: "table entries: new NOT NULL column phone has no default, and would have no value in 1 row", rows: 1},
		{name: "unique index", from: "  column \"product_id\"", to: "  index \"entries_email_key\" {\n    unique  = true\n    columns = [column.email]\n  }\n  column \"product_id\"",
			good: `('a@x', NULL, NULL), ('b@x', NULL, NULL)`, bad: `('a@x', NULL, NULL), ('a@x', NULL, NULL), ('a@x', NULL, NULL), ('b@x', NULL, NULL)`,
			want: "table entries: column email is made unique, and repeats a value in 2 rows", rows: 2},
		{name: "check", from: "  column \"product_id\"", to: "  check \"entries_email_check\" {\n    expr = \"(email LIKE '%@%')\"\n  }\n  column \"product_id\"",
			good: `('a@x', NULL, NULL)`, bad: `('a@x', NULL, NULL), ('nobody', NULL, NULL)`,
			want: "table entries: check entries_email_check fails in 1 row", rows: 1},
		{name: "foreign key", from: "    type = bigint\n    null = true\n  }\n", to: "    type = bigint\n    null = true\n  }\n  foreign_key \"entries_product_id_fkey\" {\n    columns     = [column.product_id]\n    ref_columns = [table.products.column.id]\n  }\n",
			good: `('a@x', NULL, NULL)`, bad: `('a@x', NULL, 4242), ('b@x', NULL, NULL)`,
			want: "table entries: column product_id refers to rows that do not exist, in 1 row", rows: 1},
		{name: "text to integer", from: "    type = text\n    null = true\n  }\n  column \"product_id\"", to: "    type = integer\n    null = true\n  }\n  column \"product_id\"",
			good: `('a@x', '12', NULL), ('b@x', NULL, NULL)`, bad: `('a@x', '12', NULL), ('b@x', 'twelve', NULL), ('c@x', '1e99', NULL)`,
			want: "table entries: column notes does not convert to the new type in 2 rows", rows: 2, destructive: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := cptest.New(t)
			e.WriteModule("ledger", ledgerV1)
			e.Create("good")
			e.Create("bad")
			if c.good != "" {
				e.Exec(`INSERT INTO tenant_good.entries (email, notes, product_id) VALUES ` + c.good)
			}
			e.Exec(`INSERT INTO tenant_bad.entries (email, notes, product_id) VALUES ` + c.bad)
			badState, badRows := schemaState(e, "tenant_bad"), rowsOf(e, "tenant_bad.entries", "id", "email", "notes", "product_id", "updated_at")
			goodRows := rowsOf(e, "tenant_good.entries", "id", "email", "notes", "product_id")
			src := strings.Replace(ledgerV1, c.from, c.to, 1)
			if src == ledgerV1 {
				t.Fatal("the module edit did not apply")
			}
			e.WriteModule("ledger", src)
			o := controlplane.ReconcileOptions{AllowDestructive: c.destructive}

			plan := o
			plan.DryRun = true
			pass := reconcileAll(t, e, plan)
			if r := pass.Result("bad"); r.Action != controlplane.ActionBlocked || len(r.DataChecks) != 1 ||
				r.DataChecks[0].Rows != c.rows || !strings.Contains(r.DataChecks[0].Message, c.want) || r.DataChecks[0].Code == "" {
				t.Fatalf("plan of bad: %+v", r)
			}
			if r := pass.Result("good"); r.Action != controlplane.ActionPlanned || len(r.DataChecks) != 0 || len(r.DataDependent) != 1 || !strings.Contains(r.DataDependent[0], ": ") {
				t.Fatalf("plan of good: %+v", r)
			}

			pass = reconcileAll(t, e, o)
			if r := pass.Result("good"); r.Action != controlplane.ActionApplied {
				t.Fatalf("good: %+v", r)
			}
			if r := pass.Result("bad"); r.Action != controlplane.ActionBlocked || len(r.DataChecks) != 1 {
				t.Fatalf("bad: %+v", r)
			}
			tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug("bad"))
			if err != nil || tn.Status != controlplane.StatusBlocked || tn.Reason != controlplane.ReasonDataCheckFailed ||
				tn.LastError == nil || !strings.Contains(*tn.LastError, c.want) {
				t.Fatalf("bad after reconcile: %+v %v", tn, err)
			}
			if got := schemaState(e, "tenant_bad"); !slices.Equal(got, badState) {
				t.Fatalf("refused tenant's schema changed:\n%v\nwas\n%v", got, badState)
			}
			if got := rowsOf(e, "tenant_bad.entries", "id", "email", "notes", "product_id", "updated_at"); !slices.Equal(got, badRows) {
				t.Fatalf("refused tenant's rows changed:\n%v\nwere\n%v", got, badRows)
			}
			if got := rowsOf(e, "tenant_good.entries", "id", "email", "notes", "product_id"); !slices.Equal(got, goodRows) {
				t.Fatalf("good tenant's rows changed:\n%v\nwere\n%v", got, goodRows)
			}
			e.DebugHealthy("good")
			// Still refused on the next pass, without an inspection; once its rows are fixed,
			// a reconcile of the tenant applies the change.
			pass = reconcileAll(t, e, o)
			if r := pass.Result("bad"); r.Action != controlplane.ActionUnchanged && r.Action != controlplane.ActionBlocked {
				t.Fatalf("bad on the next pass: %+v", r)
			}
			e.Exec(`DELETE FROM tenant_bad.entries`)
			r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("bad"), o)
			if err != nil || r.Action != controlplane.ActionApplied {
				t.Fatalf("bad with its rows fixed: %+v %v", r, err)
			}
			e.DebugHealthy("bad")
		})
	}
}

// A foreign key that a repair adds back over a table the repair makes anew (products dropped by
// hand with CASCADE) is data-checked like any other: the new table is empty, so every row that
// refers to it would fail the key. The tenant with such rows is Blocked with their count and
// keeps everything; the one without them is repaired.
func TestRepairedForeignKeyIsDataChecked(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Fill("tenant_acme", "acme", 7)
	e.Fill("tenant_globex", "globex", 3)
	e.Exec(`DELETE FROM tenant_globex.stock_items`)
	e.Exec(`DROP TABLE tenant_acme.products CASCADE`)
	e.Exec(`DROP TABLE tenant_globex.products CASCADE`)
	acmeState, acmeRows := schemaState(e, "tenant_acme"), e.Checksums("tenant_acme")
	globexRows := e.Checksums("tenant_globex")
	want := "table stock_items: column product_id refers to rows that do not exist, in 7 rows"

	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if r := pass.Result("acme"); r.Action != controlplane.ActionBlocked || r.Error != "" || len(r.DataChecks) != 1 || r.DataChecks[0].Message != want {
		t.Fatalf("repair of acme: %+v", r)
	}
	if r := pass.Result("globex"); r.Action != controlplane.ActionApplied {
		t.Fatalf("repair of globex: %+v", r)
	}
	for _, o := range []controlplane.ReconcileOptions{{}, {AllowDestructive: true}} {
		r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), o)
		if err != nil || r.Action != controlplane.ActionBlocked || len(r.DataChecks) != 1 || r.DataChecks[0].Rows != 7 {
			t.Fatalf("reconcile acme %+v: %+v %v", o, r, err)
		}
	}
	tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug("acme"))
	if err != nil || tn.Status != controlplane.StatusBlocked || tn.Reason != controlplane.ReasonDataCheckFailed || tn.LastError == nil || !strings.Contains(*tn.LastError, want) {
		t.Fatalf("acme: %+v %v", tn, err)
	}
	if got := schemaState(e, "tenant_acme"); !slices.Equal(got, acmeState) || e.Checksums("tenant_acme") != acmeRows {
		t.Fatalf("the refused repair changed acme:\n%v\nwas\n%v", got, acmeState)
	}
	e.DebugHealthy("globex")
	if got := e.Checksums("tenant_globex"); got != strings.Replace(globexRows, "stock_items", "products 0 \nstock_items", 1) {
		t.Fatalf("globex's rows after its repair:\n%s\nwere\n%s", got, globexRows)
	}

	// With its orphans gone, acme is repaired too.
	e.Exec(`DELETE FROM tenant_acme.stock_items`)
	if r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{}); err != nil || r.Action != controlplane.ActionApplied {
		t.Fatalf("acme without orphans: %+v %v", r, err)
	}
	e.DebugHealthy("acme")
}
