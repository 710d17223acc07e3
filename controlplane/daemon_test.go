package controlplane_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
)

// daemon runs RunDaemon in the background and exposes its test signals.
type daemon struct {
	addr   string
	passes chan *controlplane.Pass
	done   chan error
	cancel context.CancelFunc
}

func startDaemon(t *testing.T, e *env) *daemon {
	t.Helper()
	p, err := controlplane.Open(e.ctx, controlplane.Config{DatabaseURL: e.url, ModulesDir: e.modulesDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	d := &daemon{passes: make(chan *controlplane.Pass, 100), done: make(chan error, 1)}
	listening := make(chan string, 1)
	ctx, cancel := context.WithCancel(e.ctx)
	d.cancel = cancel
	go func() {
		d.done <- p.RunDaemon(ctx, controlplane.DaemonOptions{
			Interval: time.Hour, Listen: "127.0.0.1:0", Workers: 2,
			OnPass:      func(pass *controlplane.Pass) { d.passes <- pass },
			OnListening: func(a net.Addr) { listening <- a.String() },
		})
	}()
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

func (d *daemon) waitPass(t *testing.T) *controlplane.Pass {
	t.Helper()
	select {
	case pass := <-d.passes:
		return pass
	case <-time.After(30 * time.Second):
		t.Fatal("no reconcile pass within 30s")
		return nil
	}
}

func (d *daemon) stop(t *testing.T) {
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

func (d *daemon) get(t *testing.T, path string) (int, string) {
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
	e := newEnv(t)
	e.create("acme")
	e.create("globex")
	d := startDaemon(t, e)
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
	e.create("initech")
	if pass := d.waitPass(t); len(pass.Results) != 3 {
		t.Fatalf("pass after create: %+v", pass.Counts)
	}

	// A broken module file: the daemon keeps the last good modules, repairs drift with them,
	// stays healthy and reports not ready.
	if err := os.WriteFile(filepath.Join(e.modulesDir, "crm.hcl"), []byte("table \"x\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.exec(`DROP TABLE tenant_acme.stock_items`)
	e.exec(`SELECT pg_notify('erpctl_tenants', 'acme')`)
	pass := d.waitPass(t)
	if r := result(pass, "acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("acme with broken modules: %+v", r)
	}
	if code, body := d.get(t, "/readyz"); code != 503 || !strings.Contains(body, "crm.hcl") {
		t.Fatalf("readyz with a broken module: %d %s", code, body)
	}
	if code, _ := d.get(t, "/healthz"); code != 200 {
		t.Fatal("not healthy with a broken module")
	}
	if strings.Contains(strings.Join(e.tables("tenant_acme"), ","), "x") {
		t.Fatal("applied something from the broken file")
	}
	e.debugHealthy("acme")

	// Fixed: ready again, and the new module reaches every tenant that follows all modules.
	if err := os.WriteFile(filepath.Join(e.modulesDir, "crm.hcl"), []byte(`schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.exec(`SELECT pg_notify('erpctl_tenants', 'acme')`)
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
	e := newEnv(t)
	for _, s := range []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"} {
		e.create(s)
	}
	d1, d2 := startDaemon(t, e), startDaemon(t, e)
	d1.waitPass(t)
	d2.waitPass(t)
	src := strings.Replace(builtinSource(t, "inventory"), `  column "quantity" {`, `  column "bin" {
    type = text
    null = true
  }
  column "quantity" {`, 1)
	if err := os.WriteFile(filepath.Join(e.modulesDir, "inventory.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	e.exec(`SELECT pg_notify('erpctl_tenants', 'acme')`)
	for _, d := range []*daemon{d1, d2} {
		if pass := d.waitPass(t); pass.Failed() {
			t.Fatalf("a daemon failed: %+v", pass.Results)
		}
	}
	if n := e.count(`SELECT count(*) FROM erpctl.events WHERE kind = 'apply'`); n != 8 {
		t.Fatalf("%d applies, want one per tenant", n)
	}
	if n := e.count(`SELECT count(*) FROM erpctl.events WHERE outcome = 'failed'`); n != 0 {
		t.Fatalf("%d failures", n)
	}
	if err := e.p.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"acme", "wonka"} {
		e.debugHealthy(s)
	}
}
