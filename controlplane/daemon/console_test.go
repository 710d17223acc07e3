package daemon_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/console"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

// The daemon serves the console on a listener of its own, records its address for login links,
// and shows its own health there; a non-loopback address is refused unless allowed.
func TestDaemonServesTheConsole(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme", "product")
	e.Create("globex", "product")
	consoleAddr := make(chan string, 1)
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Console: daemon.ConsoleConfig{Listen: "127.0.0.1:0", OnListening: func(a net.Addr) { consoleAddr <- a.String() }}})
	addr := <-consoleAddr
	d.waitPass(t)
	if addr == d.addr {
		t.Fatal("the console shares the data API's listener")
	}
	if got := e.Strings(`SELECT value FROM erpctl.meta WHERE key = 'console_url'`); len(got) != 1 || got[0] != "http://"+addr {
		t.Fatalf("recorded console URL %v, want http://%s", got, addr)
	}
	op, err := e.P.Operators().Create(e.Ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, tenantToken, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	get := func(base, path, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+base+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b json.RawMessage
		json.NewDecoder(res.Body).Decode(&b)
		return res, b
	}
	res, body := get(addr, "/", op.Secret)
	var fleet struct {
		Tenants int             `json:"tenants"`
		Health  *console.Health `json:"health"`
	}
	if err := json.Unmarshal(body, &fleet); err != nil || res.StatusCode != 200 {
		t.Fatalf("fleet: %d %s", res.StatusCode, body)
	}
	if h := fleet.Health; fleet.Tenants != 2 || h == nil || h.Passes < 1 || h.LastPassAt == nil || !h.DatabaseReachable || !h.DatabaseWritable || len(h.Problems) != 0 {
		t.Fatalf("fleet: %s", body)
	}
	if res, _ := get(addr, "/", tenantToken); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the console took a tenant token: %d", res.StatusCode)
	}
	// The data API takes no operator token, and serves no console page.
	if res, _ := get(d.addr, "/api/acme/", op.Secret); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the data API took an operator token: %d", res.StatusCode)
	}
	if res, _ := get(d.addr, "/tenants", op.Secret); res.StatusCode == http.StatusOK {
		t.Fatal("the data API's listener serves the console")
	}

	// Not on every interface unless told so.
	p, err := controlplane.Open(e.Ctx, e.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(e.Ctx, 30*time.Second)
	defer cancel()
	err = daemon.Run(ctx, p, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour}, Console: daemon.ConsoleConfig{Listen: "0.0.0.0:0"}})
	if err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("a console on every interface: %v", err)
	}
}
