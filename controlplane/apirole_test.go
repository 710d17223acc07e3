package controlplane_test

import (
	"context"
	"errors"
	"hash/fnv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// The data API's pool runs as a role that reads and writes tenant rows and can do nothing
// else: no DDL, no catalog (tokens), no server programs. A tenant made after the role, and one
// made before it, are both open to it. Behind PgBouncer the role goes with each statement's
// transaction, and holds the same.
func TestAPIRoleIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) { t.Parallel(); apiRoleIsLeastPrivilege(t, cptest.New(t)) })
	t.Run("pgbouncer", func(t *testing.T) { t.Parallel(); apiRoleIsLeastPrivilege(t, cptest.NewPooled(t)) })
}

func apiRoleIsLeastPrivilege(t *testing.T, e *cptest.Env) {
	e.Create("acme")
	e.Create("globex")
	if e.P.APIRole(e.Ctx) == "" {
		t.Fatal("no data API role, though the tests have a superuser")
	}
	pool, err := e.P.APIDB(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var who string
	if err := pool.QueryRow(e.Ctx, `SELECT current_user`).Scan(&who); err != nil || who != e.P.APIRole(e.Ctx) {
		t.Fatalf("the API pool runs as %q (%v)", who, err)
	}
	for _, q := range []string{
		`INSERT INTO tenant_acme.categories (name) VALUES ('tools')`,
		`UPDATE tenant_globex.categories SET name = name`,
		`SELECT count(*) FROM tenant_globex.products`,
		`DELETE FROM tenant_acme.categories WHERE name = 'tools'`,
	} {
		if _, err := pool.Exec(e.Ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		`CREATE TABLE tenant_acme.x (id int)`,
		`ALTER TABLE tenant_acme.products ADD COLUMN x int`,
		`DROP TABLE tenant_globex.categories`,
		`TRUNCATE tenant_acme.products`,
		`SELECT count(*) FROM erpctl.tokens`,
		`SELECT count(*) FROM erpctl.tenants`,
		`COPY (SELECT 1) TO PROGRAM 'true'`,
		`SELECT pg_read_file('postgresql.conf')`,
		`CREATE SCHEMA evil`,
	} {
		_, err := pool.Exec(e.Ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: %v, want insufficient privilege (42501)", q, err)
		}
	}
	// A tenant made now is open to the role too, and the schemas are as their modules say.
	e.Create("initech")
	if _, err := pool.Exec(e.Ctx, `INSERT INTO tenant_initech.categories (name) VALUES ('new')`); err != nil {
		t.Fatalf("a tenant made after the role: %v", err)
	}
	// A table a rollout adds, and a schema the reconciler makes again after a DROP by hand, are
	// open to it too (default privileges; grants on a schema that has none).
	e.WriteModule("crm", "schema \"tenant\" {}\ntable \"leads\" {\n  schema = schema.tenant\n  column \"email\" {\n    type = text\n  }\n}\n")
	for _, s := range []string{"acme", "globex"} {
		if _, err := e.P.EnableModule(e.Ctx, ident.MustParseSlug(s), "crm"); err != nil {
			t.Fatal(err)
		}
	}
	e.Exec(`DROP SCHEMA tenant_globex CASCADE`)
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO tenant_acme.leads (email) VALUES ('a@x')`, `INSERT INTO tenant_globex.leads (email) VALUES ('g@x')`,
		`INSERT INTO tenant_globex.categories (name) VALUES ('again')`} {
		if _, err := pool.Exec(e.Ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		e.DebugHealthy(s)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.leads`); n != 1 {
		t.Fatalf("acme's leads: %d", n)
	}
}

// A tenant's data API statements go to the two connections that served it before, whichever is
// free; with both busy with its own statements, to another one at once, not after they are free.
// Each statement still reads its own tenant's rows only.
func TestAPIStatementsKeepToTheirTenantsConnections(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.categories (name) VALUES ('acme-tools')`)
	e.Exec(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-tools')`)
	read, hold := tenantStatements(t, e)
	home := map[string]int32{"acme": read("acme"), "globex": read("globex")}
	for range 5 {
		for _, slug := range []string{"acme", "globex", "acme"} {
			if pid := read(slug); pid != home[slug] {
				t.Fatalf("%s's statement ran on backend %d, after %d", slug, pid, home[slug])
			}
		}
	}
	// Its first connection busy (rows not yet read), acme's next statement runs on its second.
	first, pid1 := hold("acme")
	if pid1 != home["acme"] {
		t.Fatalf("acme's statement ran on backend %d, after %d", pid1, home["acme"])
	}
	second, pid2 := hold("acme")
	if pid2 == pid1 {
		t.Fatalf("a second statement of acme ran on its busy connection %d", pid1)
	}
	// Both busy with acme's statements: a third runs on yet another connection, without waiting.
	done := make(chan int32)
	go func() { done <- read("acme") }()
	select {
	case pid := <-done:
		if pid == pid1 || pid == pid2 {
			t.Fatalf("a third statement of acme ran on a busy connection %d", pid)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a third statement of acme waited for its busy connections")
	}
	second.Close()
	if pid := read("acme"); pid != pid2 {
		t.Fatalf("acme's statement ran on backend %d with its second connection (%d) free", pid, pid2)
	}
	first.Close()
	if pid := read("acme"); pid != home["acme"] {
		t.Fatalf("acme's statement ran on backend %d once its connection was free, not %d", pid, home["acme"])
	}
}

// A data API connection that has served its share of tenants is closed once free, so that no
// backend holds the catalog of every tenant it ever served, and a new one serves the next
// statement; a tenant served again does not count twice. Without a bound, one connection
// serves them all. Each statement reads its own tenant's rows only.
func TestAPIConnectionServesBoundedTenants(t *testing.T) {
	t.Parallel()
	// Two connections: a tenant's statements, one at a time, go to the first of its two, which
	// its slug's hash picks; three tenants whose hashes pick the same one share it.
	e := cptest.NewWith(t, controlplane.Config{MaxConns: 2})
	byHome := map[uint32][]string{}
	for _, slug := range []string{"acme", "globex", "initech", "umbrella", "hooli"} {
		h := fnv.New32a()
		h.Write([]byte(slug))
		byHome[h.Sum32()%2] = append(byHome[h.Sum32()%2], slug)
	}
	same := byHome[0]
	if len(same) < 3 {
		same = byHome[1]
	}
	x, y, z := same[0], same[1], same[2]
	for _, slug := range []string{x, y, z} {
		e.Create(slug)
		e.Exec(`INSERT INTO tenant_` + slug + `.categories (name) VALUES ('` + slug + `-tools')`)
	}
	read, _ := tenantStatements(t, e, controlplane.APIOptions{ConnTenants: 2})
	gone := func(pid int32) {
		t.Helper()
		for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(10 * time.Millisecond) {
			var n int
			if err := e.DB.QueryRowContext(e.Ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
		t.Fatalf("backend %d still there after it served its tenants", pid)
	}
	first := read(x)
	if pid := read(x); pid != first {
		t.Fatalf("%s's second statement ran on backend %d, its first on %d: one tenant counted twice", x, pid, first)
	}
	if pid := read(y); pid != first {
		t.Fatalf("%s ran on backend %d, not %d, before the connection had served two tenants", y, pid, first)
	}
	second := read(z)
	if second == first {
		t.Fatalf("%s ran on backend %d, which had served two tenants already", z, first)
	}
	gone(first)
	if pid := read(x); pid != second {
		t.Fatalf("%s ran on backend %d, not the new connection %d", x, pid, second)
	}
	if pid := read(y); pid == second {
		t.Fatalf("%s ran on backend %d, which had served two tenants already", y, second)
	}
	gone(second)

	unbounded := cptest.NewWith(t, controlplane.Config{MaxConns: 2})
	for _, slug := range []string{x, y, z} {
		unbounded.Create(slug)
		unbounded.Exec(`INSERT INTO tenant_` + slug + `.categories (name) VALUES ('` + slug + `-tools')`)
	}
	read, _ = tenantStatements(t, unbounded, controlplane.APIOptions{ConnTenants: -1})
	only := read(x)
	for _, slug := range []string{y, z, x, y, z} {
		if pid := read(slug); pid != only {
			t.Fatalf("without a bound, %s ran on backend %d, not %d", slug, pid, only)
		}
	}
}

// A tenant whose two connections are held by another tenant's long statements runs on a free
// connection, without waiting for them; one whose connection is free runs there. Each reads its
// own rows only.
func TestAPIStatementsGoAroundOtherTenantsLongStatements(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	victims := []string{"acme", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "cyberdyne"}
	for _, slug := range append([]string{"globex"}, victims...) {
		e.Create(slug, "product")
		e.Exec(`INSERT INTO tenant_` + slug + `.categories (name) VALUES ('` + slug + `-tools')`)
	}
	read, hold := tenantStatements(t, e)
	// Each victim's two connections: where it runs with every connection free, and where it
	// runs with that one held.
	homes := map[string][2]int32{}
	for _, slug := range victims {
		first := read(slug)
		rows, _ := hold(slug)
		homes[slug] = [2]int32{first, read(slug)}
		rows.Close()
	}
	// globex holds every connection but one (its own two, then any: it is busy).
	n := int(e.P.Pool().Config().MaxConns)
	held := map[int32]bool{}
	for range n - 1 {
		rows, pid := hold("globex")
		defer rows.Close()
		held[pid] = true
	}
	time.Sleep(50 * time.Millisecond) // long statements now
	tried := 0
	for _, slug := range victims {
		if !held[homes[slug][0]] || !held[homes[slug][1]] {
			if pid := read(slug); held[pid] {
				t.Fatalf("%s ran on backend %d, which globex holds", slug, pid)
			}
			continue
		}
		tried++
		if pid := read(slug); held[pid] { // read gives up after 5 s: it waited for globex
			t.Fatalf("%s, both of whose connections globex holds, ran on backend %d", slug, pid)
		}
	}
	if tried == 0 {
		t.Fatalf("none of %d tenants has both its connections among the %d globex holds: pick others", len(victims), n-1)
	}
}

// tenantStatements runs a tenant's statements on the data API's connections (APIDB's): read reads the
// tenant's categories (each tenant has one, named after it) and returns the backend it ran on;
// hold leaves a statement's rows unread, which keeps its connection, and returns its backend.
func tenantStatements(t *testing.T, e *cptest.Env, opts ...controlplane.APIOptions) (read func(string) int32, hold func(string) (pgx.Rows, int32)) {
	db, err := e.P.APIDB(e.Ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ft, ok := db.(interface {
		ForTenant(string) controlplane.Statements
	})
	if !ok {
		t.Fatalf("the data API's statements (%T) cannot keep to a tenant", db)
	}
	read = func(slug string) (pid int32) {
		t.Helper()
		ctx, cancel := context.WithTimeout(e.Ctx, 5*time.Second)
		defer cancel()
		var name string
		if err := ft.ForTenant(slug).QueryRow(ctx, `SELECT pg_backend_pid(), (SELECT string_agg(name, ',') FROM tenant_`+slug+`.categories)`).
			Scan(&pid, &name); err != nil || name != slug+"-tools" {
			t.Fatalf("%s's categories: %q %v", slug, name, err)
		}
		return pid
	}
	hold = func(slug string) (pgx.Rows, int32) {
		t.Helper()
		rows, err := ft.ForTenant(slug).Query(e.Ctx, `SELECT pg_backend_pid() FROM generate_series(1, 3)`)
		if err != nil || !rows.Next() {
			t.Fatalf("hold a connection of %s: %v", slug, err)
		}
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return rows, pid
	}
	return read, hold
}

// The daemon warns at start when the server's max_files_per_process leaves a data API backend
// too few files for its tenants. Directly each tenant keeps to two of the pool's connections,
// so a connection serves its share of the tenants, within --api-conn-tenants; behind PgBouncer
// any server connection serves every tenant. The tests' server is started with room.
func TestAPIFilesForTheFleet(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		e := cptest.New(t)
		e.Create("acme")
		e.Create("globex")
		var setting int
		if err := e.P.Pool().QueryRow(e.Ctx, `SELECT current_setting('max_files_per_process')::int`).Scan(&setting); err != nil {
			t.Fatal(err)
		}
		conns := int(e.P.Pool().Config().MaxConns)
		want := 2
		if conns > 2 {
			want = (2*2 + conns - 1) / conns
		}
		f, err := e.P.APIFiles(e.Ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.Setting != setting || f.TenantsPerConn != want || f.Need != 4*want || f.Short() {
			t.Errorf("APIFiles = %+v, want max_files_per_process %d, %d tenants a connection, %d files, not short", f, setting, want, 4*want)
		}
		if setting <= 1000 {
			t.Errorf("the tests' server has max_files_per_process %d: started without room for a data API's files", setting)
		}
		if conns > 2 {
			// Two tenants on connections of their own: a bound of one tenant a connection holds.
			if f, err := e.P.APIFiles(e.Ctx, 1); err != nil || f.TenantsPerConn != 1 {
				t.Errorf("APIFiles with a bound of 1 = %+v (%v), want 1 tenant a connection", f, err)
			}
		}
	})
	t.Run("pgbouncer", func(t *testing.T) {
		t.Parallel()
		e := cptest.NewPooled(t)
		e.Create("acme")
		e.Create("globex")
		f, err := e.P.APIFiles(e.Ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.TenantsPerConn != 2 || f.Need != 8 {
			t.Errorf("APIFiles behind PgBouncer = %+v, want every tenant (2) on each connection, 8 files", f)
		}
	})
}
