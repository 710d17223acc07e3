package daemon_test

import (
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

// A tenant deleted by another process (the CLI) is gone from a running daemon's API as soon as
// the daemon hears of it: its token gets 401, while globex is served; restored, the same token
// works again at once.
func TestArchiveAndRestoreReachRunningDaemon(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	acme := ident.MustParseSlug("acme")
	_, acmeSecret, err := e.P.CreateToken(e.Ctx, acme, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, globexSecret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "bob")
	if err != nil {
		t.Fatal(err)
	}
	heard := make(chan struct{}, 4)
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Listener: daemon.ListenerConfig{OnToken: func() { heard <- struct{}{} }}})
	d.waitPass(t)
	if code := d.getWithToken(t, "/api/acme/", acmeSecret); code != 200 {
		t.Fatalf("acme before delete: %d", code)
	}
	wait := func(what string) {
		select {
		case <-heard:
		case <-time.After(10 * time.Second):
			t.Fatalf("the daemon never heard of the %s", what)
		}
	}
	if _, err := e.P.ArchiveTenant(e.Ctx, acme); err != nil { // e.P is not the daemon's plane
		t.Fatal(err)
	}
	wait("delete")
	if code := d.getWithToken(t, "/api/acme/", acmeSecret); code != 401 {
		t.Fatalf("acme's token after delete: %d, want 401", code)
	}
	if code := d.getWithToken(t, "/api/acme/", globexSecret); code != 404 {
		t.Fatalf("acme's URL with globex's token after delete: %d, want 404", code)
	}
	if code := d.getWithToken(t, "/api/globex/", globexSecret); code != 200 {
		t.Fatalf("globex after acme's delete: %d", code)
	}
	if _, err := e.P.RestoreTenant(e.Ctx, acme); err != nil {
		t.Fatal(err)
	}
	wait("restore")
	if code := d.getWithToken(t, "/api/acme/", acmeSecret); code != 200 {
		t.Fatalf("acme's token after restore: %d, want 200", code)
	}
}
