package controlplane_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"

	"github.com/erpctl/erpctl/controlplane"
)

func TestCreateTenantIsReadyAndIsolated(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	acme := e.Create("acme")
	globex := e.Create("globex", "product")
	if acme.Status != controlplane.StatusReady || globex.Status != controlplane.StatusReady {
		t.Fatalf("statuses: %s, %s", acme.Status, globex.Status)
	}
	if got := e.Tables("tenant_acme"); !slices.Equal(got, []string{"categories", "products", "stock_items", "warehouses"}) {
		t.Fatalf("acme tables: %v", got)
	}
	if got := e.Tables("tenant_globex"); !slices.Equal(got, []string{"categories", "products"}) {
		t.Fatalf("globex tables: %v", got)
	}
	if got := e.Columns("tenant_acme", "products"); !slices.Equal(got, []string{"id", "sku", "name", "description", "price", "category_id", "created_at", "updated_at", "created_by", "updated_by"}) {
		t.Fatalf("products columns: %v", got)
	}
	// The foreign keys point inside the tenant's own schema.
	if n := e.Count(`SELECT count(*) FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
		JOIN pg_namespace n ON n.oid = r.relnamespace WHERE c.contype = 'f' AND c.connamespace = 'tenant_acme'::regnamespace
		AND n.nspname <> 'tenant_acme'`); n != 0 {
		t.Fatalf("%d foreign keys of acme leave its schema", n)
	}
	e.DebugHealthy("acme")
	e.DebugHealthy("globex")
	if !slices.Equal(globex.Modules, []string{"product"}) || !slices.Equal(acme.Modules, []string{"product", "inventory"}) {
		t.Fatalf("modules: acme %v globex %v", acme.Modules, globex.Modules)
	}
	list, err := e.P.ListTenants(e.Ctx)
	if err != nil || len(list) != 2 || list[0].Slug != "acme" || list[1].Slug != "globex" {
		t.Fatalf("list: %v %v", list, err)
	}
}

func TestCreateTenantBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Exec(`INSERT INTO tenant_acme.categories (name) VALUES ('kept')`)
	// An orphan schema (no catalog row) makes create fail; nothing may be left behind.
	e.Exec(`CREATE SCHEMA tenant_orphan`)
	cases := []struct {
		slug string
		mods []string
		want error
	}{
		{"acme", nil, controlplane.ErrExists},
		{"Acme", nil, ident.ErrInvalidSlug},
		{"x'); drop schema erpctl cascade; --", nil, ident.ErrInvalidSlug},
		{"globex", []string{"nope"}, controlplane.ErrUnknownModule},
		{"orphan", nil, controlplane.ErrExists},
		{"", nil, controlplane.ErrInvalid}, // the zero Slug
	}
	for _, c := range cases {
		// A slug that breaks the rule never becomes a Slug; the Plane refuses the zero one.
		slug, err := ident.ParseSlug(c.slug)
		if err == nil || c.slug == "" {
			_, err = e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: slug, Modules: c.mods})
		}
		if !errors.Is(err, c.want) {
			t.Errorf("create %q: got %v, want %v", c.slug, err, c.want)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants`); n != 1 {
		t.Fatalf("%d tenants in the catalog, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant_%'`); n != 2 {
		t.Fatalf("%d tenant schemas, want acme and the orphan", n)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.categories`); n != 1 {
		t.Fatalf("acme lost its row")
	}
}

func TestDeleteTenantDropsOnlyItsSchema(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_globex.categories (name) VALUES ('kept')`)
	if err := e.P.DeleteTenant(e.Ctx, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_acme'`); n != 0 {
		t.Fatal("acme schema still there")
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.categories`); n != 1 {
		t.Fatal("globex lost its row")
	}
	if err := e.P.DeleteTenant(e.Ctx, ident.MustParseSlug("acme")); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	e.DebugHealthy("globex")
}

func TestEnableDisableModuleKeepsData(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme", "product")
	e.Create("globex")
	tn, err := e.P.EnableModule(e.Ctx, ident.MustParseSlug("acme"), "inventory")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tn.Modules, "inventory") || len(e.Tables("tenant_acme")) != 4 {
		t.Fatalf("inventory not enabled: %v %v", tn.Modules, e.Tables("tenant_acme"))
	}
	e.Exec(`INSERT INTO tenant_acme.warehouses (code, name) VALUES ('W1', 'Main')`)
	if _, err := e.P.DisableModule(e.Ctx, ident.MustParseSlug("acme"), "product"); !errors.Is(err, controlplane.ErrInvalid) {
		t.Fatalf("disabling a module others depend on: %v", err)
	}
	tn, err = e.P.DisableModule(e.Ctx, ident.MustParseSlug("acme"), "inventory")
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != controlplane.StatusReady || slices.Contains(tn.Modules, "inventory") {
		t.Fatalf("after disable: %+v", tn)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.warehouses`); n != 1 {
		t.Fatal("disable lost the warehouse row")
	}
	rep := e.DebugHealthy("acme")
	var unmanaged int
	for _, ts := range rep.Tables {
		if ts.Status == "unmanaged" {
			unmanaged++
		}
	}
	if unmanaged != 2 {
		t.Fatalf("want the inventory tables unmanaged: %+v", rep.Tables)
	}
	// What acme manages now, the disable wrote as a set; a tenant made with product alone
	// manages the same, written by its create: one set, under one name.
	e.Create("initech", "product")
	if n := e.Count(`SELECT count(DISTINCT managed_key) FROM erpctl.tenants WHERE slug IN ('acme', 'initech')`); n != 1 {
		t.Fatalf("acme and initech manage the same objects under %d set names", n)
	}
	if n := e.Count(`SELECT count(*) FROM (SELECT objects FROM erpctl.managed_sets GROUP BY objects HAVING count(*) > 1) d`); n != 0 {
		t.Fatalf("%d sets of managed objects are stored under more than one name", n)
	}
	// Globex follows all modules and is untouched.
	if len(e.Tables("tenant_globex")) != 4 {
		t.Fatal("globex changed")
	}
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{})
	if err != nil || pass.Counts[controlplane.ActionUnchanged] != 3 {
		t.Fatalf("pass after disable: %+v %v", pass, err)
	}
}
