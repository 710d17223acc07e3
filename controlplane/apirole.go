package controlplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// The data API runs its statements as a role of its own, which may only read and write the rows
// of tenant schemas: it owns nothing, so it can run no DDL; it has no privilege on the erpctl
// catalog, so it cannot read tokens; and it is no superuser, so it cannot run server programs.
// The role is per database (roles are cluster-wide) and is recorded in erpctl.meta. See APIDB for how
// the data API takes it.
//
// Making the role needs CREATEROLE or a superuser: the control plane's role, or Config.AdminURL
// at Open, which makes it and grants it to the control plane's role. Without either, the data API
// runs as the control plane's own role, as before, and the log says so once.

// apiRoleExpr names the data API's role of the current database.
const apiRoleExpr = `'erpctl_api_' || substr(md5(current_database()), 1, 12)`

// apiRoleState is the Plane's view of the role.
type apiRoleState struct {
	once  sync.Once
	name  string // "" when there is none
	mu    sync.Mutex
	pools []*pgxpool.Pool // APIDB's, closed with the Plane
	db    Statements      // APIDB: a pool, pools by tenant, or a pool taking the role per statement
}

// apiGrants are the statements that open the rows of schemaName to role: what the schema holds
// now, and by default privileges what the control plane creates in it later, so that a rollout
// that adds a table needs no GRANT of its own.
func apiGrants(schemaName, role string) []string {
	s, r := ident.Quote(schemaName), ident.Quote(role)
	return []string{
		"GRANT USAGE ON SCHEMA " + s + " TO " + r,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + s + " TO " + r,
		"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA " + s + " TO " + r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + r,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT USAGE, SELECT ON SEQUENCES TO " + r,
	}
}

// APIRole is the data API's role, "" when the control plane could not make one.
func (p *Plane) APIRole(ctx context.Context) string {
	p.api.once.Do(func() {
		name, err := p.ensureAPIRole(ctx)
		if err == nil {
			err = p.citusLogin(ctx, name)
		}
		if err != nil {
			p.log.Warn("the data API runs as the control plane's role: its own could not be made", "err", err)
			return
		}
		p.api.name = name
	})
	return p.api.name
}

// ensureAPIRole returns the role recorded for this database, making it (and granting it every
// existing tenant schema) when there is none.
func (p *Plane) ensureAPIRole(ctx context.Context) (string, error) {
	var name string
	var usable bool
	// A role the control plane's role is no member of (a database an earlier erpctl made as the
	// superuser, since handed to its own role) is granted again.
	err := p.pool.QueryRow(ctx, `SELECT m.value, coalesce(pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'), false)
		FROM erpctl.meta m LEFT JOIN pg_catalog.pg_roles r ON r.rolname = m.value WHERE m.key = 'api_role'`).Scan(&name, &usable)
	switch {
	case err == nil && usable:
		return name, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("read the data API's role: %w", err)
	}
	var may, have, member bool
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user),
		r.oid IS NOT NULL, coalesce(pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER'), false)
		FROM (SELECT `+apiRoleExpr+` AS name) n LEFT JOIN pg_catalog.pg_roles r ON r.rolname = n.name`).Scan(&may, &have, &member); err != nil {
		return "", fmt.Errorf("read the control plane's role: %w", err)
	}
	if !member && !may {
		return "", errors.New("the control plane's role has neither CREATEROLE nor superuser, and no superuser made the role for it")
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		if err := tx.ExecStatements(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, catalogLockKey)); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT `+apiRoleExpr).Scan(&name); err != nil {
			return err
		}
		stmts := []string{}
		if !have {
			stmts = append(stmts, "CREATE ROLE "+ident.Quote(name)+" NOLOGIN NOINHERIT")
		}
		if !member {
			stmts = append(stmts, "GRANT "+ident.Quote(name)+" TO CURRENT_USER")
		}
		rows, err := tx.QueryContext(ctx, `SELECT schema_name FROM erpctl.tenants`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			stmts = append(stmts, apiGrants(s, name)...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := tx.ExecStatements(ctx, stmts...); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ('api_role', $1)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, name)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("make the data API's role: %w", err)
	}
	p.log.Info("the data API runs as its own role", "role", name)
	return name, nil
}

// apiOpenSQL is a column of a query of erpctl.tenants t: whether the data API's role has its
// grants on the tenant's schema, read where the reconciler reads the tenant anyway. A schema that
// has the default privileges already needs no GRANT: granting on every apply instead made a
// column rename at 930 tenants six times slower. Default privileges belong to the role that set
// them: those of another role (the superuser that ran an earlier erpctl) do not open what this
// one creates.
const apiOpenSQL = `EXISTS (SELECT FROM pg_catalog.pg_default_acl d
		JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = t.schema_name
		AND d.defaclrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user))`

// Statements runs statements one at a time, each on its own: what the data API needs of the
// database (a *pgxpool.Pool has these methods).
type Statements interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// APIExecMode is how the data API sends its statements unless the database URL's
// default_query_exec_mode says otherwise. Each statement names its tenant's schema, so its text
// differs from tenant to tenant: pgx's default, a cache of 512 prepared statements on each
// connection, thrashes once the API serves more tenants than that, and the server keeps a plan
// for each statement on each connection. In exec mode each statement is parsed and planned where
// it runs, in one round trip, and nothing is kept: the cost of a request, and the server's
// memory, do not grow with the tenants served (see the README's data API figures). It also
// cannot meet a statement prepared before a schema change ("cached plan must not change result
// type").
const APIExecMode = pgx.QueryExecModeExec

// DefaultAPIStatementTimeout bounds each statement of the data API unless APIOptions says
// otherwise: long enough for any screen of an ERP, short enough that one request cannot hold a
// connection for long.
const DefaultAPIStatementTimeout = 5 * time.Second

// APIOptions tune the data API's pool. The first call of APIDB makes the pool with them.
type APIOptions struct {
	// StatementTimeout bounds each statement; 0: DefaultAPIStatementTimeout. The server stops a
	// statement past it (SQLSTATE 57014), and its connection is free at once.
	StatementTimeout time.Duration
	// ConnTenants is how many tenants one connection serves before it is closed, once free, and
	// a new one opened in its place; 0: DefaultAPIConnTenants; below 0: no bound. It applies
	// where each connection is a pool of its own (directly, in exec mode).
	ConnTenants int
}

// DefaultAPIConnTenants bounds the tenants one data API connection serves. A backend keeps
// what it read of the catalog for every table it has run a statement on, about 20 kB a table,
// and frees none of it until it ends: without a bound, a connection of a data API over 100,000
// tenants would hold a share of all of theirs until its lifetime ends. 2,000 tenants is 40 MB a
// backend for one table each (a fleet of 10,000 tenants on 16 connections gives each about
// 1,250, so it is never reached there), and 480 MB for a client that reads twelve tables of
// every tenant.
const DefaultAPIConnTenants = 2000

// APIDB is what the data API runs its statements on: a pool of its own, of the control plane's
// size, so that a flood of requests cannot take the reconciler's connections, as the data API's
// role (or the control plane's own when there is no such role), with the statement timeout, in
// the data API's statement mode. Directly, its connections take the role (SET ROLE) and the
// timeout (a startup parameter) once, so that a statement pays nothing for them. Behind a
// transaction pooler, a session's settings would stay on whichever server connection a later
// transaction of anyone gets, so each statement takes them for its own transaction instead.
func (p *Plane) APIDB(ctx context.Context, opts ...APIOptions) (Statements, error) {
	var o APIOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	timeout := strconv.FormatInt(cmp.Or(o.StatementTimeout, DefaultAPIStatementTimeout).Milliseconds(), 10)
	role := p.APIRole(ctx)
	p.api.mu.Lock()
	defer p.api.mu.Unlock()
	if p.api.db != nil {
		return p.api.db, nil
	}
	cfg := p.pool.Config().Copy()
	cfg.ConnConfig.DefaultQueryExecMode = p.apiMode
	pooled := p.direct != p.pool
	if !pooled {
		if cfg.ConnConfig.RuntimeParams == nil {
			cfg.ConnConfig.RuntimeParams = map[string]string{}
		}
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = timeout
		if role != "" {
			setRole := "SET ROLE " + ident.Quote(role)
			cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, setRole)
				return err
			}
		}
	}
	// Directly and in exec mode, one pool a connection, and a tenant's statements go to the
	// connections it has used before (execStatements.ForTenant). A backend keeps what it read of
	// the catalog for each table it has run a statement on: the first statement on a tenant's
	// table costs 4 to 8 times a later one, and the backend's memory grows with every tenant it
	// has served. On connections taken in turn every backend learns every tenant: at 9,800
	// tenants a pgx client spread over all of them on 16 connections ran at 2,500 statements a
	// second, against 11,000 with each connection kept to its own sixteenth of them and 17,000
	// on one tenant (shared_buffers 1GB). Behind a pooler the pooler picks the server
	// connection: one pool.
	n := 1
	if !pooled && p.apiMode == pgx.QueryExecModeExec {
		n = int(cfg.MaxConns)
	}
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		c := cfg.Copy()
		if n > 1 {
			// The pool's minimums (pool_min_conns, pool_min_idle_conns) as connections kept open.
			c.MaxConns, c.MinConns, c.MinIdleConns = 1, 0, 0
			if int32(i) < max(cfg.MinConns, cfg.MinIdleConns) {
				c.MinConns = 1
			}
		}
		pool, err := pgxpool.NewWithConfig(ctx, c)
		if err != nil {
			for _, made := range pools[:i] {
				made.Close()
			}
			return nil, fmt.Errorf("connect the data API as %s: %w", cmp.Or(role, "the control plane's role"), err)
		}
		pools[i] = pool
	}
	p.api.pools = pools
	ap := &apiPools{pools: pools, free: make([]chan struct{}, n), holder: make([]atomic.Uint32, n), since: make([]atomic.Int64, n),
		served: make([]servedTenants, n)}
	ap.maxTenants = apiConnBound(n, o.ConnTenants)
	for i := range ap.free {
		ap.free[i] = make(chan struct{}, 1)
		ap.free[i] <- struct{}{}
	}
	switch {
	case pooled:
		// "none" is the session's own role: the control plane's, when the API has none.
		p.api.db = execStatements{apiPools: ap, role: cmp.Or(role, "none"), timeout: timeout}
	case p.apiMode == pgx.QueryExecModeExec:
		// execStatements honours the result formats a statement asks for (pgx's exec mode reads
		// every column as text).
		p.api.db = execStatements{apiPools: ap}
	default:
		p.api.db = pools[0]
	}
	return p.api.db, nil
}

// execStatements sends each statement on its own, unprepared, in one round trip: Parse, Bind,
// Describe and Execute. Arguments are sent as text for the server to type, as pgx's exec mode
// does; a leading pgx.QueryResultFormats is honoured. With a role (behind a transaction pooler),
// the statement goes in a batch after set_config(..., true)s that take the role and the statement
// timeout for the statement's own transaction (which the server runs the batch as), so that the
// server connection goes back to the pooler as the control plane's role.
type execStatements struct {
	*apiPools
	homes   [2]int // the connections of the tenant's statements (ForTenant)
	tenant  uint32 // the tenant's hash, never 0 (ForTenant); 0: no tenant
	role    string
	timeout string // statement_timeout, in milliseconds, with role
}

// apiPools are the data API's pools: one, or one a connection.
type apiPools struct {
	pools []*pgxpool.Pool
	// free[i] holds a token while pools[i]'s connection is free; a statement takes it before
	// the connection, so that it can wait for either of two connections at once.
	free []chan struct{}
	// holder[i] is the tenant hash of the statement holding pools[i]'s connection, 0 when free;
	// since[i] is when it took the connection (UnixNano).
	holder []atomic.Uint32
	since  []atomic.Int64
	// maxTenants: a connection that has served this many tenants is closed once free (0: never).
	// served[i] are those pools[i]'s connection has served; only the holder of free[i] uses it.
	maxTenants int
	served     []servedTenants
	retired    atomic.Int64 // connections closed for it
}

// Retired is how many connections were closed for having served their share of tenants
// (APIOptions.ConnTenants).
func (p *apiPools) Retired() int64 { return p.retired.Load() }

// servedTenants are the tenants (their hashes) one connection, conn, has served.
type servedTenants struct {
	conn    *pgx.Conn
	tenants map[uint32]struct{}
}

// serve counts tenant among those pools[i]'s connection c has served; it reports whether c has
// now served its share and must be closed when free. A new connection in the pool (its last
// one closed, or at the end of its lifetime) starts from none.
func (p *apiPools) serve(i int, c *pgx.Conn, tenant uint32) (retire bool) {
	if p.maxTenants == 0 || tenant == 0 {
		return false
	}
	s := &p.served[i]
	if s.conn != c {
		s.conn, s.tenants = c, make(map[uint32]struct{}, min(p.maxTenants, 4096))
	}
	s.tenants[tenant] = struct{}{}
	if len(s.tenants) < p.maxTenants {
		return false
	}
	s.conn, s.tenants = nil, nil
	p.retired.Add(1)
	return true
}

// apiConn is a connection of the data API's pools, with the token of its pool when it took one.
type apiConn struct {
	pc     *pgxpool.Conn
	free   chan struct{}
	holder *atomic.Uint32
	retire bool // close it instead of giving it back (apiPools.serve)
}

func (c apiConn) Conn() *pgx.Conn { return c.pc.Conn() }

// Release gives the connection back, or closes it when it has served its tenants, then the
// token. The pool opens a new one for the next statement.
func (c apiConn) Release() {
	if c.retire {
		conn := c.pc.Hijack()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn.Close(ctx)
		}()
	} else {
		c.pc.Release()
	}
	if c.free != nil {
		c.holder.Store(0)
		c.free <- struct{}{}
	}
}

// A tenant's statement takes any free connection, not one of its own two, only when statements
// have held both for longStatement or more (at once when both run the tenant's own statements):
// long enough that short statements, however many queue behind each other under load and
// however long a busy machine makes them, keep each tenant on its two backends; short enough
// that a tenant whose connections another tenant's long statements hold is not held up by them
// for long. Taking any free connection after a wait of 2 ms instead taught every backend every
// tenant under load: at 9,930 tenants the server spent 820-1,070 µs a request spread over them,
// against 442-702 µs with each tenant kept to its own two. spillAfter is how often a waiting
// statement looks again.
const (
	longStatement = 20 * time.Millisecond
	spillAfter    = 2 * time.Millisecond
)

// ForTenant returns the statements of one tenant's request. They go to whichever of the
// tenant's two connections (by its slug's hash) is free first, or to any free connection when
// both have been held by statements for longStatement (at once when both run its own). Two rather than one: a statement waits less for one of two, and the fair
// scheduler's statements spread over all the connections, while each backend still serves
// about an eighth of the tenants rather than all of them.
func (d execStatements) ForTenant(tenant string) Statements {
	if n := uint32(len(d.pools)); n > 1 {
		h := fnv.New32a()
		h.Write([]byte(tenant))
		sum := h.Sum32()
		d.tenant = max(sum, 1)
		first := sum % n
		d.homes = [2]int{int(first), int((first + 1 + (sum/n)%(n-1)) % n)}
	}
	return d
}

// acquire takes a connection: one of the tenant's two as soon as either is free, else, once
// long statements hold both (see longStatement), any free one.
func (d execStatements) acquire(ctx context.Context) (apiConn, error) {
	if len(d.pools) == 1 {
		conn, err := d.pools[0].Acquire(ctx)
		return apiConn{pc: conn}, err
	}
	at, err := d.claim(ctx)
	if err != nil {
		return apiConn{}, err
	}
	conn, err := d.pools[at].Acquire(ctx)
	if err != nil {
		d.free[at] <- struct{}{}
		return apiConn{}, err
	}
	d.since[at].Store(time.Now().UnixNano())
	d.holder[at].Store(d.tenant)
	return apiConn{pc: conn, free: d.free[at], holder: &d.holder[at], retire: d.serve(at, conn.Conn(), d.tenant)}, nil
}

// claim takes the token of a free connection, as acquire says, and returns which.
func (d execStatements) claim(ctx context.Context) (int, error) {
	a, b := d.homes[0], d.homes[1]
	select {
	case <-d.free[a]:
		return a, nil
	default:
	}
	select {
	case <-d.free[b]:
		return b, nil
	default:
	}
	wait := spillAfter
	if d.ownBoth(a, b) {
		wait = 0
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-d.free[a]:
			return a, nil
		case <-d.free[b]:
			return b, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
			// Both held by its own or by long statements: any free connection. Else, or none
			// free, look again after spillAfter, still ready for either of its own meanwhile.
			if d.ownBoth(a, b) || d.heldLong(a) && d.heldLong(b) {
				for i := range d.free {
					select {
					case <-d.free[(a+i)%len(d.free)]:
						return (a + i) % len(d.free), nil
					default:
					}
				}
			}
			t.Reset(spillAfter)
		}
	}
}

// ownBoth reports whether the tenant's own statements hold both its connections: it is busy
// enough that its tables are worth learning on a third backend, and waiting would only cap its
// throughput at two.
func (d execStatements) ownBoth(a, b int) bool {
	return d.tenant != 0 && d.holder[a].Load() == d.tenant && d.holder[b].Load() == d.tenant
}

// heldLong reports whether a statement has held pools[i]'s connection for longStatement or more.
func (d execStatements) heldLong(i int) bool {
	return d.holder[i].Load() != 0 && time.Now().UnixNano()-d.since[i].Load() >= int64(longStatement)
}

const takeRole = `SELECT pg_catalog.set_config('role', $1, true), pg_catalog.set_config('statement_timeout', $2, true)`

// send sends the statement (after the role, when there is one) and returns its results.
func (d execStatements) send(ctx context.Context, sql string, args []any) (apiConn, *pgconn.MultiResultReader, error) {
	var formats pgx.QueryResultFormats
	if len(args) > 0 {
		if f, ok := args[0].(pgx.QueryResultFormats); ok {
			formats, args = f, args[1:]
		}
	}
	conn, err := d.acquire(ctx)
	if err != nil {
		return apiConn{}, nil, err
	}
	var eqb pgx.ExtendedQueryBuilder
	if err := eqb.Build(conn.Conn().TypeMap(), nil, args); err != nil {
		conn.Release()
		return apiConn{}, nil, err
	}
	b := &pgconn.Batch{}
	if d.role != "" {
		b.ExecParams(takeRole, [][]byte{[]byte(d.role), []byte(d.timeout)}, nil, nil, nil)
	}
	b.ExecParams(sql, eqb.ParamValues, nil, eqb.ParamFormats, formats)
	mrr := conn.Conn().PgConn().ExecBatch(ctx, b)
	if d.role != "" {
		if !mrr.NextResult() {
			err := mrr.Close()
			conn.Release()
			return apiConn{}, nil, fmt.Errorf("take the data API's role %s: %w", d.role, cmp.Or(err, errors.New("no result")))
		}
		if _, err := mrr.ResultReader().Close(); err != nil {
			mrr.Close()
			conn.Release()
			return apiConn{}, nil, fmt.Errorf("take the data API's role %s: %w", d.role, err)
		}
	}
	if !mrr.NextResult() {
		err := mrr.Close()
		conn.Release()
		return apiConn{}, nil, cmp.Or(err, errors.New("no result"))
	}
	return conn, mrr, nil
}

// Pools are the pools the statements run on (for their statistics).
func (d execStatements) Pools() []*pgxpool.Pool { return d.pools }

func (d execStatements) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	conn, mrr, err := d.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	return &batchRows{Rows: pgx.RowsFromResultReader(conn.Conn().TypeMap(), mrr.ResultReader()), mrr: mrr, conn: conn}, nil
}

func (d execStatements) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := d.Query(ctx, sql, args...)
	return oneRow{rows: rows, err: err}
}

func (d execStatements) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, mrr, err := d.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := mrr.ResultReader().Close()
	cerr := mrr.Close()
	conn.Release()
	return tag, cmp.Or(err, cerr)
}

// batchRows are the statement's rows; closing them ends the batch and gives the connection back.
type batchRows struct {
	pgx.Rows
	mrr  *pgconn.MultiResultReader
	conn apiConn
	err  error // the batch's own, at its end
	done bool
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.done {
		return
	}
	r.done = true
	r.err = r.mrr.Close()
	r.conn.Release()
}

func (r *batchRows) Err() error { return cmp.Or(r.Rows.Err(), r.err) }

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close() // as pgx's own rows do once read, so that the connection goes back at once
	return false
}

// oneRow is pgx's QueryRow over Query: the first row, or pgx.ErrNoRows.
type oneRow struct {
	rows pgx.Rows
	err  error
}

func (r oneRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// APIFiles is what the data API's backends need of the server's open files, for the fleet as it
// stands (Plane.APIFiles).
type APIFiles struct {
	Setting        int // the server's max_files_per_process
	TenantsPerConn int // the tenants one data API connection serves
	Need           int // the files a backend keeps open for them
}

// Short reports whether a backend would run out of files for its tenants, and so close and
// reopen a table's files for many of its statements.
func (f APIFiles) Short() bool { return f.Need > f.Setting }

// apiFilesPerTenant is what a backend keeps open for a tenant it serves one table of: the table
// and its indexes (measured: 5,000-5,600 files in each backend serving 1,250 tenants' products).
const apiFilesPerTenant = 4

// APIFiles compares the server's max_files_per_process with the files a data API backend keeps
// open for its share of the fleet: directly, each tenant keeps to two of the pool's connections,
// so a connection serves about 2/MaxConns of the tenants, and at most connTenants of them
// (APIOptions.ConnTenants: 0 the default, below 0 no bound); behind a pooler any server
// connection serves any tenant.
func (p *Plane) APIFiles(ctx context.Context, connTenants int) (APIFiles, error) {
	var f APIFiles
	var tenants int
	if err := p.pool.QueryRow(ctx, `SELECT current_setting('max_files_per_process')::int, (SELECT count(*) FROM erpctl.tenants)`).
		Scan(&f.Setting, &tenants); err != nil {
		return f, fmt.Errorf("read max_files_per_process and count tenants: %w", err)
	}
	f.TenantsPerConn = apiTenantsPerConn(tenants, int(p.pool.Config().MaxConns), connTenants,
		p.direct == p.pool && p.apiMode == pgx.QueryExecModeExec)
	f.Need = f.TenantsPerConn * apiFilesPerTenant
	return f, nil
}

// apiTenantsPerConn is how many of tenants one of conns data API connections serves; kept says
// whether each tenant keeps to its own connections (APIDB: directly, in exec mode).
func apiTenantsPerConn(tenants, conns, connTenants int, kept bool) int {
	if !kept || conns < 2 {
		return tenants
	}
	per := (2*tenants + conns - 1) / conns
	if bound := apiConnBound(conns, connTenants); bound > 0 {
		per = min(per, bound)
	}
	return per
}

// apiConnBound is how many tenants one of n data API pools' connection serves before it is
// closed (APIOptions.ConnTenants: 0 the default, below 0 none); 0: no bound. One pool is shared
// by every tenant, so it has none.
func apiConnBound(n, connTenants int) int {
	if n <= 1 || connTenants < 0 {
		return 0
	}
	return cmp.Or(connTenants, DefaultAPIConnTenants)
}
