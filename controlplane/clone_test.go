package controlplane_test

import (
	"errors"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// A clone has its template's modules and rows, takes inserts, and touches neither the template
// nor another tenant; a missing template or a slug in use creates nothing.
func TestCloneFromTemplateTwoTenants(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("demo")
	e.Create("globex")
	e.Create("shop", "product")
	e.Fill("tenant_demo", "demo", 25)
	e.Fill("tenant_globex", "globex", 5)
	e.Exec(`INSERT INTO tenant_shop.categories (name) VALUES ('shop-only')`)
	demo, globex := e.Checksums("tenant_demo"), e.Checksums("tenant_globex")

	tn, counts, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("initech"), Name: "Initech"}, ident.MustParseSlug("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != controlplane.StatusReady || tn.Name != "Initech" || !tn.FollowAll || len(counts) != 4 || counts[3].Rows != 25 {
		t.Fatalf("clone: %+v %+v", tn, counts)
	}
	if got := e.Checksums("tenant_initech"); got != demo {
		t.Fatalf("cloned rows:\n%s\nwant\n%s", got, demo)
	}
	e.Exec(`INSERT INTO tenant_initech.categories (name) VALUES ('new')`)
	e.Exec(`INSERT INTO tenant_initech.warehouses (code, name) VALUES ('new', 'new')`)
	if e.Checksums("tenant_demo") != demo || e.Checksums("tenant_globex") != globex {
		t.Fatal("the clone changed demo or globex")
	}
	e.DebugHealthy("initech")

	// A template with fewer modules gives a clone with those modules only.
	tn, _, err = e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("shop2")}, ident.MustParseSlug("shop"))
	if err != nil || tn.FollowAll || len(tn.Modules) != 1 || e.Count(`SELECT count(*) FROM tenant_shop2.categories WHERE name = 'shop-only'`) != 1 {
		t.Fatalf("clone of shop: %+v %v", tn, err)
	}

	n := e.Count(`SELECT count(*) FROM erpctl.tenants`)
	if _, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("x1")}, ident.MustParseSlug("nope")); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("clone of a missing tenant: %v", err)
	}
	if _, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("globex")}, ident.MustParseSlug("demo")); !errors.Is(err, controlplane.ErrExists) {
		t.Fatalf("clone into globex: %v", err)
	}
	if m := e.Count(`SELECT count(*) FROM erpctl.tenants`); m != n || e.Checksums("tenant_globex") != globex {
		t.Fatal("a refused clone changed the catalog or globex")
	}
}
