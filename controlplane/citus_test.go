package controlplane_test

import (
	"bytes"
	"errors"
	"fmt"
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
	e.WriteModule("product", productWithBarcode(t))
	e.WriteModule("crm", crmContacts)
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

// tenantNode is the one node that holds schemaName's tables.
func tenantNode(e *cptest.Env, schemaName string) string {
	e.T.Helper()
	n := tenantNodes(e, schemaName)
	if len(n) != 1 {
		e.T.Fatalf("%s is on nodes %v, want one", schemaName, n)
	}
	return n[0]
}

// tenant move moves a tenant and pins it; the rebalancer spreads the others and leaves the
// pinned one; bad input is refused with nothing moved.
func TestCitusMovePinRebalance(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	slugs := []string{"acme", "globex", "initech", "hooli"}
	for _, s := range slugs {
		e.Create(s)
	}
	citusFill(e, "tenant_acme", "acme")
	citusFill(e, "tenant_globex", "globex")
	acmeRows, globexRows := e.Checksums("tenant_acme"), e.Checksums("tenant_globex")
	nodes, err := e.P.Nodes(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var workers []string
	total := 0
	for _, n := range nodes {
		total += n.Tenants
		if n.Coordinator {
			if n.HasShards || n.Tenants != 0 {
				t.Fatalf("coordinator: %+v", n)
			}
			continue
		}
		workers = append(workers, n.Node)
	}
	if len(workers) < 2 || total != len(slugs) {
		t.Fatalf("nodes: %+v", nodes)
	}
	list, err := e.P.ListTenants(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range list {
		if tn.Node != tenantNode(e, tn.Schema) || tn.PinnedNode != "" {
			t.Fatalf("%s: node %q pinned %q, placed on %s", tn.Slug, tn.Node, tn.PinnedNode, tenantNode(e, tn.Schema))
		}
	}

	// Bad input: a clear error, nothing moved, nothing pinned.
	acme := ident.MustParseSlug("acme")
	where := map[string]string{}
	for _, s := range slugs {
		where[s] = tenantNode(e, "tenant_"+s)
	}
	coordinator := ""
	for _, n := range nodes {
		if n.Coordinator {
			coordinator = n.Node
		}
	}
	for _, c := range []struct {
		slug, node string
		want       error
		msg        string
	}{
		{"acme", "127.0.0.1:1", controlplane.ErrNotFound, "node 127.0.0.1:1 not found"},
		{"acme", "no-port", controlplane.ErrInvalid, "not HOST:PORT"},
		{"acme", coordinator, controlplane.ErrInvalid, "takes no tenants"},
		{"nobody", workers[0], controlplane.ErrNotFound, `tenant "nobody" not found`},
	} {
		_, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug(c.slug), c.node)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("move %s to %s: %v, want %v with %q", c.slug, c.node, err, c.want, c.msg)
		}
	}
	for _, s := range slugs {
		if got := tenantNode(e, "tenant_"+s); got != where[s] {
			t.Fatalf("%s moved from %s to %s on bad input", s, where[s], got)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants WHERE pinned_node <> ''`); n != 0 {
		t.Fatalf("%d tenants pinned on bad input", n)
	}

	// Move acme to the other worker: its rows go with it, and it is pinned there.
	target := workers[0]
	if where["acme"] == target {
		target = workers[1]
	}
	res, err := e.P.MoveTenant(e.Ctx, acme, target)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Moved || res.From != where["acme"] || res.To != target || tenantNode(e, "tenant_acme") != target {
		t.Fatalf("move: %+v, acme on %s", res, tenantNode(e, "tenant_acme"))
	}
	if got := e.Checksums("tenant_acme"); got != acmeRows {
		t.Fatalf("acme's rows after the move:\n%s\nwant\n%s", got, acmeRows)
	}
	tn, err := e.P.GetTenant(e.Ctx, acme)
	if err != nil || tn.Node != target || tn.PinnedNode != target {
		t.Fatalf("acme after the move: %+v %v", tn, err)
	}
	for _, s := range slugs[1:] {
		if got := tenantNode(e, "tenant_"+s); got != where[s] {
			t.Fatalf("%s moved with acme: %s to %s", s, where[s], got)
		}
	}
	e.DebugHealthy("acme")
	if pass := reconcileAll(t, e, controlplane.ReconcileOptions{}); pass.Failed() || pass.Counts[controlplane.ActionUnchanged] != len(slugs) {
		t.Fatalf("pass after the move: %+v", pass.Results)
	}

	// Pin globex and initech there too, and put hooli there by hand (unpinned): four tenants on
	// one worker, none on the other. Without pins the rebalancer would move two of them; with
	// erpctl's strategy it may move only hooli.
	for _, s := range []string{"globex", "initech"} {
		if _, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug(s), target); err != nil {
			t.Fatal(err)
		}
	}
	if tenantNode(e, "tenant_hooli") != target {
		host, port, _ := strings.Cut(target, ":")
		e.Exec(`SELECT citus_schema_move('tenant_hooli'::regnamespace, $1, $2::int)`, host, port)
	}
	// A dry run names the one move and makes none.
	plan, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.DryRun || len(plan.Moves) != 1 || plan.Moves[0].Tenant != "hooli" || plan.Moves[0].From != target || plan.Moves[0].To == target {
		t.Fatalf("rebalance --dry-run: %+v, want hooli alone off %s", plan.Moves, target)
	}
	if got := tenantNode(e, "tenant_hooli"); got != target {
		t.Fatalf("a dry run moved hooli to %s", got)
	}
	rb, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rb.Moves[0] != (controlplane.MoveResult{Tenant: "hooli", From: plan.Moves[0].From, To: plan.Moves[0].To, Moved: true}) {
		t.Fatalf("the rebalance did %+v, its dry run said %+v", rb.Moves[0], plan.Moves[0])
	}
	if len(rb.Moves) != 1 || rb.Moves[0].Tenant != "hooli" || rb.Moves[0].From != target || rb.Moves[0].To == target {
		t.Fatalf("rebalance moved %+v, want hooli alone off %s", rb.Moves, target)
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		if got := tenantNode(e, "tenant_"+s); got != target {
			t.Fatalf("the rebalancer moved pinned %s to %s", s, got)
		}
	}
	if got := e.Checksums("tenant_globex"); got != globexRows {
		t.Fatalf("globex's rows after moves and a rebalance:\n%s\nwant\n%s", got, globexRows)
	}
	nodes, err = e.P.Nodes(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Node == target && (n.Tenants != 3 || n.Pinned != 3) {
			t.Fatalf("the pinned node after the rebalance: %+v", n)
		}
	}
	// A second rebalance has nothing to do.
	if rb, err = e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{}); err != nil || len(rb.Moves) != 0 {
		t.Fatalf("second rebalance: %+v %v", rb, err)
	}
	// Every move is in its tenant's history: acme, globex and initech by tenant move, hooli by
	// the rebalancer.
	if got := e.Strings(`SELECT tenant || ': ' || reason FROM erpctl.events WHERE kind = 'move' AND outcome = 'applied' ORDER BY id`); len(got) != 4 ||
		got[0] != "acme: tenant move from "+where["acme"]+" to "+target+", pinned there" || got[3] != "hooli: db rebalance: moved from "+target+" to "+plan.Moves[0].To {
		t.Fatalf("move events: %q", got)
	}

	// Unpinned, globex is the rebalancer's again: with three on one worker and one on the
	// other, it may now go. Unpinning twice changes nothing more.
	globex := ident.MustParseSlug("globex")
	for range 2 {
		tn, err := e.P.UnpinTenant(e.Ctx, globex)
		if err != nil || tn.PinnedNode != "" || tn.Node != target {
			t.Fatalf("unpin globex: %+v %v", tn, err)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE kind = 'unpin' AND tenant = 'globex'`); n != 1 {
		t.Fatalf("%d unpin events for globex, want 1", n)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants WHERE pinned_node <> ''`); n != 2 {
		t.Fatalf("%d tenants pinned after unpinning globex, want 2", n)
	}
	if rb, err = e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{}); err != nil || len(rb.Moves) != 1 || rb.Moves[0].Tenant != "globex" {
		t.Fatalf("rebalance after unpinning globex: %+v %v", rb, err)
	}
	if _, err := e.P.UnpinTenant(e.Ctx, ident.MustParseSlug("nobody")); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("unpin an unknown tenant: %v", err)
	}
	for _, s := range slugs {
		e.DebugHealthy(s)
	}
}

// moveSchema moves a schema to node ("host:port") with Citus directly, as an operator or an
// older erpctl might have, bypassing erpctl's pins.
func moveSchema(e *cptest.Env, schemaName, node string) {
	e.T.Helper()
	if tenantNode(e, schemaName) == node {
		return
	}
	host, port, _ := strings.Cut(node, ":")
	e.Exec(`SELECT citus_schema_move($1::regnamespace, $2, $3::int)`, schemaName, host, port)
}

// moveLines lists moves as "tenant archived from>to", sorted.
func moveLines(moves []controlplane.MoveResult) []string {
	var out []string
	for _, m := range moves {
		out = append(out, fmt.Sprintf("%s %v %s>%s", m.Tenant, m.Archived, m.From, m.To))
	}
	slices.Sort(out)
	return out
}

// Archived tenants stay distributed. The rebalancer leaves an archive where it is, or puts it
// back on its tenant's pin; an archive does not count toward the balance of the live tenants;
// the dry run lists every move it plans, archives included, and each archive move is recorded.
func TestCitusRebalanceLeavesArchives(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	nodes, err := e.P.Nodes(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var workers []string
	for _, n := range nodes {
		if n.TakesTenants() {
			workers = append(workers, n.Node)
		}
	}
	if len(workers) < 2 {
		t.Fatalf("nodes: %+v", nodes)
	}
	w1, w2 := workers[0], workers[1]
	slugs := []string{"acme", "globex", "kept", "old-one", "old-two", "old-three"}
	rows := map[string]string{}
	for _, s := range slugs {
		e.Create(s)
		schemaName := "tenant_" + strings.ReplaceAll(s, "-", "_")
		citusFill(e, schemaName, s)
		rows[s] = e.Checksums(schemaName)
		moveSchema(e, schemaName, w1)
	}
	// kept is pinned to w1, then archived; the old ones are archived unpinned. Every schema is
	// on w1, and the two live tenants are unpinned: an even spread of the live tenants moves
	// one of them, and no archive.
	if _, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug("kept"), w1); err != nil {
		t.Fatal(err)
	}
	archives := map[string]string{} // slug → archive schema
	for _, s := range []string{"kept", "old-one", "old-two", "old-three"} {
		a, err := e.P.ArchiveTenant(e.Ctx, ident.MustParseSlug(s))
		if err != nil {
			t.Fatal(err)
		}
		archives[s] = a.Schema
	}
	// kept's archive was moved off its pin behind erpctl's back (an older erpctl's rebalance
	// did that): the rebalancer puts it back.
	moveSchema(e, archives["kept"], w2)

	plan, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	planned := moveLines(plan.Moves)
	if len(planned) != 2 || planned[1] != "kept true "+w2+">"+w1 ||
		(planned[0] != "acme false "+w1+">"+w2 && planned[0] != "globex false "+w1+">"+w2) {
		t.Fatalf("rebalance --dry-run: %q, want one live tenant to %s and kept's archive back to %s", planned, w2, w1)
	}
	rb, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if done := moveLines(rb.Moves); !slices.Equal(done, planned) {
		t.Fatalf("the rebalance did %q, its dry run said %q", done, planned)
	}
	if a, g := tenantNode(e, "tenant_acme"), tenantNode(e, "tenant_globex"); a == g {
		t.Fatalf("live tenants after the rebalance: acme on %v, globex on %v, want one on each worker", a, g)
	}
	for s, schemaName := range archives {
		if got := tenantNode(e, schemaName); got != w1 {
			t.Fatalf("archive of %s on %v after the rebalance, want %s", s, got, w1)
		}
	}
	// The archive's move is in its tenant's history.
	if got := e.Strings(`SELECT tenant || ': ' || reason FROM erpctl.events WHERE kind = 'move' AND outcome = 'applied' AND reason LIKE 'db rebalance%' ORDER BY tenant`); len(got) != 2 ||
		!slices.Contains(got, "kept: db rebalance: moved the archive from "+w2+" to "+w1) {
		t.Fatalf("rebalance move events: %q", got)
	}
	if rb, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{}); err != nil || len(rb.Moves) != 0 {
		t.Fatalf("second rebalance: %+v %v", rb, err)
	}
	// Restored, kept is where its pin says, with its rows; the others' rows are as they were.
	if _, err := e.P.RestoreTenant(e.Ctx, ident.MustParseSlug("kept")); err != nil {
		t.Fatal(err)
	}
	tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug("kept"))
	if err != nil || tn.Node != w1 || tn.PinnedNode != w1 {
		t.Fatalf("kept restored: %+v %v, want on and pinned to %s", tn, err, w1)
	}
	for _, s := range []string{"acme", "globex", "kept"} {
		if got := e.Checksums("tenant_" + s); got != rows[s] {
			t.Fatalf("%s's rows after the rebalance:\n%s\nwant\n%s", s, got, rows[s])
		}
	}
	for _, s := range []string{"old-one", "old-two", "old-three"} {
		if got := e.Checksums(archives[s]); got != rows[s] {
			t.Fatalf("%s's archived rows after the rebalance:\n%s\nwant\n%s", s, got, rows[s])
		}
	}
}

// On plain PostgreSQL, move and rebalance say they need Citus, and change nothing.
func TestMoveAndRebalanceNeedCitus(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	if e.P.Citus() {
		t.Fatal("Citus detected on plain PostgreSQL")
	}
	if _, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug("acme"), "127.0.0.1:9701"); !errors.Is(err, controlplane.ErrInvalid) ||
		!strings.Contains(err.Error(), "needs Citus") {
		t.Fatalf("move on plain: %v", err)
	}
	if _, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{}); !errors.Is(err, controlplane.ErrInvalid) || !strings.Contains(err.Error(), "needs Citus") {
		t.Fatalf("rebalance on plain: %v", err)
	}
	if _, err := e.P.UnpinTenant(e.Ctx, ident.MustParseSlug("acme")); !errors.Is(err, controlplane.ErrNotCitus) {
		t.Fatalf("unpin on plain: %v", err)
	}
	if _, err := e.P.Rebalance(e.Ctx, controlplane.RebalanceOptions{DryRun: true}); !errors.Is(err, controlplane.ErrNotCitus) {
		t.Fatalf("rebalance --dry-run on plain: %v", err)
	}
	if _, err := e.P.Nodes(e.Ctx); !errors.Is(err, controlplane.ErrNotCitus) {
		t.Fatalf("nodes on plain: %v", err)
	}
	list, err := e.P.ListTenants(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range list {
		if tn.Node != "" || tn.PinnedNode != "" {
			t.Fatalf("%s has a node on plain PostgreSQL: %+v", tn.Slug, tn)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE kind = 'move'`); n != 0 {
		t.Fatal("a move was recorded")
	}
}

// On Citus, change tracking's event trigger runs on the coordinator: DDL made there by hand on
// one tenant is recorded for that tenant only, and the incremental pass repairs it. A tenant
// move is no change to the tenant's tables.
func TestCitusChangeTracking(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	e.Create("acme")
	e.Create("globex")
	if ok, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("enable change tracking on Citus: %v %v", ok, err)
	}
	e.Exec(`ALTER TABLE tenant_acme.products DROP COLUMN description`)
	if got := changed(t, e); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("changed tenants after DDL on acme: %v", got)
	}
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{Only: []ident.Slug{ident.MustParseSlug("acme")}})
	if err != nil || len(pass.Results) != 1 || pass.Result("acme").Action != controlplane.ActionApplied {
		t.Fatalf("incremental pass: %+v %v", pass, err)
	}
	if !slices.Contains(e.Columns("tenant_acme", "products"), "description") {
		t.Fatal("the dropped column is not back")
	}
	e.DebugHealthy("acme")
	if got := changed(t, e); got != nil {
		t.Fatalf("erpctl's repair was recorded as a change: %v", got)
	}
	from := tenantNode(e, "tenant_globex")
	var to string
	nodes, err := e.P.Nodes(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !n.Coordinator && n.Node != from {
			to = n.Node
		}
	}
	if _, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug("globex"), to); err != nil {
		t.Fatal(err)
	}
	if got := changed(t, e); got != nil {
		t.Fatalf("changed tenants after a move: %v", got)
	}
	e.DebugHealthy("globex")
}

// On Citus, a clone and an import are distributed tenants with their source's rows, and take
// inserts after them: the identities move on the coordinator's sequences (a setval in a query
// over a tenant's table ran on the worker, out of its sequence's range, and failed).
func TestCitusCloneExportImport(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	e.Create("acme")
	e.Create("globex")
	citusFill(e, "tenant_acme", "acme")
	e.Exec(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-only')`)
	acme, globex := e.Checksums("tenant_acme"), e.Checksums("tenant_globex")
	var maxID int64
	if err := e.DB.QueryRowContext(e.Ctx, `SELECT max(id) FROM tenant_acme.products`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("initech")}, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := e.P.ExportTenant(e.Ctx, ident.MustParseSlug("acme"), &file, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.ImportTenant(e.Ctx, ident.MustParseSlug("hooli"), &file, "", nil); err != nil {
		t.Fatal(err)
	}
	api, err := e.P.APIDB(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"initech", "hooli"} {
		schemaName := "tenant_" + s
		if !distributed(e, schemaName) {
			t.Fatalf("%s is not distributed", schemaName)
		}
		if got := e.Checksums(schemaName); got != acme {
			t.Fatalf("%s's rows:\n%s\nwant acme's\n%s", s, got, acme)
		}
		// The next insert through the data API's role takes the id after the copied rows' (on
		// Citus an INSERT ... SELECT on the coordinator, as citusFill's, takes its ids from the
		// worker's range).
		var id int64
		if err := api.QueryRow(e.Ctx, `INSERT INTO `+ident.Quote(schemaName, "products")+` (sku, name) VALUES ('new', 'New') RETURNING id`).Scan(&id); err != nil || id != maxID+1 {
			t.Fatalf("%s's next product id is %d (%v), want %d", s, id, err, maxID+1)
		}
		e.DebugHealthy(s)
	}
	if e.Checksums("tenant_acme") != acme || e.Checksums("tenant_globex") != globex {
		t.Fatal("the clone or the import changed acme or globex")
	}
}

// shippingV1 and shippingV2 change one table's columns and constraints together, as a module
// edit does: V2 adds a column with its foreign key, a column with its check, and changes the
// expression of an existing check. Citus refuses an ALTER TABLE that adds a constraint beside
// any other subcommand (0A000), so each of these needs a statement of its own.
const shippingV1 = `schema "tenant" {}
table "shipments" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "weight" {
    type = integer
  }
  check "shipments_weight_check" {
    expr = "(weight >= 0)"
  }
}
`

const shippingV2 = `schema "tenant" {}
table "shipments" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "weight" {
    type = integer
  }
  column "warehouse_id" {
    type = bigint
    null = true
  }
  column "parcels" {
    type    = integer
    default = 1
  }
  check "shipments_weight_check" {
    expr = "((weight >= 0) AND (weight < 1000))"
  }
  check "shipments_parcels_check" {
    expr = "(parcels > 0)"
  }
  foreign_key "shipments_warehouse_id_fkey" {
    columns     = [column.warehouse_id]
    ref_columns = [table.warehouses.column.id]
  }
}
`

// On Citus, module evolution works as on plain PostgreSQL, tenant by tenant: declared renames
// keep every value, migration steps run once per tenant, an enum gains a value, a column comes
// with its foreign key or its check and a check changes, and a module is enabled and disabled;
// every table stays distributed, with its tenant's others on one node.
func TestCitusModuleEvolution(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	tasks := func(src string) string { return strings.ReplaceAll(src, "contacts", "tasks") }
	e.WriteModule("crm", crmV1)
	e.WriteModule("tasks", tasks(crmV1))
	e.WriteModule("sales", salesModule(`"draft", "confirmed"`, "draft"))
	e.WriteModule("shipping", shippingV1)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.shipments (ref, weight) VALUES ('a-1', 10), ('a-2', 20)`)
	e.Exec(`INSERT INTO tenant_globex.shipments (ref, weight) VALUES ('g-1', 999)`)
	e.Exec(`INSERT INTO tenant_acme.contacts (email, notes) VALUES ('a@x', 'first'), ('b@x', NULL), ('c@x', 'third')`)
	e.Exec(`INSERT INTO tenant_acme.tasks (email, notes) VALUES ('a@x', 'first'), ('b@x', NULL)`)
	e.Exec(`INSERT INTO tenant_globex.tasks (email, notes) VALUES ('g@x', 'only')`)
	e.Exec(`INSERT INTO tenant_acme.orders (ref, status) VALUES ('a1', 'confirmed')`)
	contacts := rowsOf(e, "tenant_acme.contacts", "id", "email", "notes", "created_at")

	e.WriteModule("crm", crmV2)
	e.WriteModule("tasks", tasks(crmSteps))
	e.WriteModule("sales", salesModule(`"draft", "pending", "confirmed"`, "draft"))
	e.WriteModule("shipping", shippingV2)
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionApplied] != 2 || pass.Failed() {
		t.Fatalf("evolution pass on Citus: %+v", pass.Results)
	}
	for s, want := range map[string][]string{"acme": {"a-1|10|<null>|1", "a-2|20|<null>|1"}, "globex": {"g-1|999|<null>|1"}} {
		if got := rowsOf(e, "tenant_"+s+".shipments", "ref", "weight", "warehouse_id", "parcels"); !slices.Equal(got, want) {
			t.Fatalf("%s's shipments after the new constraints: %v, want %v", s, got, want)
		}
	}
	// The constraints hold.
	e.Exec(`INSERT INTO tenant_globex.warehouses (code, name) VALUES ('g-main', 'Main')`)
	e.Exec(`INSERT INTO tenant_globex.shipments (ref, weight, warehouse_id) SELECT 'g-2', 5, id FROM tenant_globex.warehouses`)
	for _, bad := range []string{
		`INSERT INTO tenant_acme.shipments (ref, weight) VALUES ('a-x', 1000)`,
		`INSERT INTO tenant_acme.shipments (ref, weight, parcels) VALUES ('a-x', 1, 0)`,
		`INSERT INTO tenant_acme.shipments (ref, weight, warehouse_id) VALUES ('a-x', 1, 1000000)`,
	} {
		if _, err := e.DB.ExecContext(e.Ctx, bad); err == nil {
			t.Fatalf("%s: no constraint refused it", bad)
		}
	}
	if got := rowsOf(e, "tenant_acme.people", "id", "email", "remarks", "created_at"); !slices.Equal(got, contacts) {
		t.Fatalf("acme's people after the renames:\n%v\nwant\n%v", got, contacts)
	}
	if got := rowsOf(e, "tenant_acme.tasks", "email", "notes", "remarks"); !slices.Equal(got, []string{"a@x|first|first!", "b@x|-;-|-;-!"}) {
		t.Fatalf("acme's tasks after the steps: %v", got)
	}
	if got := rowsOf(e, "tenant_globex.tasks", "email", "notes", "remarks"); !slices.Equal(got, []string{"g@x|only|only!"}) {
		t.Fatalf("globex's tasks after the steps: %v", got)
	}
	for _, s := range []string{"acme", "globex"} {
		if got := enumLabels(e, "tenant_"+s); !slices.Equal(got, []string{"draft", "pending", "confirmed"}) {
			t.Fatalf("%s's enum: %v", s, got)
		}
		if got := stepsOf(e, s); !slices.Equal(got, []string{"tasks/copy_remarks ran", "tasks/fill_blank_notes ran"}) {
			t.Fatalf("%s's steps: %v", s, got)
		}
	}
	e.Exec(`INSERT INTO tenant_globex.orders (ref, status) VALUES ('g1', 'pending')`)

	// Disable a module on globex (its table stays, unmanaged), enable it again.
	globex := ident.MustParseSlug("globex")
	if _, err := e.P.DisableModule(e.Ctx, globex, "crm"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.EnableModule(e.Ctx, globex, "crm"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"acme", "globex"} {
		schemaName := "tenant_" + s
		want := []string{"categories", "orders", "people", "products", "shipments", "stock_items", "tasks", "warehouses"}
		if got := distributedTables(e, schemaName); !slices.Equal(got, want) {
			t.Fatalf("%s's distributed tables: %v, want %v", s, got, want)
		}
		tenantNode(e, schemaName) // all on one node
		e.DebugHealthy(s)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.orders`); n != 1 {
		t.Fatalf("acme has %d orders, want its 1", n)
	}
	if pass := reconcileAll(t, e, controlplane.ReconcileOptions{}); pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("no-op pass after the evolution: %+v", pass.Results)
	}
}
