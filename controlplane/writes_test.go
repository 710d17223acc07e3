package controlplane_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// A change that failed while the database refused writes, on tenants whose failure could not be
// recorded, is retried by the next incremental pass once writes go through, whatever change
// tracking saw; and by every incremental pass until one has handled it.
func TestIncrementalPassRetriesWhatWritesRefused(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	// Different modules, so that each tenant is a change group of its own and the pass goes on
	// past their failures.
	e.Create("acme")
	e.Create("globex", "product")
	e.Exec(`INSERT INTO tenant_acme.products (sku, name) VALUES ('a1', 'Anvil'), ('a2', 'Axe')`)
	e.Exec(`INSERT INTO tenant_globex.products (sku, name) VALUES ('g1', 'Gear')`)
	products := func(s string) []string {
		return rowsOf(e, "tenant_"+s+".products", "id", "sku", "name", "price", "created_at")
	}
	rows := map[string][]string{"acme": products("acme"), "globex": products("globex")}

	// A generation published just before the database turns read-only.
	e.WriteModule("product", strings.Replace(cptest.BuiltinSource(t, "product"),
		"table \"products\" {\n  schema = schema.tenant\n",
		"table \"products\" {\n  schema = schema.tenant\n  column \"barcode\" {\n    type = text\n    null = true\n  }\n", 1))
	e.SetReadOnly(true)
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionFailed || !strings.Contains(r.Error, "record failure") {
			t.Fatalf("%s while read-only: %+v", s, r)
		}
	}
	if got := e.P.WritesRefused(); got == "" {
		t.Fatal("the plane did not notice the refused writes")
	}
	// While writes are refused, an incremental pass over nothing tries them again, and fails.
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{Only: []ident.Slug{}})
	if pass.Counts[controlplane.ActionFailed] != 2 {
		t.Fatalf("incremental pass while read-only: %+v", pass.Results)
	}

	e.SetReadOnly(false)
	if back, err := e.P.ProbeWrites(e.Ctx); err != nil || !back {
		t.Fatalf("probe once writes are back: %v %v", back, err)
	}
	// Change tracking saw nothing: the pass is over no tenant but the two the refusal stopped.
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{Only: []ident.Slug{}})
	var applied []string
	for _, r := range pass.Results {
		if r.Action == controlplane.ActionApplied {
			applied = append(applied, r.Tenant)
		}
	}
	if slices.Sort(applied); !slices.Equal(applied, []string{"acme", "globex"}) {
		t.Fatalf("incremental pass once writes are back: %+v", pass.Results)
	}
	for _, s := range []string{"acme", "globex"} {
		if !slices.Contains(e.Columns("tenant_"+s, "products"), "barcode") {
			t.Fatalf("%s has no barcode", s)
		}
		if got := products(s); !slices.Equal(got, rows[s]) {
			t.Fatalf("%s's products: %v, want %v", s, got, rows[s])
		}
	}
	// Handled: the next incremental pass has nothing to do.
	if pass = reconcileAll(t, e, controlplane.ReconcileOptions{Only: []ident.Slug{}}); len(pass.Results) != 0 {
		t.Fatalf("second incremental pass: %+v", pass.Results)
	}
}
