package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgtest"
	"github.com/erpctl/erpctl/internal/term"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// result is what one erpctl run left behind.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs erpctl in-process against one test database.
type cli struct {
	t          *testing.T
	url        string
	direct     string // the database without the pooler in front of url, when there is one
	modulesDir string
	env        map[string]string
	color      bool
	stdin      string // what the next runs read on stdin
	stdoutTTY  bool   // whether their stdout counts as a terminal
	stdinTTY   bool   // whether their stdin does: someone who answers questions
	conn       *pgx.Conn
}

// newCLI gives a test a fresh database and an empty modules dir (given with --modules-dir only
// when the test asks for it).
func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, url: pgtest.NewDB(t), env: map[string]string{}}
}

// exec runs erpctl with exactly args.
func (c *cli) exec(args ...string) result {
	c.t.Helper()
	ios, in, out, errOut := term.Test()
	if c.color {
		ios.SetColorEnabled(true)
	}
	in.WriteString(c.stdin)
	ios.SetStdoutTTY(c.stdoutTTY)
	ios.SetStdinTTY(c.stdinTTY)
	code := run(context.Background(), args, ios, func(k string) string { return c.env[k] })
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// run runs erpctl against the test database (and modules dir, when set).
func (c *cli) run(args ...string) result {
	c.t.Helper()
	global := []string{"--database-url", c.url}
	if c.modulesDir != "" {
		global = append(global, "--modules-dir", c.modulesDir)
	}
	return c.exec(append(global, args...)...)
}

// ok runs erpctl and fails the test unless it exits 0.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("erpctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// expect runs erpctl and fails the test unless it exits with code and stderr says want.
func (c *cli) expect(code int, want string, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("erpctl %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	checkErrorMessage(c.t, r, want)
	return r
}

// checkErrorMessage checks that stderr is one "erpctl: " sentence naming want, followed at most
// by the usage hint.
func checkErrorMessage(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "erpctl: ") || !strings.Contains(lines[0], want) {
		t.Fatalf("stderr %q: want one line starting \"erpctl: \" that contains %q", r.stderr, want)
	}
	switch {
	case len(lines) == 1:
	case len(lines) == 2 && strings.HasPrefix(lines[1], "Run 'erpctl") && strings.HasSuffix(lines[1], "--help' for usage."):
	default:
		t.Fatalf("stderr is more than one sentence (and the usage hint):\n%s", r.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", "Usage:", "Flags:"} {
		if strings.Contains(r.stderr, bad) {
			t.Fatalf("stderr carries %q:\n%s", bad, r.stderr)
		}
	}
}

// decodeOne decodes stdout, which must be exactly one JSON document.
func decodeOne(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
}

// db is a direct connection to the test database, to check what the commands did.
func (c *cli) db() *pgx.Conn {
	c.t.Helper()
	if c.conn != nil {
		return c.conn
	}
	u := c.url
	if c.direct != "" {
		u = c.direct
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close(context.Background()) })
	c.conn = conn
	return conn
}

func (c *cli) sql(q string, args ...any) {
	c.t.Helper()
	conn := c.db()
	if _, err := conn.Exec(context.Background(), q, args...); err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
}

func (c *cli) count(q string, args ...any) int {
	c.t.Helper()
	conn := c.db()
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// schemas lists the database's own schemas.
func (c *cli) schemas() []string {
	c.t.Helper()
	rows, err := c.db().Query(context.Background(), `SELECT nspname FROM pg_namespace
		WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' ORDER BY 1`)
	if err != nil {
		c.t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.t.Fatal(err)
	}
	return names
}

// snapshot describes a schema: every column of every table, every index and constraint, and
// the row count of each table. Two equal snapshots mean nobody touched the schema.
func (c *cli) snapshot(schema string) string {
	c.t.Helper()
	ctx := context.Background()
	conn := c.db()
	var b strings.Builder
	rows, err := conn.Query(ctx, `SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
		FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2`, schema)
	if err != nil {
		c.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var t, col, typ, null, def string
		if err := rows.Scan(&t, &col, &typ, &null, &def); err != nil {
			c.t.Fatal(err)
		}
		b.WriteString(strings.Join([]string{t, col, typ, null, def}, " ") + "\n")
		if !slices.Contains(tables, t) {
			tables = append(tables, t)
		}
	}
	rows.Close()
	rows, err = conn.Query(ctx, `SELECT c.relname || ' ' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 UNION ALL SELECT conname || ' ' || contype::text FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
		WHERE n.nspname = $1 ORDER BY 1`, schema)
	if err != nil {
		c.t.Fatal(err)
	}
	objs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.t.Fatal(err)
	}
	b.WriteString(strings.Join(objs, "\n") + "\n")
	for _, t := range tables {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, t}.Sanitize()).Scan(&n); err != nil {
			c.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s rows %d\n", t, n)
	}
	return b.String()
}

// writeModule writes a module file into the test's modules dir, using the dir from now on.
func (c *cli) writeModule(name, src string) string {
	c.t.Helper()
	if c.modulesDir == "" {
		c.modulesDir = c.t.TempDir()
	}
	path := filepath.Join(c.modulesDir, name+".hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func contains(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Fatalf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}

// lineWith returns the first line of s that starts with prefix.
func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
