package controlplane_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/modules"
)

const unitsModule = `schema "tenant" {}
table "units" {
  schema = schema.tenant
  column "code" {
    type = text
  }
  column "name" {
    type = text
  }
  column "factor" {
    type = numeric
    null = true
  }
  index "units_code_key" {
    unique  = true
    columns = [column.code]
  }
}
seed "units" {
  rows = [
    { code = "pcs", name = "Pieces", factor = 1 },
    { code = "kg", name = "Kilogram", factor = 1000.5 },
  ]
}
`

func units(e *cptest.Env, slug string) string {
	e.T.Helper()
	return strings.Join(e.Strings(`SELECT code||'='||name||'/'||coalesce(factor::text, '-') FROM tenant_`+slug+`.units ORDER BY code`), ",")
}

// Seed rows reach every tenant once: at create, and when a seed is added later; a tenant that
// deleted or edited one keeps its change, and an import brings the file's rows, not the seeds.
func TestSeedRowsOncePerTenant(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("units", unitsModule)
	e.Create("acme")
	e.Create("globex")
	for _, s := range []string{"acme", "globex"} {
		if got := units(e, s); got != "kg=Kilogram/1000.5,pcs=Pieces/1" {
			t.Fatalf("%s units at create: %s", s, got)
		}
	}
	e.Exec(`DELETE FROM tenant_acme.units WHERE code = 'pcs'`)
	e.Exec(`UPDATE tenant_acme.units SET name = 'Kilo' WHERE code = 'kg'`)
	e.Exec(`INSERT INTO tenant_globex.units (code, name) VALUES ('box', 'Globex box')`)

	// A seed row added to the module: every tenant gets that row, and only that one.
	e.WriteModule("units", strings.Replace(unitsModule, `factor = 1000.5 },`, `factor = 1000.5 },
    { code = "box", name = "Box", factor = null },`, 1))
	if pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil || pass.Failed() {
		t.Fatalf("pass: %+v %v", pass, err)
	}
	if got := units(e, "acme"); got != "box=Box/-,kg=Kilo/1000.5" {
		t.Fatalf("acme units after the new seed: %s", got)
	}
	if got := units(e, "globex"); got != "box=Globex box/-,kg=Kilogram/1000.5,pcs=Pieces/1" {
		t.Fatalf("globex units after the new seed (its own box wins): %s", got)
	}
	// Another pass changes nothing.
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := units(e, "acme"); got != "box=Box/-,kg=Kilo/1000.5" {
		t.Fatalf("acme units after a second pass: %s", got)
	}
	// An import carries acme's rows, without the seeds acme deleted.
	if _, err := importFile(e, "acme2", export(t, e, "acme")); err != nil {
		t.Fatal(err)
	}
	if got := units(e, "acme2"); got != "box=Box/-,kg=Kilo/1000.5" {
		t.Fatalf("imported units: %s", got)
	}
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil || units(e, "acme2") != "box=Box/-,kg=Kilo/1000.5" {
		t.Fatalf("imported units after a pass: %s %v", units(e, "acme2"), err)
	}
}

func TestSeedErrorsAtLoad(t *testing.T) {
	t.Parallel()
	cases := []struct{ seed, want string }{
		{`seed "units" { rows = [ { nope = "x" } ] }`, `table "units" has no column "nope"`},
		{`seed "other" { rows = [ { code = "x" } ] }`, `declares no table "other"`},
		{`seed "units" { rows = [ { id = 1 } ] }`, `column "id" is set by erpctl`},
		{`seed "units" { rows = "x" }`, `rows must be a list of objects`},
		{`seed "units" { rows = [ { code = ["a"] } ] }`, `a seed value is a string`},
		{`seed "units" { rows = [ { "Code" = "a" } ] }`, `lower case`},
	}
	for _, c := range cases {
		dir := t.TempDir()
		src := strings.SplitAfter(unitsModule, "}\n}\n")[0] + c.seed + "\n"
		if err := os.WriteFile(filepath.Join(dir, "units.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := modules.Load(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.seed, err, c.want)
		}
	}
}
