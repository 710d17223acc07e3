package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"

	"github.com/erpctl/erpctl/controlplane"
)

// testDaemon runs daemon.Run in the background and exposes its test signals.
type testDaemon struct {
	addr   string
	passes chan *controlplane.Pass
	done   chan error
	cancel context.CancelFunc
}

func startDaemon(t *testing.T, e *cptest.Env) *testDaemon {
	return startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour}})
}

// startDaemonWith starts a daemon with cfg, an HTTP server on a free port and 2 workers.
func startDaemonWith(t *testing.T, e *cptest.Env, cfg daemon.Config) *testDaemon {
	t.Helper()
	p, err := controlplane.Open(e.Ctx, e.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	d := &testDaemon{passes: make(chan *controlplane.Pass, 100), done: make(chan error, 1)}
	listening := make(chan string, 1)
	ctx, cancel := context.WithCancel(e.Ctx)
	d.cancel = cancel
	cfg.Loop.Workers = 2
	cfg.Loop.OnPass = func(pass *controlplane.Pass) { d.passes <- pass }
	cfg.Server.Listen, cfg.Server.OnListening = "127.0.0.1:0", func(a net.Addr) { listening <- a.String() }
	go func() { d.done <- daemon.Run(ctx, p, cfg) }()
	select {
	case d.addr = <-listening:
	case err := <-d.done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon never listened")
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *testDaemon) waitPass(t *testing.T) *controlplane.Pass {
	t.Helper()
	select {
	case pass := <-d.passes:
		return pass
	case <-time.After(30 * time.Second):
		t.Fatal("no reconcile pass within 30s")
		return nil
	}
}

func (d *testDaemon) stop(t *testing.T) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("daemon did not stop within 5s")
	}
}

func (d *testDaemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonReconcilesOnChangeAndSurvivesBadModules(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	// A module developer's daemon: it publishes its module files when they change.
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour, PublishModules: true}})
	if pass := d.waitPass(t); pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("first pass: %+v", pass.Counts)
	}
	if code, body := d.get(t, "/healthz"); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := d.get(t, "/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	_, metrics := d.get(t, "/metrics")
	for _, want := range []string{"erpctl_reconcile_passes_total 1", `erpctl_tenants{status="Ready"} 2`, "erpctl_modules_healthy 1"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q", want)
		}
	}

	// A new tenant wakes the daemon at once (the interval is an hour).
	e.Create("initech")
	if pass := d.waitPass(t); len(pass.Results) != 3 {
		t.Fatalf("pass after create: %+v", pass.Counts)
	}

	// A broken module file: the daemon keeps the last good modules, repairs drift with them,
	// stays healthy and reports not ready.
	if err := os.WriteFile(filepath.Join(e.ModulesDir, "crm.hcl"), []byte("table \"x\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Exec(`DROP TABLE tenant_acme.stock_items`)
	e.Exec(`SELECT pg_notify('erpctl_tenants', 'acme')`)
	pass := d.waitPass(t)
	if r := pass.Result("acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("acme with broken modules: %+v", r)
	}
	if code, body := d.get(t, "/readyz"); code != 503 || !strings.Contains(body, "crm.hcl") {
		t.Fatalf("readyz with a broken module: %d %s", code, body)
	}
	if code, _ := d.get(t, "/healthz"); code != 200 {
		t.Fatal("not healthy with a broken module")
	}
	if strings.Contains(strings.Join(e.Tables("tenant_acme"), ","), "x") {
		t.Fatal("applied something from the broken file")
	}
	e.DebugHealthy("acme")

	// Fixed: ready again, and the new module reaches every tenant that follows all modules.
	if err := os.WriteFile(filepath.Join(e.ModulesDir, "crm.hcl"), []byte(`schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Exec(`SELECT pg_notify('erpctl_tenants', 'acme')`)
	pass = d.waitPass(t)
	if pass.Counts[controlplane.ActionApplied] != 3 {
		t.Fatalf("crm rollout: %+v", pass.Results)
	}
	if code, body := d.get(t, "/readyz"); code != 200 {
		t.Fatalf("readyz after fix: %d %s", code, body)
	}
	start := time.Now()
	d.stop(t)
	if time.Since(start) > 5*time.Second {
		t.Fatal("slow shutdown")
	}
}

func TestTwoDaemonsSideBySide(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	for _, s := range []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"} {
		e.Create(s)
	}
	d1, d2 := startDaemon(t, e), startDaemon(t, e)
	d1.waitPass(t)
	d2.waitPass(t)
	src := strings.Replace(cptest.BuiltinSource(t, "inventory"), `  column "quantity" {`, `  column "bin" {
    type = text
    null = true
  }
  column "quantity" {`, 1)
	e.WriteModule("inventory", src) // published: both daemons hear of it
	for _, d := range []*testDaemon{d1, d2} {
		if pass := d.waitPass(t); pass.Failed() {
			t.Fatalf("a daemon failed: %+v", pass.Results)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE kind = 'apply'`); n != 8 {
		t.Fatalf("%d applies, want one per tenant", n)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE outcome = 'failed'`); n != 0 {
		t.Fatalf("%d failures", n)
	}
	for _, s := range []string{"acme", "wonka"} {
		e.DebugHealthy(s)
	}
}

func (d *testDaemon) getWithToken(t *testing.T, path, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+d.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A token revoked by another process (the CLI) stops working in a running daemon as soon as the
// daemon hears of it, not when its cache entry expires; the other tenant's token keeps working.
func TestRevocationReachesRunningDaemon(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		e.Create("acme")
		e.Create("globex")
		acme, acmeSecret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "alice")
		if err != nil {
			t.Fatal(err)
		}
		_, globexSecret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "bob")
		if err != nil {
			t.Fatal(err)
		}
		heard := make(chan struct{}, 1)
		d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
			Listener: daemon.ListenerConfig{OnToken: func() { heard <- struct{}{} }}})
		d.waitPass(t)
		waitListening(t, e)
		if code := d.getWithToken(t, "/api/acme/", acmeSecret); code != 200 {
			t.Fatalf("acme before revoke: %d", code)
		}
		start := time.Now()
		if err := e.P.RevokeToken(e.Ctx, acme.ID); err != nil { // e.P is not the daemon's plane
			t.Fatal(err)
		}
		select {
		case <-heard:
		case <-time.After(10 * time.Second):
			t.Fatal("the daemon never heard of the revocation")
		}
		t.Logf("revocation heard after %v", time.Since(start))
		if code := d.getWithToken(t, "/api/acme/", acmeSecret); code != 401 {
			t.Fatalf("acme after revoke: %d, want 401", code)
		}
		if code := d.getWithToken(t, "/api/globex/", globexSecret); code != 200 {
			t.Fatalf("globex after acme's revoke: %d", code)
		}
	})
}

// A tenant that failed is retried when its backoff ends, not an interval (an hour here) later;
// the other tenant is applied at once and left alone.
func TestLoopHonoursBackoff(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour, LockTimeout: 100 * time.Millisecond}})
	d.waitPass(t)
	// Hold a lock on acme's categories, so that the rollout there fails on its lock timeout.
	holder, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(e.Ctx, `LOCK TABLE tenant_acme.categories IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(cptest.BuiltinSource(t, "product"), `  column "description" {`, `  column "color" {
    type = text
    null = true
  }
  column "description" {`, 1)
	e.WriteModule("product", src)
	pass := d.waitPass(t)
	if pass.Result("acme").Action != controlplane.ActionFailed || pass.Result("globex").Action != controlplane.ActionApplied {
		t.Fatalf("rollout with acme locked: %+v", pass.Results)
	}
	if pass.NextRetryAt == nil {
		t.Fatal("a Failed tenant, and no retry time")
	}
	holder.Rollback()
	start := time.Now()
	pass = d.waitPass(t) // no notification: only the backoff can bring this pass
	if r := pass.Result("acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("acme after its backoff: %+v", r)
	}
	// The retry is a pass over the tenants whose backoff ended: globex is not looked at again.
	if r := pass.Result("globex"); r.Action != "" {
		t.Fatalf("globex after acme's retry: %+v", r)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("the retry came after %v; the backoff is 5s", waited)
	}
	if cols := e.Columns("tenant_acme", "categories"); !slices.Contains(cols, "color") {
		t.Fatalf("acme categories: %v; the retry applied %+v", cols, pass.Result("acme"))
	}
}

// waitListening waits until the daemon's listener has sent its LISTENs: a notification sent
// before then is lost, as it would be for any listener not yet connected.
func waitListening(t *testing.T, e *cptest.Env) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if e.Count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon's listener never listened")
		}
	}
}

// The daemon is ready, and serves the data API, while its first full pass has not finished (it
// takes 26 s at 100,000 tenants): here that pass waits for a lock on the catalog table of changed
// schemas, which requests never touch.
func TestReadyBeforeTheFirstPassEnds(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	_, acmeSecret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, globexSecret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "bob")
	if err != nil {
		t.Fatal(err)
	}
	hold, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(e.Ctx, `LOCK TABLE erpctl.changed_schemas IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, e)
	waitFor(t, "/readyz ok", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })
	if c := d.getWithToken(t, "/api/acme/product/categories/", acmeSecret); c != 200 {
		t.Fatalf("acme before the first pass: %d", c)
	}
	if c := d.getWithToken(t, "/api/acme/product/categories/", globexSecret); c != 404 {
		t.Fatalf("globex's token on acme before the first pass: %d", c)
	}
	select {
	case pass := <-d.passes:
		t.Fatalf("the first pass ended while the lock was held: %+v", pass.Counts)
	default:
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	if pass := d.waitPass(t); pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("first pass: %+v", pass.Counts)
	}
}
