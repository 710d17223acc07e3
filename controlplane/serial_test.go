package controlplane_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// The steps of Atlas's column-serial case (internal/integration/testdata/postgres in Atlas's
// repository), as an erpctl module: serial columns made, then their sequences dropped, their
// type changed, or both.
const (
	serialV1 = `schema "tenant" {}
table "t" {
  schema = schema.tenant
  column "x" {
    type = smallserial
  }
  column "y" {
    type = serial
  }
  column "z" {
    type = bigserial
  }
}
`
	serialV2 = `schema "tenant" {}
table "t" {
  schema = schema.tenant
  column "x" {
    type = smallint
  }
  column "y" {
    type = bigint
  }
  column "z" {
    type = serial
  }
}
`
)

// serialColumns is what psql's \d shows of table t's columns x, y and z, with the schema's
// name taken out of the defaults.
func serialColumns(e *cptest.Env, schemaName string) []string {
	e.T.Helper()
	return e.Strings(`SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' ' ||
		coalesce(replace(pg_get_expr(d.adbin, d.adrelid), $1 || '.', ''), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = ($1 || '.t')::regclass AND a.attname IN ('x', 'y', 'z') ORDER BY a.attname`, schemaName)
}

// Atlas's column-serial steps 1 and 2 apply to two tenants with rows and converge. Step 2 narrows
// z from bigint to integer: a destructive change whose data check counts the values that do not
// fit an integer (not "serial", which is no type), so only the tenant holding one is refused.
func TestAtlasColumnSerialCases(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("counters", serialV1)
	e.Create("acme", "counters")
	e.Create("globex", "counters")
	want1 := []string{
		"x smallint true nextval('t_x_seq'::regclass)",
		"y integer true nextval('t_y_seq'::regclass)",
		"z bigint true nextval('t_z_seq'::regclass)",
	}
	for _, s := range []string{"tenant_acme", "tenant_globex"} {
		if got := serialColumns(e, s); !slices.Equal(got, want1) {
			t.Fatalf("%s after step 1:\n%v\nwant\n%v", s, got, want1)
		}
	}
	e.Exec(`INSERT INTO tenant_acme.t DEFAULT VALUES`)
	e.Exec(`INSERT INTO tenant_acme.t DEFAULT VALUES`)
	e.Exec(`INSERT INTO tenant_globex.t (z) VALUES (3000000000)`)
	acme, globex := rowsOf(e, "tenant_acme.t", "id", "x", "y", "z"), rowsOf(e, "tenant_globex.t", "id", "x", "y", "z")
	if pass := reconcileAll(t, e, controlplane.ReconcileOptions{}); pass.Result("acme").Action != controlplane.ActionUnchanged {
		t.Fatalf("a pass after step 1: %+v", pass.Result("acme"))
	}

	e.WriteModule("counters", serialV2)
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionBlocked || r.Error != "" {
			t.Fatalf("step 2 without --allow-destructive, %s: %+v", s, r)
		}
	}
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{AllowDestructive: true})
	if r := pass.Result("acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("step 2, acme: %+v", r)
	}
	r := pass.Result("globex")
	if r.Action != controlplane.ActionBlocked || len(r.DataChecks) != 1 || r.DataChecks[0].Rows != 1 ||
		!strings.Contains(r.DataChecks[0].Message, "table t: column z does not convert to the new type in 1 row") {
		t.Fatalf("step 2, globex: %+v", r)
	}
	want2 := []string{"x smallint true ", "y bigint true ", "z integer true nextval('t_z_seq'::regclass)"}
	if got := serialColumns(e, "tenant_acme"); !slices.Equal(got, want2) {
		t.Fatalf("acme after step 2:\n%v\nwant\n%v", got, want2)
	}
	if got := serialColumns(e, "tenant_globex"); !slices.Equal(got, want1) {
		t.Fatalf("globex, refused, changed:\n%v", got)
	}
	if got := rowsOf(e, "tenant_acme.t", "id", "x", "y", "z"); !slices.Equal(got, acme) {
		t.Fatalf("acme's rows: %v, were %v", got, acme)
	}
	if got := rowsOf(e, "tenant_globex.t", "id", "x", "y", "z"); !slices.Equal(got, globex) {
		t.Fatalf("globex's rows: %v, were %v", got, globex)
	}
	e.DebugHealthy("acme")
	if n := e.Count(`SELECT count(*) FROM pg_class WHERE relname IN ('t_x_seq', 't_y_seq') AND relnamespace = 'tenant_acme'::regnamespace`); n != 0 {
		t.Fatalf("acme keeps %d sequences of dropped serials", n)
	}

	// With the value that does not fit gone, globex converges too, and a next pass has nothing to do.
	e.Exec(`UPDATE tenant_globex.t SET z = 7`)
	if r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("globex"), controlplane.ReconcileOptions{AllowDestructive: true}); err != nil || r.Action != controlplane.ActionApplied {
		t.Fatalf("globex with its row fixed: %+v %v", r, err)
	}
	if got := serialColumns(e, "tenant_globex"); !slices.Equal(got, want2) {
		t.Fatalf("globex after step 2:\n%v\nwant\n%v", got, want2)
	}
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionUnchanged {
			t.Fatalf("a pass after step 2, %s: %+v", s, r)
		}
	}
}
