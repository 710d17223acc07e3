package pgtest_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	a, b := pgtest.NewDB(t), pgtest.NewDB(t)
	if a == b {
		t.Fatalf("two NewDB calls gave the same URL %s", a)
	}
	names := map[string]bool{}
	for _, u := range []string{a, b} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
		var db string
		var tables int
		if err := conn.QueryRow(ctx, `SELECT current_database(),
			(SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))`).Scan(&db, &tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("%s has %d tables, want an empty database", db, tables)
		}
		if !strings.HasPrefix(db, "t_testnewdb_") {
			t.Errorf("database name %q", db)
		}
		names[db] = true
		// Something to find (or not) in the other database.
		if _, err := conn.Exec(ctx, "CREATE TABLE mine (id int)"); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	}
	if len(names) != 2 {
		t.Fatalf("databases %v, want two different ones", names)
	}

	// The databases are dropped when the test ends; check from a subtest's own cleanup order.
	var sub string
	t.Run("cleanup", func(t *testing.T) { sub = pgtest.NewDB(t) })
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	parsed, err := url.Parse(sub)
	if err != nil {
		t.Fatal(err)
	}
	subName := strings.TrimPrefix(parsed.Path, "/")
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", subName).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s of a finished subtest still exists", subName)
	}
}

func TestAdminURL(t *testing.T) {
	u := pgtest.AdminURL()
	if !strings.HasSuffix(strings.SplitN(u, "?", 2)[0], "/postgres") {
		t.Errorf("AdminURL = %s", u)
	}
	if os.Getenv(pgtest.EnvURL) != "" {
		return
	}
	// The throwaway cluster lives in its temporary home, also as root.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dir, fsync string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory'), current_setting('fsync')").Scan(&dir, &fsync); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, filepath.Join(os.TempDir(), "erpctl-pgtest-")) || fsync != "off" {
		t.Errorf("data_directory %s, fsync %s; want a temporary directory and fsync off", dir, fsync)
	}
}

// Pooled's PgBouncer pools transactions: two clients, one after the other, get the same server
// connection, and what one of them SETs for its session shows in the other's: the hazard the
// tests behind it are there to catch.
func TestPooled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct := pgtest.NewDB(t)
	pooled := pgtest.Pooled(t, direct)
	if pooled == direct || !strings.Contains(pooled, "/"+strings.TrimPrefix(mustParse(t, direct).Path, "/")) {
		t.Fatalf("Pooled(%s) = %s", direct, pooled)
	}
	connect := func() *pgx.Conn {
		cfg, err := pgx.ParseConfig(pooled)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}
	a, b := connect(), connect()
	pid := func(c *pgx.Conn) (p int) {
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if pa, pb := pid(a), pid(b); pa != pb {
		t.Fatalf("two clients one after the other got server connections %d and %d, want one (transaction pooling)", pa, pb)
	}
	if _, err := a.Exec(ctx, "SET application_name = 'a-session'"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := b.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "a-session" {
		t.Fatalf("b sees application_name %q on the server connection a set it on: not a transaction pooler?", name)
	}
}

func mustParse(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
