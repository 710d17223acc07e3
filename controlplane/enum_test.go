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

// salesModule declares an enum and a table that uses it, with the given values and default.
func salesModule(values, def string) string {
	return `schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = [` + values + `]
}
table "orders" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "status" {
    type    = enum.order_status
    default = "` + def + `"
  }
}
`
}

// enumLabels lists the labels of enum order_status in schema s, in order.
func enumLabels(e *cptest.Env, s string) []string {
	e.T.Helper()
	return e.Strings(`SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
		JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = 'order_status' ORDER BY e.enumsortorder`, s)
}

func TestEnumRollsOutPerTenant(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("sales", salesModule(`"draft", "confirmed"`, "draft"))
	e.Create("acme")
	e.Create("globex")
	e.Create("initech")
	e.Exec(`INSERT INTO tenant_acme.orders (ref, status) VALUES ('a1', 'confirmed'), ('a2', DEFAULT)`)
	for _, s := range []string{"tenant_acme", "tenant_globex", "tenant_initech"} {
		if got := enumLabels(e, s); !slices.Equal(got, []string{"draft", "confirmed"}) {
			t.Fatalf("%s: enum labels %v", s, got)
		}
	}
	// Each tenant has its own type: dropping one leaves the others.
	if n := e.Count(`SELECT count(DISTINCT t.oid) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE t.typname = 'order_status' AND n.nspname LIKE 'tenant\_%'`); n != 3 {
		t.Fatalf("%d order_status types, want one per tenant", n)
	}
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 3 || len(inspected(pass)) != 0 {
		t.Fatalf("no-op pass with enums: %+v, inspected %v", pass.Counts, inspected(pass))
	}

	// A new value between two others, then a new value that the new default uses at once.
	e.WriteModule("sales", salesModule(`"draft", "pending", "confirmed"`, "draft"))
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionApplied] != 3 || len(inspected(pass)) != 1 {
		t.Fatalf("add a value: %+v, inspected %v", pass.Counts, inspected(pass))
	}
	if sql := pass.Result("globex").SQL; len(sql) != 1 || !strings.Contains(sql[0], `ADD VALUE 'pending' AFTER 'draft'`) {
		t.Fatalf("plan of a new value: %q", sql)
	}
	e.WriteModule("sales", salesModule(`"draft", "pending", "confirmed", "shipped"`, "shipped"))
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionApplied] != 3 || len(inspected(pass)) != 1 {
		t.Fatalf("add a value the new default uses: %+v, inspected %v: %+v", pass.Counts, inspected(pass), pass.Results)
	}
	want := []string{"draft", "pending", "confirmed", "shipped"}
	for _, s := range []string{"tenant_acme", "tenant_globex", "tenant_initech"} {
		if got := enumLabels(e, s); !slices.Equal(got, want) {
			t.Fatalf("%s: enum labels %v, want %v", s, got, want)
		}
	}
	if got := e.Strings(`SELECT ref || '=' || status FROM tenant_acme.orders ORDER BY ref`); !slices.Equal(got, []string{"a1=confirmed", "a2=draft"}) {
		t.Fatalf("acme's rows changed: %v", got)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.orders`) + e.Count(`SELECT count(*) FROM tenant_initech.orders`); n != 0 {
		t.Fatalf("rows crossed tenants: %d", n)
	}
	e.Exec(`INSERT INTO tenant_globex.orders (ref) VALUES ('g1')`)
	if got := e.Strings(`SELECT status::text FROM tenant_globex.orders`); !slices.Equal(got, []string{"shipped"}) {
		t.Fatalf("new default: %v", got)
	}
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 3 || len(inspected(pass)) != 0 {
		t.Fatalf("no-op pass after enum changes: %+v, inspected %v", pass.Counts, inspected(pass))
	}

	// A value added by hand is drift the fingerprint sees; erpctl leaves it alone.
	e.Exec(`ALTER TYPE tenant_initech.order_status ADD VALUE 'lost'`)
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if got := inspected(pass); !slices.Equal(got, []string{"initech"}) {
		t.Fatalf("drifted enum: inspected %v, want initech", got)
	}
	if r := pass.Result("initech"); r.Status != controlplane.StatusReady || len(r.Unmanaged) != 1 || !strings.Contains(r.Unmanaged[0], `"lost"`) {
		t.Fatalf("drifted enum: %+v", r)
	}
	if got := enumLabels(e, "tenant_acme"); !slices.Equal(got, want) {
		t.Fatalf("drift in initech reached acme: %v", got)
	}
	rep := e.DebugHealthy("initech")
	found := false
	for _, tr := range rep.Tables {
		if tr.Table == "enum order_status" {
			found = tr.Module == "sales" && tr.Status == "ok" && strings.Contains(tr.Details, `value "lost" no longer declared`)
		}
	}
	if !found {
		t.Fatalf("debug tables does not report the extra enum value: %+v", rep.Tables)
	}
}

func TestEnumBadValuesChangeNothing(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("sales", salesModule(`"draft", "confirmed"`, "draft"))
	e.Create("acme")
	e.Create("globex")
	for _, c := range []struct{ values, want string }{
		{`"draft", "it's"`, `sales.hcl:2: enum "order_status": value "it's": quotes`},
		{`"draft", "draft"`, `value "draft" is listed twice`},
		{`"draft", ""`, `value "" must be 1 to 63 bytes long`},
		{`"draft", 3`, `values must be a non-empty list of strings`},
	} {
		src := salesModule(c.values, "draft")
		if err := os.WriteFile(filepath.Join(e.ModulesDir, "sales.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		err := e.P.ReloadModules()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("values %s: error %v, want %q", c.values, err, c.want)
		}
		pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
		if pass.Counts[controlplane.ActionUnchanged] != 2 {
			t.Fatalf("values %s: the last good modules changed something: %+v", c.values, pass.Counts)
		}
	}
	// A dropped value is left alone, said so, and applies nothing.
	e.WriteModule("sales", salesModule(`"draft"`, "draft"))
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if got := inspected(pass); len(got) != 1 || !strings.Contains(strings.Join(pass.Result(got[0]).Unmanaged, " "), `value "confirmed" no longer declared`) {
		t.Fatalf("dropped enum value: %+v", pass.Results)
	}
	for _, slug := range []string{"acme", "globex"} {
		if r := pass.Result(slug); len(r.SQL) != 0 {
			t.Fatalf("%s: dropped enum value: %+v", slug, r)
		}
		tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slug))
		if err != nil || tn.Status != controlplane.StatusReady {
			t.Fatalf("%s: %+v %v", slug, tn, err)
		}
		if got := enumLabels(e, "tenant_"+slug); !slices.Equal(got, []string{"draft", "confirmed"}) {
			t.Fatalf("%s: labels %v", slug, got)
		}
	}
}
