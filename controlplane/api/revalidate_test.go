package api_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// readCounter counts the data API's reads of single tenants' catalog rows.
type readCounter struct {
	*controlplane.Plane
	reads atomic.Int64
}

func (c *readCounter) Readiness(ctx context.Context, slug ident.Slug) (*controlplane.Readiness, error) {
	c.reads.Add(1)
	return c.Plane.Readiness(ctx, slug)
}

// A spread of requests over many tenants visits each less often than the cache's TTL; with
// RevalidateTenants running, a tenant's state is kept while its catalog row does not change
// instead of being read again for each visit, and a change by another process is still served
// within the TTL, to that tenant only.
func TestTenantStatesAreKeptWhileTheirRowsDoNotChange(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	db, err := a.P.APIDB(a.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc := &readCounter{Plane: a.P}
	h := api.New(api.Config{Plane: rc, DB: db})
	ctx, cancel := context.WithCancel(a.Ctx)
	done := make(chan error, 1)
	go func() { done <- h.RevalidateTenants(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RevalidateTenants: %v", err)
		}
	}()
	for _, slug := range []string{"acme", "globex"} {
		a.must(201, "POST", "/api/"+slug+"/product/products/", slug, `{"sku": "K-1", "name": "Kettle `+slug+`"}`)
	}
	list := func(slug string) string {
		t.Helper()
		r := doWith(h, "GET", "/api/"+slug+"/product/products/", a.auth(slug), "")
		if r.status != 200 || !strings.Contains(string(r.body), "Kettle "+slug) {
			t.Fatalf("list %s: %s", slug, r)
		}
		return string(r.body)
	}
	list("acme")
	list("globex")
	if n := rc.reads.Load(); n != 2 {
		t.Fatalf("%d reads of tenants for the first two requests, want 2", n)
	}
	for range 3 {
		time.Sleep(time.Second)
		list("acme")
		list("globex")
	}
	if n := rc.reads.Load(); n != 2 {
		t.Fatalf("%d reads of tenants after 3 s of requests to unchanged tenants, want 2", n)
	}

	// Another process (a second control plane on the database) brings acme to a generation
	// that adds a column; globex stays at the one it has.
	src := cptest.BuiltinSource(t, "product")
	a.WriteModule("product", strings.Replace(src, `  column "price" {`, "  column \"color\" {\n    type = text\n    null = true\n  }\n  column \"price\" {", 1))
	other, err := controlplane.Open(a.Ctx, a.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if res, err := other.Reconcile(a.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{}); err != nil || res.Action != controlplane.ActionApplied {
		t.Fatalf("reconcile acme in another process: %+v %v", res, err)
	}
	changed := time.Now()
	for !strings.Contains(list("acme"), `"color":null`) {
		if time.Since(changed) > 5*time.Second {
			t.Fatal("acme's new generation is not served 5 s after another process applied it")
		}
		time.Sleep(100 * time.Millisecond)
		if strings.Contains(list("globex"), `"color"`) {
			t.Fatal("globex served with acme's generation")
		}
	}
	if d := time.Since(changed); d > 3*time.Second {
		t.Errorf("acme's new generation served %v after it was applied, want within the TTL (2 s) and a round", d)
	}
	time.Sleep(1500 * time.Millisecond)
	if strings.Contains(list("globex"), `"color"`) {
		t.Fatal("globex served with acme's generation")
	}
	if n := rc.reads.Load(); n != 3 {
		t.Fatalf("%d reads of tenants, want 3: acme's once more after its change, globex's never", n)
	}
}
