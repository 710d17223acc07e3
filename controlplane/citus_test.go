package controlplane_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// These tests run on the Citus cluster ERPCTL_TEST_CITUS_URL names, and skip without it.

// distributed reports whether schemaName is a distributed (tenant) schema on Citus.
func distributed(e *cptest.Env, schemaName string) bool {
	e.T.Helper()
	return e.Count(`SELECT count(*) FROM pg_dist_schema WHERE schemaid = to_regnamespace($1)`, schemaName) == 1
}

// tenantNodes lists the nodes that hold a shard of schemaName's tables.
func tenantNodes(e *cptest.Env, schemaName string) []string {
	e.T.Helper()
	return e.Strings(`SELECT DISTINCT n.nodename || ':' || n.nodeport FROM pg_dist_partition p
		JOIN pg_class c ON c.oid = p.logicalrelid
		JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid
		JOIN pg_dist_placement pl ON pl.shardid = s.shardid
		JOIN pg_dist_node n ON n.groupid = pl.groupid
		WHERE c.relnamespace = to_regnamespace($1) ORDER BY 1`, schemaName)
}

// distributedTables lists schemaName's tables that Citus distributes.
func distributedTables(e *cptest.Env, schemaName string) []string {
	e.T.Helper()
	return e.Strings(`SELECT c.relname::text FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
		WHERE c.relnamespace = to_regnamespace($1) ORDER BY 1`, schemaName)
}

// lastShardID is the shard id sequence's last value: it moves whenever Citus makes a shard,
// even one rolled back.
func lastShardID(e *cptest.Env) int {
	e.T.Helper()
	return e.Count(`SELECT last_value FROM pg_dist_shardid_seq`)
}

// citusFill gives a tenant schema's built-in tables rows. cptest's Fill is not for Citus: an
// INSERT ... SELECT with ORDER BY and LIMIT cannot be planned there (0A000).
func citusFill(e *cptest.Env, schemaName, tag string) {
	e.T.Helper()
	s := func(t string) string { return ident.Quote(schemaName, t) }
	e.Exec(`INSERT INTO `+s("categories")+` (name) VALUES ($1)`, tag+"-tools")
	e.Exec(`INSERT INTO `+s("products")+` (sku, name, price, category_id)
		SELECT $1||'-'||g, 'Product '||g, g * 1.37, (SELECT min(id) FROM `+s("categories")+`) FROM generate_series(1, 20) g`, tag)
	e.Exec(`INSERT INTO `+s("warehouses")+` (code, name) VALUES ($1||'-main', 'Main'), ($1||'-east', 'East')`, tag)
	for _, agg := range []string{"min", "max"} { // Citus plans no cartesian product
		e.Exec(`INSERT INTO ` + s("stock_items") + ` (product_id, warehouse_id, quantity)
			SELECT p.id, (SELECT ` + agg + `(id) FROM ` + s("warehouses") + `), p.id % 100 FROM ` + s("products") + ` p`)
	}
}

// On Citus, every tenant schema erpctl makes is distributed, by erpctl and not by a database
// setting, with all its tables on one node; the catalog stays local; comparisons make no shards;
// rollouts, drift repairs, archive and restore work as on plain PostgreSQL, tenant by tenant.
func TestCitusLifecycleAndReconcile(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	if !e.P.Citus() {
		t.Fatal("the control plane did not detect Citus")
	}
	if got := e.Strings(`SHOW citus.enable_schema_based_sharding`); len(got) != 1 || got[0] != "off" {
		t.Fatalf("test database has schema-based sharding %v: erpctl must distribute by itself", got)
	}
	e.Create("acme")
	e.Create("globex", "product")
	citusFill(e, "tenant_acme", "acme")
	e.Exec(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-only')`)
	globex := e.Checksums("tenant_globex")
	for _, s := range []string{"tenant_acme", "tenant_globex"} {
		if !distributed(e, s) {
			t.Fatalf("%s is not a distributed schema", s)
		}
		if n := tenantNodes(e, s); len(n) != 1 {
			t.Fatalf("%s is on nodes %v, want one", s, n)
		}
	}
	if got := distributedTables(e, "tenant_acme"); !slices.Equal(got, []string{"categories", "products", "stock_items", "warehouses"}) {
		t.Fatalf("acme's distributed tables: %v", got)
	}
	if got := distributedTables(e, "tenant_globex"); !slices.Equal(got, []string{"categories", "products"}) {
		t.Fatalf("globex's distributed tables: %v", got)
	}
	if distributed(e, "erpctl") || len(distributedTables(e, "erpctl")) != 0 {
		t.Fatal("the catalog was distributed")
	}

	// Comparisons (debug tables, a pass that inspects) make their scratch schema locally.
	shards := lastShardID(e)
	e.DebugHealthy("acme")
	e.DebugHealthy("globex")
	if _, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := lastShardID(e); got != shards {
		t.Fatalf("comparisons made %d shards", got-shards)
	}
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("no-op pass on Citus: %+v", pass.Results)
	}

	// A rollout: a column for both, a new module's table for acme only, distributed with the
	// rest of acme's tables on acme's node.
	src := strings.Replace(cptest.BuiltinSource(t, "product"), `  column "category_id" {`, `  column "barcode" {
    type = text
    null = true
  }
  column "category_id" {`, 1)
	e.WriteModule("product", src)
	e.WriteModule("crm", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "product_id" {
    type = bigint
    null = true
  }
  foreign_key "contacts_product_id_fkey" {
    columns     = [column.product_id]
    ref_columns = [table.products.column.id]
  }
}
`)
	acmeNode := tenantNodes(e, "tenant_acme")
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{Workers: 2})
	if pass.Counts[controlplane.ActionApplied] != 2 || pass.Failed() {
		t.Fatalf("rollout on Citus: %+v", pass.Results)
	}
	for _, s := range []string{"acme", "globex"} {
		if !slices.Contains(e.Columns("tenant_"+s, "products"), "barcode") {
			t.Fatalf("%s has no barcode column", s)
		}
		e.DebugHealthy(s)
	}
	if !slices.Contains(distributedTables(e, "tenant_acme"), "contacts") || slices.Contains(e.Tables("tenant_globex"), "contacts") {
		t.Fatalf("crm reached the wrong tenants: acme %v globex %v", distributedTables(e, "tenant_acme"), e.Tables("tenant_globex"))
	}
	if got := tenantNodes(e, "tenant_acme"); !slices.Equal(got, acmeNode) {
		t.Fatalf("acme's tables spread to %v, want all on %v", got, acmeNode)
	}
	e.Exec(`INSERT INTO tenant_acme.contacts (email, product_id) SELECT 'a@example.com', min(id) FROM tenant_acme.products`)
	if n := e.Count(`SELECT count(*) FROM tenant_acme.products`); n != 20 {
		t.Fatalf("acme has %d products after the rollout, want 20", n)
	}

	// Drift made by hand on one tenant is repaired there only.
	e.Exec(`DROP TABLE tenant_acme.contacts`)
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if r := pass.Result("acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("acme: %+v", r)
	}
	if r := pass.Result("globex"); r.Action != controlplane.ActionUnchanged {
		t.Fatalf("globex: %+v", r)
	}
	if !slices.Contains(distributedTables(e, "tenant_acme"), "contacts") {
		t.Fatal("the repaired table is not distributed")
	}
	e.DebugHealthy("acme")

	// Archive and restore keep the schema distributed, rows and all.
	acme := e.Checksums("tenant_acme")
	slug := ident.MustParseSlug("acme")
	a, err := e.P.ArchiveTenant(e.Ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	if !distributed(e, a.Schema) {
		t.Fatal("the archive is not distributed")
	}
	if _, err := e.P.RestoreTenant(e.Ctx, slug); err != nil {
		t.Fatal(err)
	}
	if got := e.Checksums("tenant_acme"); got != acme || !distributed(e, "tenant_acme") {
		t.Fatalf("restored acme differs:\n%s\nwant\n%s", got, acme)
	}
	e.DebugHealthy("acme")
	// globex got the column and nothing else; its one row stays as it was.
	if got := e.Checksums("tenant_globex"); got != globex {
		t.Fatalf("globex changed:\n%s\nwant\n%s", got, globex)
	}
}
