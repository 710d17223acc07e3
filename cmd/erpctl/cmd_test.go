package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/internal/pgtest"
	"github.com/erpctl/erpctl/internal/term"
)

func testFactory() (*Factory, *term.IOStreams) {
	ios, _, _, _ := term.Test()
	return newFactory(ios, func(string) string { return "" }), ios
}

// execCmd runs one command built by a NewCmdX, as the gh tests do: flag parsing alone.
func execCmd(cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(flagError)
	return cmd.Execute()
}

func TestFlagParsing(t *testing.T) {
	t.Parallel()
	f, _ := testFactory()

	var create *TenantCreateOptions
	if err := execCmd(NewCmdTenantCreate(f, func(o *TenantCreateOptions) error { create = o; return nil }),
		"acme", "--name", "ACME Corp", "--modules", "product,inventory"); err != nil {
		t.Fatal(err)
	}
	if create.Slug.String() != "acme" || create.Name != "ACME Corp" || !slices.Equal(create.Modules, []string{"product", "inventory"}) {
		t.Fatalf("tenant create: %+v", create)
	}

	var del *TenantDeleteOptions
	if err := execCmd(NewCmdTenantDelete(f, func(o *TenantDeleteOptions) error { del = o; return nil }), "acme"); err != nil {
		t.Fatal(err)
	}
	if del.Yes {
		t.Fatal("--yes defaults to true")
	}

	var rec *ReconcileOptions
	if err := execCmd(NewCmdReconcile(f, func(o *ReconcileOptions) error { rec = o; return nil }), "--all"); err != nil {
		t.Fatal(err)
	}
	if !rec.All || rec.Workers != 4 || rec.LockTimeout != 5*time.Second || rec.StatementTimeout != 5*time.Minute || rec.AllowDestructive {
		t.Fatalf("reconcile defaults: %+v", rec)
	}
	if err := execCmd(NewCmdReconcile(f, func(o *ReconcileOptions) error { rec = o; return nil }),
		"acme", "--allow-destructive", "--workers", "8", "--lock-timeout", "2s", "--statement-timeout", "1m"); err != nil {
		t.Fatal(err)
	}
	if rec.Slug.String() != "acme" || rec.All || rec.Workers != 8 || rec.LockTimeout != 2*time.Second || rec.StatementTimeout != time.Minute || !rec.AllowDestructive {
		t.Fatalf("reconcile flags: %+v", rec)
	}

	var d *DaemonOptions
	if err := execCmd(NewCmdDaemon(f, func(o *DaemonOptions) error { d = o; return nil })); err != nil {
		t.Fatal(err)
	}
	if d.Interval != 30*time.Second || d.Listen != "127.0.0.1:8080" || d.Workers != 4 {
		t.Fatalf("daemon defaults: %+v", d)
	}
	for _, args := range [][]string{{"--workers", "0"}, {"--interval", "0s"}, {"--interval", "-1s"}, {"--interval", "abc"}, {"--listen", "x"}} {
		called := false
		err := execCmd(NewCmdDaemon(f, func(*DaemonOptions) error { called = true; return nil }), args...)
		if err == nil || called || exitCode(err) != exitUsage {
			t.Errorf("daemon %v: err %v, ran %v", args, err, called)
		}
	}

	var tc *TokenCreateOptions
	if err := execCmd(NewCmdTokenCreate(f, func(o *TokenCreateOptions) error { tc = o; return nil }), "acme", "--name", "ci"); err != nil {
		t.Fatal(err)
	}
	if tc.Slug.String() != "acme" || tc.Name != "ci" {
		t.Fatalf("token create: %+v", tc)
	}
	var tr *TokenRevokeOptions
	if err := execCmd(NewCmdTokenRevoke(f, func(o *TokenRevokeOptions) error { tr = o; return nil }), "42"); err != nil || tr.ID != 42 {
		t.Fatalf("token revoke: %v %+v", err, tr)
	}
	var tl *TokenListOptions
	if err := execCmd(NewCmdTokenList(f, func(o *TokenListOptions) error { tl = o; return nil })); err != nil || tl.Slug.String() != "" {
		t.Fatalf("token list: %v %+v", err, tl)
	}

	var dt *DebugTablesOptions
	if err := execCmd(NewCmdDebugTables(f, func(o *DebugTablesOptions) error { dt = o; return nil }), "acme", "--fix"); err != nil || !dt.Fix {
		t.Fatalf("debug tables: %v %+v", err, dt)
	}
	var pl *PlanOptions
	if err := execCmd(NewCmdPlan(f, func(o *PlanOptions) error { pl = o; return nil }), "acme"); err != nil || pl.Slug.String() != "acme" || pl.All {
		t.Fatalf("plan: %v %+v", err, pl)
	}
}

// Global flags come from the environment when not given, and the flag wins over it.
func TestGlobalsFromEnvironment(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := term.Test()
	env := map[string]string{envDatabaseURL: "postgres://env@127.0.0.1:1/x", envModulesDir: "/env/modules"}
	f := newFactory(ios, func(k string) string { return env[k] })
	root := NewCmdRoot(f)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if f.DatabaseURL != env[envDatabaseURL] || f.ModulesDir != "/env/modules" {
		t.Fatalf("from env: %q %q", f.DatabaseURL, f.ModulesDir)
	}
	f = newFactory(ios, func(k string) string { return env[k] })
	root = NewCmdRoot(f)
	root.SetArgs([]string{"--database-url", "postgres://flag@h/x", "--modules-dir", "/flag", "version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if f.DatabaseURL != "postgres://flag@h/x" || f.ModulesDir != "/flag" {
		t.Fatalf("flags: %q %q", f.DatabaseURL, f.ModulesDir)
	}
}

func TestColor(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{}, color: true}
	if r := c.exec("module", "list"); r.code != 0 || !strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("colour on: exit %d %q", r.code, r.stdout)
	}
	if r := c.exec("--no-color", "module", "list"); r.code != 0 || strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("--no-color: %q", r.stdout)
	}
	c.env[envNoColor] = "1"
	if r := c.exec("module", "list"); r.code != 0 || strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("NO_COLOR: %q", r.stdout)
	}
}

func TestVersionCompletionDB(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{envHome: t.TempDir()}}
	r := c.exec("version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "erpctl dev (commit none") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := c.exec("completion", sh); r.code != 0 || !strings.Contains(r.stdout, "erpctl") {
			t.Fatalf("completion %s: %d %s", sh, r.code, r.stderr)
		}
	}
	// db status reads the embedded cluster's home and starts nothing.
	var st struct {
		Home        string `json:"home"`
		Initialized bool   `json:"initialized"`
		Running     bool   `json:"running"`
		InUse       bool   `json:"in_use"`
	}
	r = c.exec("db", "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("db status: %d %s", r.code, r.stderr)
	}
	decodeOne(t, r.stdout, &st)
	if st.Home != c.env[envHome] || st.Initialized || st.Running || !st.InUse {
		t.Fatalf("db status: %+v", st)
	}
	if r := c.exec("db", "stop"); r.code != 0 || !strings.Contains(r.stdout, "not running") {
		t.Fatalf("db stop: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := c.exec("help"); r.code != 0 || !strings.Contains(r.stdout, "tenant") {
		t.Fatalf("help: %d", r.code)
	}
	if r := c.exec("tenant"); r.code != 0 || !strings.Contains(r.stdout, "enable-module") {
		t.Fatalf("tenant alone prints its help: %d %q", r.code, r.stdout)
	}
}

// The daemon serves until its context ends, then stops cleanly (exit 0).
func TestDaemonRunsAndStops(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	f, ios := testFactory()
	f.DatabaseURL = url
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	cmd := NewCmdDaemon(f, func(o *DaemonOptions) error {
		o.OnListening = func(a net.Addr) { addrs <- a }
		return daemonRun(ctx, o)
	})
	done := make(chan error, 1)
	go func() { done <- execCmd(cmd, "--listen", "127.0.0.1:0", "--interval", "1h", "--workers", "2") }()

	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("daemon ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not listen")
	}
	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
	logs := ios.ErrOut.(interface{ String() string }).String()
	if !strings.HasPrefix(logs, "{") || !strings.Contains(logs, `"msg":"daemon starting"`) {
		t.Fatalf("daemon logs are not JSON on a non-terminal:\n%s", logs)
	}
}
