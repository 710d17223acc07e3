package schema_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// TestNormalizedStateServesEveryTenant normalises the built-in modules once and diffs two
// tenants against it at the same time: the one whose check was changed by hand gets the change
// back, the other nothing, and each keeps its own name.
func TestNormalizedStateServesEveryTenant(t *testing.T) {
	t.Parallel()
	db, p := open(t)
	ctx := context.Background()
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tenant_acme", "tenant_globex"} {
		applyModules(t, db, p, reg, name)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE tenant_globex.stock_items DROP CONSTRAINT stock_items_quantity_check,
		ADD CONSTRAINT stock_items_quantity_check CHECK (quantity >= -1)`); err != nil {
		t.Fatal(err)
	}
	key := reg.Hash(reg.Names())
	tx, err := schema.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var norms []*schema.Normalized
	for _, name := range []string{"tenant_acme", "tenant_globex"} {
		desired, err := reg.Desired(reg.Names(), name)
		if err != nil {
			t.Fatal(err)
		}
		n, err := p.NormalizeOnce(ctx, tx, key, desired)
		if err != nil {
			t.Fatal(err)
		}
		norms = append(norms, n)
	}
	if norms[0] != norms[1] {
		t.Fatal("the same desired state was normalised twice")
	}
	if n, _ := p.NormalizedCacheLen(); n != 1 {
		t.Fatalf("%d normalised states kept, want 1", n)
	}
	var wg sync.WaitGroup
	diffs := map[string]*schema.Diff{}
	var mu sync.Mutex
	for _, name := range []string{"tenant_acme", "tenant_globex"} {
		cur, err := p.Inspect(ctx, tx, name)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				d, err := p.DiffNormalized(ctx, cur, norms[0], schema.Managed{}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if cur.Name != name || d.Schema != name {
					t.Errorf("after the diff: current %q, diff %q, want %q", cur.Name, d.Schema, name)
				}
				mu.Lock()
				diffs[name] = d
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if d := diffs["tenant_acme"]; !d.Empty() {
		t.Fatalf("tenant_acme, as declared, has changes: %v", d.Apply)
	}
	d := diffs["tenant_globex"]
	stmts, err := p.Plan(ctx, d.Apply, "tenant_globex")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Apply) != 1 || len(stmts) != 1 || !strings.Contains(stmts[0], `"tenant_globex"."stock_items"`) || !strings.Contains(stmts[0], "quantity >= 0") {
		t.Fatalf("tenant_globex's changed check: %v, %q", d.Apply, stmts)
	}
	if _, ok := d.Apply[0].(*atlas.ModifyTable); !ok {
		t.Fatalf("change %T", d.Apply[0])
	}
}
