package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/fair"
)

// The attacks of issue 30, scaled to run in a few seconds: acme attacks with its own valid token
// while globex reads one product again and again; globex's p99 stays under 200 ms, nothing of
// globex's is lost, and nothing is written.

// bigCategories gives acme n categories whose descriptions are size bytes of hexadecimal text:
// every row contains every one-letter word of a search for 0 to f.
func bigCategories(a *apiEnv, n, size int) {
	a.Exec(`INSERT INTO tenant_acme.categories (name, description)
		SELECT 'big-' || g, left(repeat(md5(g::text), $2 / 32 + 1), $2) FROM generate_series(1, $1) g`, n, size)
}

// hexSearch is the attack's search: 32 one-letter words that every row contains.
const hexSearch = "?search=0+1+2+3+4+5+6+7+8+9+a+b+c+d+e+f+0+1+2+3+4+5+6+7+8+9+a+b+c+d+e+f"

// attackServer serves the data API of a control plane with a pool of poolSize connections, with
// sched (nil: fair's defaults), over real HTTP.
func attackServer(t *testing.T, a *apiEnv, poolSize int32, sched *fair.Scheduler) (*httptest.Server, connCounts) {
	t.Helper()
	p, err := controlplane.Open(a.Ctx, controlplane.Config{DatabaseURL: a.URL, MaxConns: poolSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	db, err := p.APIDB(a.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Plane: p, DB: db, Fair: sched}))
	t.Cleanup(srv.Close)
	return srv, countsOf(db)
}

// connCounts counts the connections of the data API's pools: held by statements, and open.
type connCounts func() (held, open int32)

// countsOf counts the connections of the pools db runs its statements on; nil when it runs
// them on none.
func countsOf(db controlplane.Statements) connCounts {
	var pools []*pgxpool.Pool
	switch d := db.(type) {
	case interface{ Pools() []*pgxpool.Pool }:
		pools = d.Pools()
	case *pgxpool.Pool:
		pools = []*pgxpool.Pool{d}
	}
	if len(pools) == 0 {
		return nil
	}
	return func() (held, open int32) {
		for _, p := range pools {
			st := p.Stat()
			held, open = held+st.AcquiredConns(), open+st.TotalConns()
		}
		return held, open
	}
}

// victim reads globex's product id every 20 ms until stop is closed, on a connection of its own
// kept alive, and checks each answer; it returns the latencies, sorted. Its first read, which
// finds the token and the tenant in the catalog, is not counted.
func victim(t *testing.T, a *apiEnv, base string, id int64, stop <-chan struct{}) []time.Duration {
	client := &http.Client{Timeout: 30 * time.Second}
	url := fmt.Sprintf("%s/api/globex/product/products/%d/", base, id)
	var lat []time.Duration
	for first := true; ; first = false {
		select {
		case <-stop:
			slices.Sort(lat)
			return lat
		case <-time.After(20 * time.Millisecond):
		}
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+a.tok["globex"])
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("globex's GET: %v", err)
			lat = append(lat, time.Since(start))
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !first {
			lat = append(lat, time.Since(start))
		}
		var row map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &row) != nil || row["sku"] != "victim" {
			t.Errorf("globex's GET: %d %s", resp.StatusCode, body)
		}
	}
}

// checkVictim checks globex's latencies: enough samples, p99 under a second. Each attacking
// request holds its connection for seconds, so a victim queued behind them waits that long; the
// bound tells that apart from a shared CI machine's noise, and erpbench measures the latency.
func checkVictim(t *testing.T, what string, lat []time.Duration) {
	t.Helper()
	if len(lat) < 20 {
		t.Fatalf("%s: only %d reads of globex", what, len(lat))
	}
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("%s: globex's GET of one row over %d reads: p50 %s, p99 %s, max %s", what, len(lat), p50, p99, worst)
	if p99 > time.Second {
		t.Errorf("%s: globex's p99 is %s, over a second", what, p99)
	}
}

// victimRow makes globex's product that the victim reads.
func victimRow(a *apiEnv) int64 {
	return idOf(a.T, a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "victim", "name": "Victim"}`))
}

// Twenty parallel searches that each scan every row of large text: acme holds its share of the
// pool, its other searches wait in its own queue (and some get 429), and globex goes ahead. Each
// search keeps a core busy, so the share here is one connection of eight, and the test runs
// before the package's parallel tests: on two cores, what is measured is the pool's fairness,
// not how busy the machine is.
func TestAttackHeavySearches(t *testing.T) {
	a := newAPIEnv(t, api.Config{})
	bigCategories(a, 20, 300_000)
	id := victimRow(a)
	before := a.Checksums("tenant_acme") + a.Checksums("tenant_globex")
	srv, _ := attackServer(t, a, 8, fair.New(fair.Config{Slots: 8, Share: 0.125}))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make(chan int, 1000)
	client := &http.Client{Timeout: time.Minute}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", srv.URL+categoriesURL+hexSearch, nil)
				req.Header.Set("Authorization", "Bearer "+a.tok["acme"])
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("acme's search: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				select {
				case statuses <- resp.StatusCode:
				default:
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the searches take the pool first
	done := make(chan []time.Duration)
	go func() { done <- victim(t, a, srv.URL, id, stop) }()
	time.Sleep(3 * time.Second)
	close(stop)
	lat := <-done
	wg.Wait()
	close(statuses)
	checkVictim(t, "20 heavy searches", lat)
	for s := range statuses {
		if s != 200 && s != 429 {
			t.Errorf("acme's search answered %d", s)
		}
	}
	if after := a.Checksums("tenant_acme") + a.Checksums("tenant_globex"); after != before {
		t.Error("the attack changed rows")
	}
}

// Twenty clients ask for a page of large rows and never read it: each holds a little memory and
// no connection, and globex goes ahead.
func TestAttackSlowReaders(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	bigCategories(a, 20, 400_000) // 8 MB a page: more than the kernel buffers of a socket
	id := victimRow(a)
	before := a.Checksums("tenant_acme") + a.Checksums("tenant_globex")
	sched := fair.New(fair.Config{Slots: 8})
	srv, pool := attackServer(t, a, 8, sched)

	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	addr := strings.TrimPrefix(srv.URL, "http://")
	for range 20 {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
		fmt.Fprintf(c, "GET %s?page_size=1000 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", categoriesURL, addr, a.tok["acme"])
	}
	// The slow readers' answers wait on their clients with their slots given back: what they hold
	// is memory, within acme's share (those that waited too long for it got a 429).
	held := func() bool {
		st := sched.Stats()
		return st.Total.Requests == 20 && st.Waiting == 0 && st.SlotsInUse == 0 && st.MemInUse > 0
	}
	for deadline := time.Now().Add(20 * time.Second); !held(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slow readers never settled: %+v", sched.Stats())
		}
	}
	if n, _ := pool(); n != 0 {
		t.Errorf("%d connections held while the slow readers wait", n)
	}
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() { done <- victim(t, a, srv.URL, id, stop) }()
	time.Sleep(2 * time.Second)
	close(stop)
	checkVictim(t, "20 slow readers", <-done)
	st := sched.Stats()
	if limit := int64(float64(st.Memory)*0.25) + 1<<20; st.MemInUse > limit {
		t.Errorf("the slow readers hold %d bytes, over acme's share (%d)", st.MemInUse, limit)
	}
	for _, c := range slow {
		c.Close()
	}
	for deadline := time.Now().Add(20 * time.Second); sched.Stats().MemInUse != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("memory still held once the slow readers left: %+v", sched.Stats())
		}
	}
	if after := a.Checksums("tenant_acme") + a.Checksums("tenant_globex"); after != before {
		t.Error("the attack changed rows")
	}
}

// A statement past the statement timeout is stopped by the server: the request gets a 503 with
// Retry-After that says why, never a 500; its connection is free at once and serves the next
// request; nothing is written.
func TestAPIStatementTimeout(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		a := newAPIEnvOn(t, e, api.Config{})
		bigCategories(a, 20, 900_000)
		before := a.Checksums("tenant_acme") + a.Checksums("tenant_globex")
		p, err := controlplane.Open(a.Ctx, a.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		db, err := p.APIDB(a.Ctx, controlplane.APIOptions{StatementTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h := api.New(api.Config{Plane: p, DB: db})
		// A quick list fits in the timeout, but a busy machine (the suite's other packages)
		// can stall its backend past 100 ms once: three tries.
		for try := 1; ; try++ {
			r := doWith(h, "GET", categoriesURL+"?limit=1", a.auth("acme"), "")
			if r.status == 200 {
				break
			}
			if try == 3 || r.status != http.StatusServiceUnavailable {
				t.Fatalf("a quick list, try %d: %s", try, r)
			}
		}
		pool := countsOf(db)
		var conns int32
		if pool != nil {
			_, conns = pool()
		}
		start := time.Now()
		r := doWith(h, "GET", categoriesURL+hexSearch, a.auth("acme"), "")
		took := time.Since(start)
		var body struct{ Detail string }
		json.Unmarshal(r.body, &body)
		if r.status != 503 || r.hdr.Get("Retry-After") == "" || !strings.Contains(body.Detail, "took longer than the server allows") {
			t.Fatalf("a search past the timeout: %s", r)
		}
		if took > 5*time.Second {
			t.Errorf("the search was stopped after %s", took)
		}
		if pool != nil {
			if held, open := pool(); held != 0 || open != conns {
				t.Errorf("after the timeout: %d connections held, %d open (was %d)", held, open, conns)
			}
		}
		if n := a.Count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%concat_ws%'
			AND state = 'active' AND pid <> pg_backend_pid()`); n != 0 {
			t.Errorf("%d searches still running", n)
		}
		for _, path := range []string{categoriesURL + "?limit=1", categoriesURL + "?name=big-7"} {
			if r := doWith(h, "GET", path, a.auth("acme"), ""); r.status != 200 {
				t.Errorf("after the timeout, %s: %s", path, r)
			}
		}
		if r := doWith(h, "GET", "/api/globex/product/categories/", a.auth("globex"), ""); r.status != 200 {
			t.Errorf("globex after the timeout: %s", r)
		}
		if after := a.Checksums("tenant_acme") + a.Checksums("tenant_globex"); after != before {
			t.Error("rows changed")
		}
	})
}

// Past a tenant's rate or concurrency limit a request gets DRF's 429: Retry-After and "Request
// was throttled. Expected available in N seconds."; it writes nothing, and the other tenant is
// not limited.
func TestAPIThrottlesAsDRF(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sched := fair.New(fair.Config{Clock: func() time.Time { return now }}) // the time stands still
	a := newAPIEnv(t, api.Config{Fair: sched})
	rate, one := fair.Rate{Requests: 2, Per: time.Minute}, 1
	sched.SetOverrides(map[string]fair.Override{"acme": {Rate: &rate}})
	a.must(201, "POST", categoriesURL, "acme", `{"name": "one"}`)
	a.must(200, "GET", categoriesURL, "acme", "")
	r := a.do("POST", categoriesURL, "acme", `{"name": "three"}`)
	if r.status != 429 || r.hdr.Get("Retry-After") != "30" {
		t.Fatalf("past the rate: %s, Retry-After %q", r, r.hdr.Get("Retry-After"))
	}
	jsonEqual(t, "past the rate", r.body, `{"detail": "Request was throttled. Expected available in 30 seconds."}`)
	if n := a.Count(`SELECT count(*) FROM tenant_acme.categories`); n != 1 {
		t.Fatalf("acme has %d categories, want 1", n)
	}
	for i := range 10 {
		a.must(201, "POST", "/api/globex/product/categories/", "globex", fmt.Sprintf(`{"name": "g%d"}`, i))
	}

	// One request of acme at a time: one whose body is still coming holds acme's only place.
	sched.SetOverrides(map[string]fair.Override{"acme": {Concurrency: &one}})
	body, feed := io.Pipe()
	first := make(chan apiResp, 1)
	go func() {
		req := httptest.NewRequest("POST", "http://example.com"+categoriesURL, body)
		req.Header.Set("Authorization", a.auth("acme"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		first <- apiResp{status: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
	}()
	if _, err := feed.Write([]byte(`{"name": `)); err != nil { // returns once the handler reads the body
		t.Fatal(err)
	}
	r = a.do("GET", categoriesURL, "acme", "")
	if r.status != 429 || r.hdr.Get("Retry-After") != "1" {
		t.Fatalf("past the concurrency: %s", r)
	}
	jsonEqual(t, "past the concurrency", r.body, `{"detail": "Request was throttled. Expected available in 1 second."}`)
	a.must(200, "GET", "/api/globex/product/categories/", "globex", "")
	feed.Write([]byte(`"two"}`))
	feed.Close()
	if r := <-first; r.status != 201 {
		t.Fatalf("the request in progress: %s", r)
	}
	a.must(200, "GET", categoriesURL, "acme", "")
	use := sched.Drain()
	if len(use) != 2 || use[0].Tenant != "acme" || use[0].Throttled != 2 || use[1].Throttled != 0 || use[1].Requests != 11 {
		t.Fatalf("usage %+v", use)
	}
}
