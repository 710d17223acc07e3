package daemon_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

// setReadOnly turns default_transaction_read_only on or off for the test's database and ends
// every other session on it, so that every pool reconnects under the new setting.
func setReadOnly(t *testing.T, e *cptest.Env, on bool) {
	t.Helper()
	conn, err := e.DB.Conn(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := map[bool]string{true: "on", false: "off"}[on]
	for _, q := range []string{
		`SET default_transaction_read_only = off`,
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = ` + v + `', current_database()); END $$`,
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
	} {
		if _, err := conn.ExecContext(e.Ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// publishReadWrite writes a module file and publishes it in a transaction that may write while
// the database is read-only for everyone else (setReadOnly): the last write before the refusals.
func publishReadWrite(t *testing.T, e *cptest.Env, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.ModulesDir, name+".hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.P.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	tx, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(e.Ctx, `SET TRANSACTION READ WRITE`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.Generations().Publish(e.Ctx, tx, e.P.LocalModules(), "test", t.Name()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// While the database refuses writes, /readyz says so in a few words; a rollout in that time
// fails on every tenant without its status being written, and once writes return every one of
// them is reconciled and /readyz is ok again.
func TestReadyzWhileTheDatabaseRefusesWrites(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 100 * time.Millisecond}})
	waitFor(t, "first /readyz ok", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })

	setReadOnly(t, e, true)
	// A generation published as the database turns read-only: its rollout fails on both tenants
	// and cannot be recorded.
	publishReadWrite(t, e, "product", strings.Replace(cptest.BuiltinSource(t, "product"),
		"table \"products\" {\n  schema = schema.tenant\n",
		"table \"products\" {\n  schema = schema.tenant\n  column \"barcode\" {\n    type = text\n    null = true\n  }\n", 1))
	var body string
	waitFor(t, "/readyz degraded", func() bool {
		var c int
		c, body = d.get(t, "/readyz")
		return c == 503 && strings.Contains(body, "read-only")
	})
	if strings.Contains(body, "SQLSTATE") || strings.Contains(body, "ERROR") || strings.Contains(body, "tenant_") {
		t.Fatalf("/readyz shows internals: %q", body)
	}
	// A client's write gets a 503 it may retry, with nothing of the server's message.
	req, _ := http.NewRequest("POST", "http://"+d.addr+"/api/acme/product/categories/", strings.NewReader(`{"name": "tools"}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(b), "SQLSTATE") {
		t.Fatalf("POST while read-only: %d %q", resp.StatusCode, b)
	}
	for _, slug := range []string{"acme", "globex"} {
		if got := e.Columns("tenant_"+slug, "products"); strings.Contains(strings.Join(got, ","), "barcode") {
			t.Fatalf("%s got the column while read-only: %v", slug, got)
		}
	}

	setReadOnly(t, e, false)
	waitFor(t, "/readyz ok again", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })
	waitFor(t, "both tenants rolled out", func() bool {
		return e.Count(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'products'
			AND column_name = 'barcode' AND table_schema IN ('tenant_acme', 'tenant_globex')`) == 2 &&
			e.Count(`SELECT count(*) FROM erpctl.tenants WHERE status = $1`, controlplane.StatusReady) == 2
	})
	// Each tenant has its own column and nothing of the other's.
	e.Exec(`INSERT INTO tenant_acme.products (sku, name, barcode) VALUES ('a1', 'A', '123')`)
	if n := e.Count(`SELECT count(*) FROM tenant_globex.products`); n != 0 {
		t.Fatalf("globex sees %d rows", n)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.categories`); n != 0 {
		t.Fatalf("the refused POST left %d rows", n)
	}
}

// --debug-listen serves pprof on its own listener, and nothing of it on the main one.
func TestDebugListenerServesPprof(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	addr := make(chan net.Addr, 1)
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Debug: daemon.DebugConfig{Listen: "127.0.0.1:0", OnListening: func(a net.Addr) { addr <- a }}})
	resp, err := http.Get("http://" + (<-addr).String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "heap profile") {
		t.Fatalf("heap profile: %d %.100q", resp.StatusCode, b)
	}
	if c, _ := d.get(t, "/debug/pprof/heap"); c == 200 {
		t.Fatal("the main listener serves pprof")
	}
}
