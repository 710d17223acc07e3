package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// On Citus (the citus extension installed in the database, erpctl pointed at its coordinator),
// every tenant schema is a distributed schema: its tables are single-shard tables placed
// together on one worker, and the schema moves whole. erpctl distributes each tenant schema
// itself once its tables exist, and keeps every other schema it makes local: the catalog, and
// the scratch schemas that comparisons create and roll back. Whatever the database's
// citus.enable_schema_based_sharding says, erpctl turns it off in its own transactions, so
// that a schema becomes distributed only when erpctl asks for it. On plain PostgreSQL none of
// this runs.

// citusLocal keeps the schemas a transaction creates from here on local on Citus.
const citusLocal = `SET LOCAL citus.enable_schema_based_sharding = off`

// detectCitus reports whether the database has the citus extension.
func (p *Plane) detectCitus(ctx context.Context) error {
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')`).Scan(&p.citus); err != nil {
		return fmt.Errorf("look for the citus extension: %w", err)
	}
	return nil
}

// Citus reports whether the database is a Citus coordinator's (the citus extension is there).
func (p *Plane) Citus() bool { return p.citus }

// keepLocal makes the schemas tx creates from now on local on Citus.
func (p *Plane) keepLocal(ctx context.Context, tx *schema.Tx) error {
	if !p.citus {
		return nil
	}
	return tx.ExecStatements(ctx, citusLocal)
}

// distribute makes a tenant schema a distributed schema on Citus, in tx, after its tables:
// Citus turns each table into a single-shard table of the schema's own colocation group and
// places the group on a worker. A schema that is distributed already is left as it is.
func (p *Plane) distribute(ctx context.Context, tx *schema.Tx, schemaName string) error {
	d := p.distributeStmt(schemaName)
	if d == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, d.SQL, d.Args...); err != nil {
		return fmt.Errorf("distribute schema %s on Citus: %w", schemaName, err)
	}
	return nil
}

// distributeStmt is distribute's statement, for a batch; nil on plain PostgreSQL.
func (p *Plane) distributeStmt(schemaName string) *schema.Stmt {
	if !p.citus {
		return nil
	}
	return &schema.Stmt{SQL: `SELECT pg_catalog.citus_schema_distribute(n.oid) FROM pg_catalog.pg_namespace n
		WHERE n.nspname = $1 AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_schema d WHERE d.schemaid = n.oid)`, Args: []any{schemaName}}
}

// citusLogin lets the data API's role log in on Citus. A coordinator runs a statement on a
// worker over a connection it opens as the current role, SET ROLE included, so a NOLOGIN role
// cannot read a single row there. The role has no password: it logs in only where the
// cluster's own node-to-node authentication (trust, certificates, pg_dist_authinfo) lets it.
func (p *Plane) citusLogin(ctx context.Context, role string) error {
	if !p.citus {
		return nil
	}
	var can bool
	if err := p.pool.QueryRow(ctx, `SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1`, role).Scan(&can); err != nil {
		return fmt.Errorf("read the data API's role %s: %w", role, err)
	}
	if can {
		return nil
	}
	// Citus propagates ALTER ROLE to the workers.
	if _, err := p.pool.Exec(ctx, `ALTER ROLE `+ident.Quote(role)+` LOGIN`); err != nil {
		return fmt.Errorf("let the data API's role %s log in to Citus workers: %w", role, err)
	}
	return nil
}

// placementsSQL maps each distributed tenant schema to the node that holds its tables: every
// table of the schema is in the schema's colocation group, so one shard says where all are.
const placementsSQL = `SELECT n.nspname::text, nd.nodename || ':' || nd.nodeport
	FROM pg_catalog.pg_dist_schema ds
	JOIN pg_catalog.pg_namespace n ON n.oid = ds.schemaid
	JOIN LATERAL (SELECT s.shardid FROM pg_catalog.pg_dist_partition dp
		JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid = dp.logicalrelid
		WHERE dp.colocationid = ds.colocationid LIMIT 1) sh ON true
	JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = sh.shardid
	JOIN pg_catalog.pg_dist_node nd ON nd.groupid = pl.groupid`

// placements maps tenant schemas (all of them when names is nil) to their node on Citus.
func (p *Plane) placements(ctx context.Context, names []string) (map[string]string, error) {
	q, args := placementsSQL, []any{}
	if names != nil {
		q, args = q+` WHERE n.nspname = ANY($1)`, []any{names}
	}
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read the Citus placements: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var s, node string
		if err := rows.Scan(&s, &node); err != nil {
			return nil, fmt.Errorf("read the Citus placements: %w", err)
		}
		out[s] = node
	}
	return out, rows.Err()
}

// placeTenants fills in each tenant's node on Citus.
func (p *Plane) placeTenants(ctx context.Context, ts []*Tenant) error {
	if !p.citus || len(ts) == 0 {
		return nil
	}
	var names []string
	if len(ts) == 1 {
		names = []string{ts[0].Schema}
	}
	nodes, err := p.placements(ctx, names)
	if err != nil {
		return err
	}
	for _, t := range ts {
		t.Node = nodes[t.Schema]
	}
	return nil
}

// Node is one node of a Citus cluster and the tenants on it.
type Node struct {
	Node        string `json:"node"` // host:port
	Coordinator bool   `json:"coordinator"`
	Active      bool   `json:"active"`
	HasShards   bool   `json:"should_have_shards"` // Citus may place shards there (pg_dist_node.shouldhaveshards)
	Tenants     int    `json:"tenants"`
	Pinned      int    `json:"pinned"`   // of those, pinned there by tenant move
	Archives    int    `json:"archives"` // archived tenants' schemas there, which the rebalancer leaves
}

// TakesTenants reports whether tenant move and the rebalancer may put tenants on the node.
func (n Node) TakesTenants() bool { return n.Active && n.HasShards }

// ErrNotCitus says a command needs Citus and the database has no citus extension.
var ErrNotCitus = fmt.Errorf("%w: this needs Citus, and the database has no citus extension", ErrInvalid)

// Nodes lists the primary nodes of the Citus cluster with their tenant counts.
func (p *Plane) Nodes(ctx context.Context) ([]Node, error) {
	if !p.citus {
		return nil, fmt.Errorf("list nodes: %w", ErrNotCitus)
	}
	rows, err := p.pool.Query(ctx, `WITH placed AS (`+placementsSQL+`)
		SELECT nd.nodename || ':' || nd.nodeport, nd.groupid = 0, nd.isactive, nd.shouldhaveshards,
			count(t.slug)::int, count(t.slug) FILTER (WHERE t.pinned_node <> '')::int, count(a.slug)::int
		FROM pg_catalog.pg_dist_node nd
		LEFT JOIN placed pc(nspname, node) ON pc.node = nd.nodename || ':' || nd.nodeport
		LEFT JOIN erpctl.tenants t ON t.schema_name = pc.nspname
		LEFT JOIN erpctl.archives a ON a.schema_name = pc.nspname
		WHERE nd.noderole = 'primary'
		GROUP BY nd.nodeid, nd.nodename, nd.nodeport, nd.groupid, nd.isactive, nd.shouldhaveshards
		ORDER BY nd.groupid, nd.nodeid`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Node])
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// checkNode finds node ("host:port") among the Citus nodes that may hold tenants, and returns
// its host and port.
func (p *Plane) checkNode(ctx context.Context, node string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(node)
	if err != nil || host == "" {
		return "", "", fmt.Errorf("%w: node %q is not HOST:PORT", ErrInvalid, node)
	}
	nodes, err := p.Nodes(ctx)
	if err != nil {
		return "", "", err
	}
	var known []string
	for _, n := range nodes {
		if n.Node == host+":"+port {
			if !n.TakesTenants() {
				return "", "", fmt.Errorf("%w: node %s takes no tenants (inactive, or without shards)", ErrInvalid, node)
			}
			return host, port, nil
		}
		if n.TakesTenants() {
			known = append(known, n.Node)
		}
	}
	return "", "", fmt.Errorf("node %s %w; the nodes that take tenants are %s", node, ErrNotFound, strings.Join(known, ", "))
}

// MoveResult is what tenant move did.
type MoveResult struct {
	Tenant   string        `json:"tenant"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Moved    bool          `json:"moved"`              // false: it was on that node already, and is pinned now
	Archived bool          `json:"archived,omitempty"` // a rebalance moved the tenant's archive
	Duration time.Duration `json:"duration_ns"`
}

// MoveTenant moves a tenant's schema to node with citus_schema_move and pins it there, so that
// the rebalancer (see Rebalance) leaves it. Citus copies the tables while they keep serving
// reads and writes, and blocks writes only for the switch at the end. A schema made before the
// database had Citus is distributed first.
func (p *Plane) MoveTenant(ctx context.Context, slug ident.Slug, node string) (*MoveResult, error) {
	start := time.Now()
	if !p.citus {
		return nil, fmt.Errorf("move tenant %q: %w", slug, ErrNotCitus)
	}
	// The tenant's lock, held for the whole move in a transaction of its own (Citus refuses a
	// move inside one): a rollout or repair of the tenant meanwhile skips it or waits, instead
	// of meeting the move's locks and failing on its lock timeout; a second move waits, then
	// finds the tenant where the first put it.
	lock, err := p.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("move tenant %q: %w", slug, err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, tenantLockKey(slug)); err != nil {
		return nil, fmt.Errorf("move tenant %q: take its lock: %w", slug, err)
	}
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("move tenant: %w", err)
	}
	host, port, err := p.checkNode(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("move tenant %q: %w", slug, err)
	}
	node = host + ":" + port
	if t.Node == "" {
		if err := p.inTx(ctx, func(tx *schema.Tx) error { return p.distribute(ctx, tx, t.Schema) }); err != nil {
			return nil, fmt.Errorf("move tenant %q: %w", slug, err)
		}
		if err := p.placeTenants(ctx, []*Tenant{t}); err != nil {
			return nil, fmt.Errorf("move tenant %q: %w", slug, err)
		}
	}
	res := &MoveResult{Tenant: slug.String(), From: t.Node, To: node}
	stmt := ""
	if t.Node != node {
		// Not in a transaction: Citus refuses a move inside one (it copies over its own connections).
		stmt = fmt.Sprintf("SELECT citus_schema_move(%s, %s, %s)", ident.Literal(t.Schema), ident.Literal(host), port)
		if _, err := p.pool.Exec(ctx, `SELECT pg_catalog.citus_schema_move($1::regnamespace, $2, $3::int)`, t.Schema, host, port); err != nil {
			err = fmt.Errorf("move tenant %q to %s: %w", slug, node, err)
			// The tenant stays where it was, with its pin as before; the event says what was tried.
			if evErr := insertEventWhy(ctx, p.db, slug, "move", "tenant move from "+orNone(t.Node)+" to "+node, stmt, time.Since(start), "failed", err); evErr != nil {
				p.log.Warn("record a failed move", "tenant", slug.String(), "err", evErr)
			}
			return nil, err
		}
		res.Moved = true
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET pinned_node = $2, updated_at = now() WHERE slug = $1`, slug.String(), node); err != nil {
			return err
		}
		why := "tenant move from " + orNone(t.Node) + " to " + node + ", pinned there"
		if !res.Moved {
			why = "tenant move: pinned to " + node + ", where it was"
		}
		return insertEventWhy(ctx, tx, slug, "move", why, stmt, time.Since(start), "applied", nil)
	})
	if err != nil {
		return nil, fmt.Errorf("pin tenant %q to %s: %w", slug, node, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// UnpinTenant lets the rebalancer move a tenant again; it stays where it is until then.
// Unpinning a tenant that is not pinned changes nothing and records nothing.
func (p *Plane) UnpinTenant(ctx context.Context, slug ident.Slug) (*Tenant, error) {
	if !p.citus {
		return nil, fmt.Errorf("unpin tenant %q: %w", slug, ErrNotCitus)
	}
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("unpin tenant: %w", err)
	}
	if t.PinnedNode == "" {
		return t, nil
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET pinned_node = '', updated_at = now() WHERE slug = $1`, slug.String()); err != nil {
			return err
		}
		return insertEventWhy(ctx, tx, slug, "unpin", "tenant move --unpin: was pinned to "+t.PinnedNode, "", 0, "applied", nil)
	})
	if err != nil {
		return nil, fmt.Errorf("unpin tenant %q: %w", slug, err)
	}
	t.PinnedNode = ""
	return t, nil
}

// The rebalance strategy erpctl registers: a shard costs 1, or 0 in an archive, so that only
// live tenants count toward the balance; an allowed-on-node function keeps a pinned tenant's
// shards on its pinned node, an archive's on its tenant's pin or, unpinned, where they are,
// and lets every other shard go anywhere. Archives stay distributed schemas, renamed out of
// the tenant namespace; without this the rebalancer moved them as if they were tenants.
const (
	rebalanceStrategy = "erpctl_pins"
	shardCostFunc     = `CREATE OR REPLACE FUNCTION erpctl.shard_cost(shardid bigint) RETURNS real
LANGUAGE sql STABLE AS $$
SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_dist_shard s
	JOIN pg_catalog.pg_class c ON c.oid = s.logicalrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE s.shardid = $1 AND starts_with(n.nspname, '` + archivePrefix + `')) THEN 0 ELSE 1 END::real
$$`
	allowedOnNodeFunc = `CREATE OR REPLACE FUNCTION erpctl.shard_allowed_on_node(shardid bigint, nodeid int) RETURNS boolean
LANGUAGE sql STABLE AS $$
SELECT coalesce((SELECT CASE
		WHEN starts_with(n.nspname, '` + archivePrefix + `') THEN nd.nodename || ':' || nd.nodeport = coalesce(
			nullif(a.tenant->>'pinned_node', ''),
			(SELECT here.nodename || ':' || here.nodeport FROM pg_catalog.pg_dist_placement pl
				JOIN pg_catalog.pg_dist_node here ON here.groupid = pl.groupid WHERE pl.shardid = s.shardid LIMIT 1))
		WHEN t.pinned_node <> '' THEN t.pinned_node = nd.nodename || ':' || nd.nodeport
		ELSE true END
	FROM pg_catalog.pg_dist_shard s
	JOIN pg_catalog.pg_class c ON c.oid = s.logicalrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_catalog.pg_dist_node nd ON nd.nodeid = $2
	LEFT JOIN erpctl.tenants t ON t.schema_name = n.nspname
	LEFT JOIN erpctl.archives a ON a.schema_name = n.nspname
	WHERE s.shardid = $1), true)
$$`
)

// RebalanceResult is what a rebalance moved, or with DryRun would move.
type RebalanceResult struct {
	DryRun   bool          `json:"dry_run"`
	Moves    []MoveResult  `json:"moves"`
	Duration time.Duration `json:"duration_ns"`
}

// RebalanceOptions are the choices of a rebalance.
type RebalanceOptions struct {
	DryRun bool // list the moves Citus plans, and make none
}

// Rebalance runs Citus's rebalancer with erpctl's strategy: unpinned tenants spread over the
// nodes by shard count, pinned tenants stay where they are pinned, and archives stay where
// they are (or go back to their tenant's pin) without counting toward the spread.
func (p *Plane) Rebalance(ctx context.Context, opts RebalanceOptions) (*RebalanceResult, error) {
	start := time.Now()
	if !p.citus {
		return nil, fmt.Errorf("rebalance: %w", ErrNotCitus)
	}
	if err := p.rebalanceStrategy(ctx); err != nil {
		return nil, fmt.Errorf("rebalance: register erpctl's rebalance strategy: %w", err)
	}
	if opts.DryRun {
		moves, err := p.rebalancePlan(ctx)
		if err != nil {
			return nil, fmt.Errorf("rebalance: plan: %w", err)
		}
		return &RebalanceResult{DryRun: true, Moves: moves, Duration: time.Since(start)}, nil
	}
	before, err := p.placements(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("rebalance: %w", err)
	}
	// Not in a transaction, as for a move; it returns when every move is done. When it fails
	// part way, the moves it made stand: they are read and recorded all the same.
	_, rbErr := p.pool.Exec(ctx, `SELECT pg_catalog.rebalance_table_shards(rebalance_strategy := $1)`, rebalanceStrategy)
	res, err := p.recordRebalance(ctx, before)
	res.Duration = time.Since(start)
	if err = errors.Join(rbErr, err); err != nil {
		return res, fmt.Errorf("rebalance: %w", err)
	}
	return res, nil
}

// rebalanceStrategy registers erpctl's strategy once, and its function each time (so that an
// upgraded erpctl's function replaces an older one).
func (p *Plane) rebalanceStrategy(ctx context.Context) error {
	return p.inTx(ctx, func(tx *schema.Tx) error {
		if err := p.keepLocal(ctx, tx); err != nil {
			return err
		}
		if err := tx.ExecStatements(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, catalogLockKey), markOwnDDL, shardCostFunc, allowedOnNodeFunc); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.citus_add_rebalance_strategy($1, 'erpctl.shard_cost', 'citus_node_capacity_1',
			'erpctl.shard_allowed_on_node', 0, 0, 0)
			WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_rebalance_strategy WHERE name = $1)`, rebalanceStrategy); err != nil {
			return err
		}
		// A strategy registered by an older erpctl counted every shard, archives included.
		_, err := tx.ExecContext(ctx, `UPDATE pg_catalog.pg_dist_rebalance_strategy SET shard_cost_function = 'erpctl.shard_cost'::regproc
			WHERE name = $1 AND shard_cost_function <> 'erpctl.shard_cost'::regproc`, rebalanceStrategy)
		return err
	})
}

// rebalancePlan is the tenants and archives Citus's rebalancer would move with erpctl's
// strategy, and where: the plan names one shard per colocation group, that is per schema.
func (p *Plane) rebalancePlan(ctx context.Context) ([]MoveResult, error) {
	rows, err := p.pool.Query(ctx, `SELECT DISTINCT coalesce(t.slug, a.slug)::text, a.slug IS NOT NULL,
			pl.sourcename || ':' || pl.sourceport, pl.targetname || ':' || pl.targetport
		FROM pg_catalog.get_rebalance_table_shards_plan(rebalance_strategy := $1) pl
		JOIN pg_catalog.pg_class c ON c.oid = pl.table_name
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN erpctl.tenants t ON t.schema_name = n.nspname
		LEFT JOIN erpctl.archives a ON a.schema_name = n.nspname
		WHERE t.slug IS NOT NULL OR a.slug IS NOT NULL
		ORDER BY 1, 2`, rebalanceStrategy)
	if err != nil {
		return nil, err
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MoveResult, error) {
		var m MoveResult
		return m, r.Scan(&m.Tenant, &m.Archived, &m.From, &m.To)
	})
	if moves == nil {
		moves = []MoveResult{}
	}
	return moves, err
}

// recordRebalance compares the placements with before and records a move event for each
// tenant, or tenant's archive, that the rebalancer moved.
func (p *Plane) recordRebalance(ctx context.Context, before map[string]string) (*RebalanceResult, error) {
	res := &RebalanceResult{Moves: []MoveResult{}}
	after, err := p.placements(ctx, nil)
	if err != nil {
		return res, err
	}
	tenants, err := p.ListTenants(ctx)
	if err != nil {
		return res, err
	}
	for _, t := range tenants {
		if b, a := before[t.Schema], after[t.Schema]; b != a {
			res.Moves = append(res.Moves, MoveResult{Tenant: t.Slug, From: b, To: a, Moved: true})
		}
	}
	archives, err := p.ListArchives(ctx)
	if err != nil {
		return res, err
	}
	for _, t := range archives {
		if b, a := before[t.Schema], after[t.Schema]; b != a {
			res.Moves = append(res.Moves, MoveResult{Tenant: t.Slug, From: b, To: a, Moved: true, Archived: true})
		}
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		for _, m := range res.Moves {
			why := fmt.Sprintf("db rebalance: moved from %s to %s", m.From, m.To)
			if m.Archived {
				why = fmt.Sprintf("db rebalance: moved the archive from %s to %s", m.From, m.To)
			}
			if err := insertEventWhy(ctx, tx, ident.MustParseSlug(m.Tenant), "move", why, "", 0, "applied", nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("record the moves: %w", err)
	}
	return res, nil
}
