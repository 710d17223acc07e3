package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/internal/pgtest"
)

// citusNodeView is a node as db status -o json prints it.
type citusNodeView struct {
	Node        string `json:"node"`
	Coordinator bool   `json:"coordinator"`
	Tenants     int    `json:"tenants"`
	Pinned      int    `json:"pinned"`
	Archives    int    `json:"archives"`
}

// On a Citus coordinator, the commands the docs print for moving tenants work as they say:
// tenant list and show name each tenant's node, db status lists the nodes, tenant move moves
// and pins, db rebalance leaves pinned tenants and spreads the rest; bad input is refused with
// nothing moved. Runs on ERPCTL_TEST_CITUS_URL's cluster, and skips without it.
func TestCLIOnCitus(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, url: pgtest.NewCitusDB(t), env: map[string]string{}}
	unlock := pgtest.CitusLock(t) // the first command makes the data API's role, a role of the whole cluster
	c.ok("tenant", "create", "acme")
	unlock()
	c.ok("tenant", "create", "globex", "--modules", "product")
	c.sql(`INSERT INTO tenant_acme.products (sku, name) VALUES ('A1', 'Anvil')`)
	c.sql(`INSERT INTO tenant_globex.products (sku, name) VALUES ('G1', 'Gear'), ('G2', 'Gasket')`)

	placed := func() map[string]string {
		t.Helper()
		var ts []struct {
			Slug       string `json:"slug"`
			Node       string `json:"node"`
			PinnedNode string `json:"pinned_node"`
		}
		decodeOne(t, c.ok("tenant", "list", "-o", "json").stdout, &ts)
		out := map[string]string{}
		for _, tn := range ts {
			if tn.Node == "" {
				t.Fatalf("tenant list -o json: %s has no node", tn.Slug)
			}
			out[tn.Slug] = tn.Node
			if tn.PinnedNode != "" {
				out[tn.Slug+" pinned"] = tn.PinnedNode
			}
		}
		return out
	}
	nodes := func() []citusNodeView {
		t.Helper()
		var st struct {
			Nodes []citusNodeView `json:"nodes"`
		}
		decodeOne(t, c.ok("db", "status", "-o", "json").stdout, &st)
		return st.Nodes
	}
	where := placed()
	var workers []string
	total := 0
	for _, n := range nodes() {
		total += n.Tenants
		if !n.Coordinator {
			workers = append(workers, n.Node)
		}
	}
	if len(workers) < 2 || total != 2 {
		t.Fatalf("db status nodes: %+v", nodes())
	}
	contains(t, "db status", c.ok("db", "status").stdout, "Citus nodes", workers[0], workers[1], "coordinator")
	list := c.ok("tenant", "list").stdout
	contains(t, "tenant list", list, "NODE", where["acme"], where["globex"])

	// Bad input: a clear error, exit 2, nothing moved or pinned.
	for _, bad := range []struct {
		want string
		args []string
	}{
		{"say where to move", []string{"tenant", "move", "acme"}},
		{"do not go together", []string{"tenant", "move", "acme", "--node", workers[0], "--unpin"}},
		{"not HOST:PORT", []string{"tenant", "move", "acme", "--node", "nowhere"}},
		{"node 127.0.0.1:1 not found", []string{"tenant", "move", "acme", "--node", "127.0.0.1:1"}},
		{`tenant "nobody" not found`, []string{"tenant", "move", "nobody", "--node", workers[0]}},
		{"invalid tenant slug", []string{"tenant", "move", "Bad_Slug", "--node", workers[0]}},
		{"unknown flag", []string{"db", "rebalance", "--dry"}},
	} {
		c.expect(2, bad.want, bad.args...)
	}
	if got := placed(); len(got) != 2 || got["acme"] != where["acme"] || got["globex"] != where["globex"] {
		t.Fatalf("bad input moved or pinned a tenant: %v, was %v", got, where)
	}

	// Move acme to the worker it is not on: moved and pinned.
	target := workers[0]
	if where["acme"] == target {
		target = workers[1]
	}
	contains(t, "tenant move", c.ok("tenant", "move", "acme", "--node", target).stdout,
		"Moved tenant acme from "+where["acme"]+" to "+target, "pinned there")
	contains(t, "tenant show", c.ok("tenant", "show", "acme").stdout, target+" (pinned)", "move")
	// globex to the same node, as JSON; then both are pinned there and the rebalancer has
	// nothing it may move.
	var mv struct {
		Tenant, From, To string
		Moved            bool
	}
	r := c.ok("tenant", "move", "globex", "--node", target, "-o", "json")
	decodeOne(t, r.stdout, &mv)
	if mv.Tenant != "globex" || mv.To != target || mv.Moved != (where["globex"] != target) {
		t.Fatalf("tenant move -o json: %+v", mv)
	}
	if got := placed(); got["acme"] != target || got["globex"] != target || got["acme pinned"] != target || got["globex pinned"] != target {
		t.Fatalf("after the moves: %v", got)
	}
	contains(t, "db rebalance --dry-run", c.ok("db", "rebalance", "--dry-run").stdout, "Nothing to move")
	contains(t, "db rebalance", c.ok("db", "rebalance").stdout, "Nothing to move")

	// Unpinned, globex is the rebalancer's: two tenants on one worker, none on the other.
	contains(t, "tenant move --unpin", c.ok("tenant", "move", "globex", "--unpin").stdout, "is not pinned", target)
	contains(t, "db rebalance --dry-run", c.ok("db", "rebalance", "--dry-run").stdout, "Would move 1 tenant", "globex", target)
	if got := placed(); got["globex"] != target {
		t.Fatalf("a dry run moved globex to %s", got["globex"])
	}
	var rb struct {
		DryRun bool `json:"dry_run"`
		Moves  []struct{ Tenant, From, To string }
	}
	decodeOne(t, c.ok("db", "rebalance", "-o", "json").stdout, &rb)
	if rb.DryRun || len(rb.Moves) != 1 || rb.Moves[0].Tenant != "globex" || rb.Moves[0].From != target || rb.Moves[0].To == target {
		t.Fatalf("db rebalance -o json: %+v", rb)
	}
	for _, n := range nodes() {
		pinned := 0
		if n.Node == target {
			pinned = 1 // acme
		}
		if !n.Coordinator && (n.Tenants != 1 || n.Pinned != pinned) {
			t.Fatalf("db status after the rebalance: %+v", nodes())
		}
	}
	contains(t, "tenant show", c.ok("tenant", "show", "globex").stdout, "db rebalance: moved from "+target)

	// The rows went with their tenants, and stayed apart.
	if n := c.count(`SELECT count(*) FROM tenant_acme.products`); n != 1 {
		t.Fatalf("acme has %d products, want its 1", n)
	}
	if n := c.count(`SELECT count(*) FROM tenant_globex.products WHERE sku LIKE 'G%'`); n != 2 {
		t.Fatalf("globex has %d of its 2 products", n)
	}
	contains(t, "reconcile", c.ok("reconcile", "--all").stdout, "2 unchanged")

	// Archived, globex stays on its node: db status counts it as an archive there, not as a
	// tenant, and the rebalancer leaves it; restored, it is where it was.
	globexNode := placed()["globex"]
	c.ok("tenant", "delete", "globex", "--yes")
	for _, n := range nodes() {
		if n.Node == globexNode && (n.Tenants != 0 || n.Archives != 1) {
			t.Fatalf("db status with globex archived: %+v", nodes())
		}
	}
	contains(t, "db status", c.ok("db", "status").stdout, "ARCHIVES")
	contains(t, "db rebalance", c.ok("db", "rebalance").stdout, "Nothing to move")
	c.ok("tenant", "restore", "globex")
	if got := placed(); got["globex"] != globexNode {
		t.Fatalf("globex restored on %s, archived on %s", got["globex"], globexNode)
	}
}

// On plain PostgreSQL, tenant move and db rebalance say they need Citus and change nothing;
// tenant list has no node column and db status no nodes.
func TestCLIMoveNeedsCitus(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.expect(2, "needs Citus", "tenant", "move", "acme", "--node", "127.0.0.1:9701")
	c.expect(2, "needs Citus", "tenant", "move", "acme", "--unpin")
	c.expect(2, "needs Citus", "db", "rebalance")
	c.expect(2, "needs Citus", "db", "rebalance", "--dry-run")
	if strings.Contains(c.ok("tenant", "list").stdout, "NODE") {
		t.Fatal("tenant list has a node column on plain PostgreSQL")
	}
	var st map[string]json.RawMessage
	decodeOne(t, c.ok("db", "status", "-o", "json").stdout, &st)
	if _, ok := st["nodes"]; ok {
		t.Fatalf("db status lists nodes on plain PostgreSQL: %s", st["nodes"])
	}
	if n := c.count(`SELECT count(*) FROM erpctl.events WHERE kind IN ('move', 'unpin')`); n != 0 {
		t.Fatalf("%d move events on plain PostgreSQL", n)
	}
}
