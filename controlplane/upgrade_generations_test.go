package controlplane_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// The token secret of tenant acme in testdata/catalog-108d6d9.sql.
const acmeToken108 = "erp_lwayoguhlqi33ol7dlxwlfkpwfnmycvm5llmhyi7bntn6tdak3sa"

// restoreDump loads a database an earlier erpctl made into a fresh database.
func restoreDump(t *testing.T, file string) string {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	dump, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The dump is a trusted fixture of many statements: the simple protocol runs it whole.
	if _, err := conn.Exec(ctx, string(dump)); err != nil {
		t.Fatalf("restore %s: %v", file, err)
	}
	return url
}

// TestUpgradeToGenerations takes over the database of the main before module generations (tenants
// with every module, one with product only, an archived one, a module with an enum and a seed
// row rolled out, tokens, events): the catalog gains its first generation from the modules the
// upgrading process loads, every tenant the old erpctl brought to those modules is recorded at
// it, and nothing is applied, lost or moved backwards.
func TestUpgradeToGenerations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := restoreDump(t, "testdata/catalog-108d6d9.sql")
	sales, err := os.ReadFile("testdata/catalog-108d6d9-sales.hcl")
	if err != nil {
		t.Fatal(err)
	}
	modulesDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(modulesDir, "sales.hcl"), sales, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: modulesDir, Actor: "upgrader@test"})
	if err != nil {
		t.Fatalf("open the catalog of 108d6d9: %v", err)
	}
	defer p.Close()

	gens, err := p.Generations().History(ctx, 0)
	if err != nil || len(gens) != 1 || gens[0].Number != 1 || gens[0].PublishedBy != "upgrader@test" || gens[0].Tenants != 3 {
		t.Fatalf("generations after the upgrade: %+v %v", gens, err)
	}
	tenants, err := p.ListTenants(ctx)
	if err != nil || len(tenants) != 3 {
		t.Fatalf("tenants after the upgrade: %+v %v", tenants, err)
	}
	for _, tn := range tenants {
		if tn.Generation == nil || *tn.Generation != 1 || tn.TargetGeneration != nil || tn.Status != controlplane.StatusReady {
			t.Errorf("%s after the upgrade: generation %v, target %v, status %s", tn.Slug, tn.Generation, tn.TargetGeneration, tn.Status)
		}
	}
	rows := func() string {
		t.Helper()
		var s string
		if err := p.Pool().QueryRow(ctx, `SELECT concat_ws(' ',
			(SELECT count(*) FROM tenant_acme.products), (SELECT count(*) FROM tenant_acme.orders),
			(SELECT count(*) FROM tenant_globex.categories), (SELECT count(*) FROM tenant_initech.warehouses),
			(SELECT count(*) FROM tenant_initech.orders))`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	const want = "1 1 1 1 1"
	if got := rows(); got != want {
		t.Fatalf("rows after the upgrade: %s, want %s", got, want)
	}
	owner, ok, err := p.LookupToken(ctx, controlplane.HashToken(acmeToken108))
	if err != nil || !ok || owner.Tenant != "acme" || owner.Name != "alice" {
		t.Fatalf("acme's token after the upgrade: %+v %v %v", owner, ok, err)
	}
	toks, err := p.ListTokens(ctx, ident.MustParseSlug("globex"))
	if err != nil || len(toks) != 1 || toks[0].RevokedAt == nil {
		t.Fatalf("globex's revoked token: %+v %v", toks, err)
	}
	evs, err := p.TenantEvents(ctx, ident.MustParseSlug("acme"), 10)
	if err != nil || len(evs) != 2 || evs[0].Kind != "apply" || evs[0].Generation != nil {
		t.Fatalf("acme's events after the upgrade: %+v %v", evs, err)
	}

	// Nothing to apply: the old erpctl left every tenant at these modules.
	pass, err := p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
	if err != nil || pass.Generation != 1 || pass.Counts[controlplane.ActionUnchanged] != 3 {
		t.Fatalf("first pass after the upgrade: %+v %v", pass, err)
	}
	// The archived tenant comes back with its rows; not recorded at a generation while archived,
	// the next pass finds it as generation 1 declares it.
	hooli := ident.MustParseSlug("hooli")
	if _, err := p.RestoreTenant(ctx, hooli); err != nil {
		t.Fatalf("restore the archived tenant: %v", err)
	}
	if pass, err = p.ReconcileAll(ctx, controlplane.ReconcileOptions{}); err != nil || pass.Result("hooli").Action != controlplane.ActionUnchanged {
		t.Fatalf("pass after the restore: %+v %v", pass, err)
	}
	if tn, err := p.GetTenant(ctx, hooli); err != nil || tn.Generation == nil || *tn.Generation != 1 {
		t.Fatalf("hooli after the pass: %+v %v", tn, err)
	}

	// A new generation reaches them all, the rows stay, and events record it.
	if err := os.WriteFile(filepath.Join(modulesDir, "sales.hcl"), append(sales, []byte(`table "notes" {
  schema = schema.tenant
  column "body" {
    type = text
  }
}
`)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	pub, err := p.Publish(ctx, controlplane.PublishOptions{Message: "notes"})
	if err != nil || pub.Generation != 2 || !pub.Changed {
		t.Fatalf("publish after the upgrade: %+v %v", pub, err)
	}
	if pass, err = p.ReconcileAll(ctx, controlplane.ReconcileOptions{}); err != nil || pass.Counts[controlplane.ActionApplied] != 2 ||
		pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("rollout of generation 2: %+v %v", pass.Counts, err)
	}
	tenants, err = p.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if tn.Generation == nil || *tn.Generation != 2 {
			t.Errorf("%s after generation 2: %v", tn.Slug, tn.Generation)
		}
	}
	if got := rows(); got != want {
		t.Fatalf("rows after generation 2: %s, want %s", got, want)
	}
	evs, err = p.TenantEvents(ctx, ident.MustParseSlug("initech"), 1)
	if err != nil || len(evs) != 1 || evs[0].Generation == nil || *evs[0].Generation != 2 {
		t.Fatalf("initech's last event: %+v %v", evs, err)
	}
}
