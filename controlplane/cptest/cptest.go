// Package cptest gives the tests of controlplane and its sub-packages a control plane on a fresh
// database of the test binary's throwaway cluster (see internal/pgtest), and helpers to look into it.
package cptest

import (
	"cmp"
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/hcl"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// Env is one test's control plane on a fresh database, with a modules dir the test may write to.
type Env struct {
	T          *testing.T
	Ctx        context.Context
	P          *controlplane.Plane
	DB         *sql.DB // the same database through database/sql, for looking into it
	URL        string  // what the control plane connects to: through PgBouncer for NewPooled
	DirectURL  string  // the database without a pooler in between
	AdminURL   string  // NewOwned's and NewPooled's superuser URL of the database; "" for New, whose URL is a superuser's
	ModulesDir string
	Config     controlplane.Config // what P was opened with, for opening another plane like it
}

// New opens a control plane on a fresh database; everything is closed and dropped when the test ends.
func New(t *testing.T) *Env {
	t.Helper()
	return open(t, controlplane.Config{DatabaseURL: pgtest.NewDB(t)})
}

// NewWith is New with the rest of cfg (a tracer, a pool size) as given, and params (such as
// "pool_max_conns=2") added to the database URL.
func NewWith(t *testing.T, cfg controlplane.Config, params ...string) *Env {
	t.Helper()
	u, err := url.Parse(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	cfg.DatabaseURL = u.String()
	return open(t, cfg)
}

// NewOwned is New as users run erpctl on its embedded cluster: the control plane connects as a
// role that owns the database and is no superuser, and a superuser's URL serves once at Open for
// what that role may not do. URL is the role's; AdminURL and DB are the superuser's, for looking
// into the database and changing it by hand.
func NewOwned(t *testing.T) *Env {
	t.Helper()
	url, admin := pgtest.NewOwnedDB(t)
	return open(t, controlplane.Config{DatabaseURL: url, AdminURL: admin})
}

// NewPooled is NewOwned behind PgBouncer in transaction mode (see pgtest.Pooled), set up as
// docs/operations.md tells operators to: URL is the pooler's, and DirectURL the database's for
// what needs a session of its own. It skips the test where PgBouncer is not installed, outside CI.
func NewPooled(t *testing.T) *Env {
	t.Helper()
	url, admin := pgtest.NewOwnedDB(t)
	return open(t, controlplane.Config{DatabaseURL: pgtest.Pooled(t, url), DirectDatabaseURL: url, AdminURL: admin})
}

// DirectAndPooled runs test, in parallel subtests, on a control plane connected directly (New)
// and on one behind PgBouncer in transaction mode (NewPooled), where each transaction may get
// another server connection.
func DirectAndPooled(t *testing.T, test func(t *testing.T, e *Env)) {
	t.Run("direct", func(t *testing.T) { t.Parallel(); test(t, New(t)) })
	t.Run("pgbouncer", func(t *testing.T) { t.Parallel(); test(t, NewPooled(t)) })
}

// NewOnSmallDisk is New on a database that lives on a small disk of the test's own, which the
// test fills and frees (pgtest.NewSmallDiskDB); the test skips where no such disk can be made.
func NewOnSmallDisk(t *testing.T) (*Env, *pgtest.SmallDisk) {
	t.Helper()
	url, disk := pgtest.NewSmallDiskDB(t, 64)
	return open(t, controlplane.Config{DatabaseURL: url}), disk
}

// NewCitus is New on a fresh database of the Citus cluster that ERPCTL_TEST_CITUS_URL names
// (see pgtest.NewCitusDB); the test skips without it.
func NewCitus(t *testing.T) *Env {
	t.Helper()
	url := pgtest.NewCitusDB(t)
	unlock := pgtest.CitusLock(t) // Open makes the data API's role, a role of the whole cluster
	defer unlock()
	return open(t, controlplane.Config{DatabaseURL: url})
}

// open opens the control plane with cfg and a modules dir of the test's own, and a database/sql
// pool for the test's own queries: the superuser's when there is one, never through a pooler.
func open(t *testing.T, cfg controlplane.Config) *Env {
	t.Helper()
	ctx := context.Background()
	cfg.ModulesDir = t.TempDir()
	p, err := controlplane.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open control plane: %v", err)
	}
	t.Cleanup(p.Close)
	direct := cmp.Or(cfg.DirectDatabaseURL, cfg.DatabaseURL)
	db, err := sql.Open("pgx", cmp.Or(cfg.AdminURL, direct))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Env{T: t, Ctx: ctx, P: p, DB: db, URL: cfg.DatabaseURL, DirectURL: direct, AdminURL: cfg.AdminURL,
		ModulesDir: cfg.ModulesDir, Config: cfg}
}

// Create creates tenant slug with mods (none: every module).
func (e *Env) Create(slug string, mods ...string) *controlplane.Tenant {
	e.T.Helper()
	tn, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(slug), Modules: mods})
	if err != nil {
		e.T.Fatalf("create tenant %s: %v", slug, err)
	}
	return tn
}

// SetReadOnly turns default_transaction_read_only on or off for the test's database and ends
// every other session on it, so that every pool reconnects under the new setting: the database
// then refuses every write (25006), as a database that cannot write does.
func (e *Env) SetReadOnly(on bool) {
	e.T.Helper()
	conn, err := e.DB.Conn(e.Ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	defer conn.Close()
	v := map[bool]string{true: "on", false: "off"}[on]
	for _, q := range []string{
		`SET default_transaction_read_only = off`,
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = ` + v + `', current_database()); END $$`,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
	} {
		if _, err := conn.ExecContext(e.Ctx, q); err != nil {
			e.T.Fatalf("%s: %v", q, err)
		}
	}
	// pgx pings a pooled connection before reuse once it has been idle for a second, and drops
	// it when the ping fails: after that, no pool hands out a connection that was ended here.
	time.Sleep(1100 * time.Millisecond)
}

// Exec runs a statement.
func (e *Env) Exec(q string, args ...any) {
	e.T.Helper()
	if _, err := e.DB.ExecContext(e.Ctx, q, args...); err != nil {
		e.T.Fatalf("%s: %v", q, err)
	}
}

// Count runs a query of one integer.
func (e *Env) Count(q string, args ...any) int {
	e.T.Helper()
	var n int
	if err := e.DB.QueryRowContext(e.Ctx, q, args...).Scan(&n); err != nil {
		e.T.Fatalf("%s: %v", q, err)
	}
	return n
}

// WriteModule writes a module file into the modules dir, reloads the modules and publishes them
// as the next generation, as erpctl module publish does (without its preview): the next
// reconcile brings tenants to it.
func (e *Env) WriteModule(name, src string) {
	e.T.Helper()
	if err := os.WriteFile(filepath.Join(e.ModulesDir, name+".hcl"), []byte(src), 0o644); err != nil {
		e.T.Fatal(err)
	}
	e.Publish()
}

// Publish reloads the modules dir and publishes it as the next generation, returning its number.
func (e *Env) Publish() int64 {
	e.T.Helper()
	if err := e.P.ReloadModules(); err != nil {
		e.T.Fatalf("reload modules: %v", err)
	}
	pub, err := e.P.Publish(e.Ctx, controlplane.PublishOptions{Message: e.T.Name()})
	if err != nil {
		e.T.Fatalf("publish modules: %v", err)
	}
	return pub.Generation
}

// BuiltinSource is the HCL of built-in module name.
func BuiltinSource(t *testing.T, name string) string {
	t.Helper()
	b, err := hcl.FS.ReadFile(name + ".hcl")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Columns lists a table's columns in order.
func (e *Env) Columns(schemaName, table string) []string {
	e.T.Helper()
	return e.Strings(`SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schemaName, table)
}

// Tables lists a schema's tables by name.
func (e *Env) Tables(schemaName string) []string {
	e.T.Helper()
	return e.Strings(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schemaName)
}

// Strings runs a query of one text column and returns its values.
func (e *Env) Strings(q string, args ...any) []string {
	e.T.Helper()
	rows, err := e.DB.QueryContext(e.Ctx, q, args...)
	if err != nil {
		e.T.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			e.T.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		e.T.Fatal(err)
	}
	return out
}

// DebugHealthy runs debug tables and fails the test unless the tenant is healthy.
func (e *Env) DebugHealthy(slug string) *controlplane.TablesReport {
	e.T.Helper()
	rep, err := e.P.DebugTables(e.Ctx, ident.MustParseSlug(slug))
	if err != nil {
		e.T.Fatalf("debug tables %s: %v", slug, err)
	}
	if !rep.Healthy {
		e.T.Fatalf("tenant %s unhealthy: %+v", slug, rep.Tables)
	}
	return rep
}

// ReconcileAll runs one pass over every tenant, as erpctl reconcile --all does, and fails the
// test if it errs or a tenant fails.
func (e *Env) ReconcileAll() *controlplane.Pass {
	e.T.Helper()
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{})
	if err != nil {
		e.T.Fatalf("reconcile --all: %v", err)
	}
	if pass.Failed() {
		e.T.Fatalf("reconcile --all failed tenants: %+v", pass.Results)
	}
	return pass
}
