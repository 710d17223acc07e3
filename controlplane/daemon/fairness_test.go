package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// Idle keep-alive connections fill the connection cap (the attack of issue 30, with a cap of 64
// instead of 15,000): each new client is still answered at once, since the server closes the
// connection idle longest to make room; the idle ones go oldest first; nothing is written.
func TestAttackIdleConnections(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	_, token, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "bob")
	if err != nil {
		t.Fatal(err)
	}
	e.Exec(`INSERT INTO tenant_globex.products (sku, name) VALUES ('victim', 'Victim')`)
	before := e.Checksums("tenant_acme") + e.Checksums("tenant_globex")
	const maxConns = 64
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour}, Server: daemon.ServerConfig{MaxConns: maxConns}})
	if code := d.getWithToken(t, "/api/globex/product/products/1/", token); code != 200 { // the token and tenant, cached
		t.Fatalf("globex's GET: %d", code)
	}

	// The attacker: as many connections as the cap, each sends one unauthenticated /healthz,
	// reads the answer and stays open.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range maxConns {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
		}
	}

	// Each read of globex's product comes on a new connection, as a new client's does.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	for range 40 {
		req, _ := http.NewRequest("GET", "http://"+d.addr+"/api/globex/product/products/1/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a new client behind %d idle connections: %v", maxConns, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"victim"`) {
			t.Fatalf("globex's GET: %d %s", resp.StatusCode, body)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("new clients behind %d idle connections: p50 %s, p99 %s, max %s", maxConns, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	if p99 := lat[len(lat)*99/100]; p99 > 200*time.Millisecond {
		t.Errorf("globex's p99 is %s, over 200 ms", p99)
	}
	// The oldest idle connections were the ones closed.
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	if !closed(idle[0]) || closed(idle[len(idle)-1]) {
		t.Errorf("the first idle connection closed: %v, the last: %v; want the oldest closed first", closed(idle[0]), closed(idle[len(idle)-1]))
	}
	if after := e.Checksums("tenant_acme") + e.Checksums("tenant_globex"); after != before {
		t.Error("the attack changed rows")
	}
}

// A tenant's limits set in the catalog (as erpctl tenant limits does) reach the daemon at once;
// its usage is published for erpctl tenant top and in /metrics, the busiest tenants by name.
func TestDaemonLimitsAndUsage(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	tokens := map[string]string{}
	for _, s := range []string{"acme", "globex"} {
		_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(s), "bot")
		if err != nil {
			t.Fatal(err)
		}
		tokens[s] = secret
	}
	limits := make(chan struct{}, 10)
	published := make(chan []fair.Usage, 100)
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Usage: daemon.UsageConfig{Interval: 200 * time.Millisecond,
			OnLimits:  func() { limits <- struct{}{} },
			OnPublish: func(u []fair.Usage) { published <- u }}})
	<-limits // read at start

	rate := fair.Rate{Requests: 3, Per: time.Hour}
	if err := fair.NewStore(e.P.Pool()).SetOverride(e.Ctx, ident.MustParseSlug("acme"), fair.Override{Rate: &rate}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-limits:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not read the new limits")
	}
	var codes []int
	for range 5 {
		codes = append(codes, d.getWithToken(t, "/api/acme/product/products/", tokens["acme"]))
		if c := d.getWithToken(t, "/api/globex/product/products/", tokens["globex"]); c != 200 {
			t.Fatalf("globex: %d", c)
		}
	}
	if !slices.Equal(codes, []int{200, 200, 200, 429, 429}) {
		t.Fatalf("acme at 3 an hour: %v", codes)
	}

	total := map[string]fair.Usage{}
	for deadline := time.After(10 * time.Second); total["acme"].Requests < 5 || total["globex"].Requests < 5; {
		select {
		case us := <-published:
			for _, u := range us {
				tu := total[u.Tenant]
				tu.Requests += u.Requests
				tu.Throttled += u.Throttled
				tu.Rows += u.Rows
				total[u.Tenant] = tu
			}
		case <-deadline:
			t.Fatalf("usage published: %+v", total)
		}
	}
	if total["acme"].Throttled != 2 || total["globex"].Throttled != 0 {
		t.Fatalf("usage published: %+v", total)
	}
	top, err := fair.NewStore(e.P.Pool()).Top(e.Ctx, time.Minute, 10, "throttled", labels.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Tenants) != 2 || top.Tenants[0].Tenant != "acme" || top.Tenants[0].Requests != 5 || top.Tenants[1].Requests != 5 {
		t.Fatalf("top: %+v", top.Tenants)
	}
	_, metrics := d.get(t, "/metrics")
	for _, want := range []string{"erpctl_api_requests_total 10", `erpctl_api_throttled_total{reason="rate"} 2`, "erpctl_api_slots 16",
		`erpctl_http_connections{state="busy"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
