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

// The token secret of tenant acme in testdata/catalog-e8397d3.sql.
const oldAcmeToken = "erp_eok5z25r44uupgsdyd6noptk2pxpsmzph2digyhzpfaj7perej5a"

// TestUpgradeFromOlderCatalog takes over a database an earlier erpctl made: its catalog is
// upgraded in place, and tenants, rows, tokens (the revoked one still revoked) and events are kept.
func TestUpgradeFromOlderCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	dump, err := os.ReadFile("testdata/catalog-e8397d3.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	// The dump is a trusted fixture of many statements: the simple protocol runs it whole.
	if _, err := conn.Exec(ctx, string(dump)); err != nil {
		t.Fatalf("restore the old database: %v", err)
	}
	// What the older erpctl recorded as managed in each tenant, in the row itself.
	oldManaged := map[string]string{}
	rows, err := conn.Query(ctx, `SELECT slug, managed::text FROM erpctl.tenants`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var slug, m string
		if err := rows.Scan(&slug, &m); err != nil {
			t.Fatal(err)
		}
		oldManaged[slug] = m
	}
	if rows.Err() != nil || len(oldManaged) != 2 || oldManaged["acme"] == "{}" {
		t.Fatalf("managed objects of the old catalog: %v %v", oldManaged, rows.Err())
	}
	conn.Close(ctx)

	modulesDir := t.TempDir()
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: modulesDir})
	if err != nil {
		t.Fatalf("open an older catalog: %v", err)
	}
	defer p.Close()
	tenants, err := p.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tenants) != 2 {
		t.Fatalf("tenants after upgrade: %+v", tenants)
	}
	for _, tn := range tenants {
		if tn.Status != controlplane.StatusReady || tn.Reason != controlplane.ReasonUpToDate || tn.LastTransitionAt == nil {
			t.Errorf("%s after upgrade: status %s, reason %q, transition %v", tn.Slug, tn.Status, tn.Reason, tn.LastTransitionAt)
		}
		// Pins came later (tenant move on Citus): an old tenant is pinned nowhere.
		if tn.PinnedNode != "" || tn.Node != "" {
			t.Errorf("%s after upgrade: node %q, pinned to %q", tn.Slug, tn.Node, tn.PinnedNode)
		}
	}
	// The rows keep their managed objects until an apply moves them to a set.
	managedOf := func(slug string) (set, own string) {
		t.Helper()
		if err := p.Pool().QueryRow(ctx, `SELECT coalesce((SELECT objects::text FROM erpctl.managed_sets WHERE key = t.managed_key), ''),
			managed::text FROM erpctl.tenants t WHERE slug = $1`, slug).Scan(&set, &own); err != nil {
			t.Fatalf("managed objects of %s: %v", slug, err)
		}
		return set, own
	}
	for slug, old := range oldManaged {
		if set, own := managedOf(slug); set != "" || own != old {
			t.Errorf("%s's managed objects after upgrade: set %q, in the row %s; want %s in the row", slug, set, own, old)
		}
	}
	var unpinned int
	if err := p.Pool().QueryRow(ctx, `SELECT count(*) FROM erpctl.tenants WHERE pinned_node = ''`).Scan(&unpinned); err != nil || unpinned != 2 {
		t.Fatalf("pinned_node after upgrade: %d tenants unpinned, want 2 (%v)", unpinned, err)
	}
	owner, ok, err := p.LookupToken(ctx, controlplane.HashToken(oldAcmeToken))
	if err != nil || !ok || owner.Tenant != "acme" || owner.Name != "alice" {
		t.Fatalf("old acme token: %+v %v %v", owner, ok, err)
	}
	toks, err := p.ListTokens(ctx, ident.MustParseSlug("globex"))
	if err != nil || len(toks) != 1 || toks[0].RevokedAt == nil {
		t.Fatalf("globex's revoked token: %+v %v", toks, err)
	}
	evs, err := p.TenantEvents(ctx, ident.MustParseSlug("acme"), 10)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Kind != "create" {
		t.Fatalf("acme's events: %+v %v", evs, err)
	}
	// Columns and tables added since: old events have no reason, and change tracking's table is
	// there, empty.
	for _, ev := range evs {
		if ev.Reason != nil {
			t.Fatalf("old event with a reason: %+v", ev)
		}
	}
	var changed int
	if err := p.Pool().QueryRow(ctx, `SELECT count(*) FROM erpctl.changed_schemas`).Scan(&changed); err != nil || changed != 0 {
		t.Fatalf("changed_schemas after upgrade: %d %v", changed, err)
	}
	// The schemas the older erpctl made are as desired: nothing to apply, the rows are kept.
	pass, err := p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pass.Counts[controlplane.ActionApplied] != 0 || pass.Failed() {
		t.Fatalf("first pass after upgrade: %+v", pass.Results)
	}
	var products, categories int
	if err := p.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM tenant_acme.products),
		(SELECT count(*) FROM tenant_globex.categories)`).Scan(&products, &categories); err != nil {
		t.Fatal(err)
	}
	if products != 1 || categories != 1 {
		t.Fatalf("rows after upgrade: %d acme products, %d globex categories", products, categories)
	}
	// The catalog gained the table of migration steps, empty: the old tenants have run none, and
	// a step of a module added now would be pending for them.
	var steps int
	if err := p.Pool().QueryRow(ctx, `SELECT count(*) FROM erpctl.migration_steps`).Scan(&steps); err != nil || steps != 0 {
		t.Fatalf("migration steps after upgrade: %d %v", steps, err)
	}
	// The upgraded catalog has erpctl.archives: an old tenant archives and comes back with its
	// rows and its revoked token, and acme is left alone.
	globex := ident.MustParseSlug("globex")
	if _, err := p.ArchiveTenant(ctx, globex); err != nil {
		t.Fatalf("archive an old tenant: %v", err)
	}
	if _, err := p.RestoreTenant(ctx, globex); err != nil {
		t.Fatalf("restore an old tenant: %v", err)
	}
	toks, err = p.ListTokens(ctx, globex)
	if err != nil || len(toks) != 1 || toks[0].RevokedAt == nil {
		t.Fatalf("globex's revoked token after archive and restore: %+v %v", toks, err)
	}
	// The archive carried globex's managed objects: restored, the row holds them itself until
	// its next apply.
	if set, own := managedOf("globex"); set != "" || own != oldManaged["globex"] {
		t.Errorf("globex's managed objects after archive and restore: set %q, in the row %s; want %s in the row", set, own, oldManaged["globex"])
	}
	if err := p.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM tenant_acme.products),
		(SELECT count(*) FROM tenant_globex.categories)`).Scan(&products, &categories); err != nil {
		t.Fatal(err)
	}
	if products != 1 || categories != 1 {
		t.Fatalf("rows after archive and restore: %d acme products, %d globex categories", products, categories)
	}
	// The data API's role, made on the first open, reaches the old tenants' rows.
	apiPool, err := p.APIDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var viaAPI int
	if err := apiPool.QueryRow(ctx, `SELECT count(*) FROM tenant_acme.products`).Scan(&viaAPI); err != nil || viaAPI != 1 {
		t.Fatalf("an old tenant through the data API's role: %d %v", viaAPI, err)
	}
	// And new tenants are made beside the old ones.
	for _, s := range []string{"initech", "hooli"} {
		if _, err := p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(s)}); err != nil {
			t.Fatal(err)
		}
	}
	// The upgraded catalog records staged rollouts: a new module with an enum reaches the old
	// tenants and the new one in waves, and their rows stay.
	if err := os.WriteFile(filepath.Join(modulesDir, "sales.hcl"), []byte(`schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = ["draft", "done"]
}
table "orders" {
  schema = schema.tenant
  column "status" {
    type = enum.order_status
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	if pub, err := p.Publish(ctx, controlplane.PublishOptions{Message: "sales"}); err != nil || pub.Generation != 2 {
		t.Fatalf("publish after upgrade: %+v %v", pub, err)
	}
	pass, err = p.ReconcileAll(ctx, controlplane.ReconcileOptions{Canary: 1, MaxFailures: 1})
	// acme has chosen its modules; globex (made by the older erpctl) and the two new tenants, in
	// one state, follow every module.
	if err != nil || pass.Counts[controlplane.ActionApplied] != 3 || pass.Counts[controlplane.ActionUnchanged] != 1 {
		t.Fatalf("rollout after upgrade: %+v %+v %v", pass.Counts, pass.Rollouts, err)
	}
	var rollouts int
	if err := p.Pool().QueryRow(ctx, `SELECT count(*) FROM erpctl.rollouts WHERE state = 'done' AND generation = 2`).Scan(&rollouts); err != nil || rollouts != 1 {
		t.Fatalf("recorded rollouts: %d %v", rollouts, err)
	}
	if err := p.Pool().QueryRow(ctx, `SELECT count(*) FROM tenant_acme.products`).Scan(&products); err != nil || products != 1 {
		t.Fatalf("acme's products after the rollout: %d %v", products, err)
	}
	// The three tenants the rollout applied, globex among them, share one set of managed
	// objects, with orders in it, and keep none in their rows.
	var sets, own int
	var withOrders bool
	if err := p.Pool().QueryRow(ctx, `SELECT count(DISTINCT managed_key), count(*) FILTER (WHERE managed <> '{}'),
		bool_and(s.objects ? 'orders') FROM erpctl.tenants t JOIN erpctl.managed_sets s ON s.key = t.managed_key
		WHERE follow_all`).Scan(&sets, &own, &withOrders); err != nil || sets != 1 || own != 0 || !withOrders {
		t.Fatalf("managed sets after the rollout: %d sets, %d rows with their own, orders in each %v (%v)", sets, own, withOrders, err)
	}
}
