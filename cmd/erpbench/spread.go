package main

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

// The spread: GET one, each request for the next of many tenants, as a data API serving a fleet
// sees it, beside GET one on a single tenant. Each tenant's statements are its own text (they
// name its schema), so how statements are sent (prepared and cached per connection, or not)
// decides whether a request costs more when the API serves more tenants.

// spreadID is the id of the product every spread tenant gets, so that one URL shape serves all.
const spreadID = 900000001

// The spread's warm-up runs until the rate is steady, as in a data API that has been serving
// its tenants for a while: first spreadWarmup seconds, which pass every tenant once so that the
// API's caches of tenants and tokens hold them, then rounds of spreadWarmRound seconds until
// one's rate is within spreadSteady of the round before, or spreadWarmMax seconds in all. A
// fixed 12 s was not enough past a few thousand tenants: a backend's first statement on a
// tenant's table reads the catalog (0.85-1.05 ms a statement, against 0.15-0.2 ms warm, on a
// fresh psql connection over 2,000 tenants of 10,000), and each tenant has two connections of its
// own, so 10,000 tenants are 20,000 such firsts, more server CPU than 12 s of this machine holds.
const (
	spreadWarmup    = 12
	spreadWarmRound = 6
	spreadWarmMax   = 120
	spreadSteady    = 0.05
)

// warmSpread runs the spread's warm-up with run (one wrk run of that many seconds) and returns
// how long it took and the rate of each of its runs.
func warmSpread(run func(seconds int) (wrkResult, error)) (seconds int, rates []float64, err error) {
	for seconds < spreadWarmMax {
		d := spreadWarmRound
		if seconds == 0 {
			d = spreadWarmup
		}
		w, err := run(d)
		if err != nil {
			return seconds, rates, err
		}
		seconds += d
		rates = append(rates, w.rate())
		if n := len(rates); n > 1 && math.Abs(rates[n-1]/rates[n-2]-1) <= spreadSteady {
			break
		}
	}
	return seconds, rates, nil
}

// warmNote says how the warm-up went, for a result's note.
func warmNote(seconds int, rates []float64) string {
	rs := make([]string, len(rates))
	for i, r := range rates {
		rs[i] = formatThousands(int64(math.Round(r)))
	}
	return fmt.Sprintf("after a warm-up of %d s until the rate was steady (its runs: %s req/s)", seconds, strings.Join(rs, ", "))
}

// spreadSize is how many tenants the spread covers: BENCH_SPREAD, else the fleet, at most 10,000.
func (b *bench) spreadSize() (int, error) {
	n := min(len(b.slugs), 10000)
	if s := os.Getenv("BENCH_SPREAD"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return 0, fmt.Errorf("BENCH_SPREAD=%q: want a number of tenants", s)
		}
		n = min(v, len(b.slugs))
	}
	return n, nil
}

// spreadTarget is one tenant of the spread: the path of its product and a token of its own.
type spreadTarget struct {
	path, token string
}

// prepareSpread gives n tenants spread over the fleet a product with id spreadID and a token,
// and returns them in the order the load visits them.
func (b *bench) prepareSpread(ctx context.Context, n int) ([]spreadTarget, error) {
	slugs := spread(b.slugs, n)
	schemas := make([]string, len(slugs))
	for i, s := range slugs {
		schemas[i] = ident.SchemaName(s)
	}
	start := time.Now()
	// One statement that loops over the schemas, so that 10,000 tenants cost one round trip.
	if _, err := b.db.ExecContext(ctx, fmt.Sprintf(`DO $$
DECLARE s text;
BEGIN
	FOREACH s IN ARRAY %s LOOP
		EXECUTE format('INSERT INTO %%I.products (id, sku, name, price) VALUES (%d, %%L, %%L, 9.5) ON CONFLICT DO NOTHING',
			s, 'spread-' || s, 'Spread product');
	END LOOP;
END $$`, arrayLiteral(schemas), spreadID)); err != nil {
		return nil, fmt.Errorf("seed the spread's products: %w", err)
	}
	out := make([]spreadTarget, len(slugs))
	var mu sync.Mutex
	err := inWorkers(ctx, 0, len(slugs)-1, 1, max(1, len(slugs)/5), func(i, _ int) error {
		_, token, err := b.p.CreateToken(ctx, ident.MustParseSlug(slugs[i]), "erpbench-spread")
		if err != nil {
			return err
		}
		mu.Lock()
		out[i] = spreadTarget{path: "/api/" + slugs[i] + "/product/products/" + strconv.Itoa(spreadID) + "/", token: token}
		mu.Unlock()
		return nil
	}, func(done int) { b.logf("spread: %d/%d tokens", done, len(slugs)) })
	if err != nil {
		return nil, fmt.Errorf("tokens of the spread: %w", err)
	}
	b.logf("spread over %d tenants ready in %s", len(out), time.Since(start).Round(time.Millisecond))
	return out, nil
}

// arrayLiteral is names as a SQL text array; they are schema names of the bench's own slugs.
func arrayLiteral(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return "ARRAY[" + strings.Join(quoted, ",") + "]::text[]"
}

// spreadScript is wrk's Lua script for the spread: each thread walks the targets from its own
// starting point, one request per target in turn.
func spreadScript(targets []spreadTarget) string {
	var b strings.Builder
	b.WriteString("local targets = {\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "{%q, %q},\n", t.path, "Bearer "+t.token)
	}
	b.WriteString(`}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local i = nil
function request()
  if i == nil then
    i = (tid * 7919) % #targets
  end
  i = i % #targets + 1
  local t = targets[i]
  return wrk.format("GET", t[1], {["Authorization"] = t[2]})
end
`)
	return b.String()
}

// runWrkSpread loads the spread at base for seconds.
func (b *bench) runWrkSpread(ctx context.Context, wrk, base string, targets []spreadTarget, seconds int) (wrkResult, error) {
	script := filepath.Join(b.tmp, "wrk-spread.lua")
	if err := os.WriteFile(script, []byte(spreadScript(targets)+wrkDone), 0o600); err != nil {
		return wrkResult{}, err
	}
	return b.runWrkScript(ctx, wrk, script, base+"/", seconds)
}

// apiModes are the ways of sending statements the modes scenario compares, as URL settings of
// pgx's (default_query_exec_mode and its cache sizes); "" is erpctl's own choice.
var apiModes = []struct{ name, params string }{
	{"erpctl (exec, result formats honoured)", ""},
	{"cache_statement, 512 (pgx's default)", "default_query_exec_mode=cache_statement"},
	{"cache_statement, 16384", "default_query_exec_mode=cache_statement&statement_cache_capacity=16384"},
	{"cache_describe, 512", "default_query_exec_mode=cache_describe"},
	{"cache_describe, 16384", "default_query_exec_mode=cache_describe&description_cache_capacity=16384"},
	{"describe_exec", "default_query_exec_mode=describe_exec"},
}

// apiModesScenario runs GET one on one tenant and spread over many with each of apiModes, in the
// same run: the rate, the CPU a request costs (erpbench's and the API's server backends'), and
// the memory the API's server backends hold afterwards.
func (b *bench) apiModesScenario(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n, err := b.spreadSize()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range apiModes {
		names = append(names, "API modes: "+m.name)
	}
	wrk, err := findWrk(ctx, b)
	if err != nil {
		return skipped(names, len(b.slugs), err.Error()), nil
	}
	targets, err := b.prepareSpread(ctx, n)
	if err != nil {
		return nil, err
	}
	one := targets[:1]
	var out []result
	for _, m := range apiModes {
		r, err := b.apiMode(ctx, wrk, m.name, m.params, one, targets)
		if err != nil {
			return out, fmt.Errorf("mode %s: %w", m.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// apiMode measures one mode on a control plane of its own, opened with the mode's URL settings.
func (b *bench) apiMode(ctx context.Context, wrk, name, params string, one, targets []spreadTarget) (result, error) {
	r := result{Name: "API modes: " + name, Tenants: len(b.slugs), Unit: "req/s", Samples: 1}
	app := "erpbench_mode_" + randomHex(3)
	u, err := url.Parse(b.url)
	if err != nil {
		return r, err
	}
	q, err := url.ParseQuery(params)
	if err != nil {
		return r, err
	}
	for k, v := range u.Query() {
		q[k] = v
	}
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: u.String(), AdminURL: b.superURL, ModulesDir: b.modulesDir,
		MaxConns: b.p.Pool().Config().MaxConns})
	if err != nil {
		return r, err
	}
	defer p.Close()
	base, stop, err := serveHandler(p)
	if err != nil {
		return r, err
	}
	defer stop()
	if err := probe(ctx, base+one[0].path, one[0].token); err != nil {
		return r, err
	}
	run := func(label string, ts []spreadTarget, seconds int) (wrkResult, float64, error) {
		s, err := b.spreadRound(ctx, wrk, base, ts, seconds, app)
		w := s.w
		if err != nil {
			return w, 0, err
		}
		perReq := s.own + s.server
		b.logf("mode %s, %s: %.0f req/s, p99 %.2f ms, %d non-2xx; %.0f µs CPU a request (%.0f erpbench's, %.0f the API's backends')",
			name, label, w.rate(), w.P99/1000, w.Non2xx, perReq, s.own, s.server)
		// A socket error is a client's timeout on a loaded machine, counted; a non-2xx a failure.
		if w.Non2xx != 0 {
			return w, perReq, fmt.Errorf("%s: %d non-2xx", label, w.Non2xx)
		}
		return w, perReq, nil
	}
	if _, _, err := run("warm-up, one tenant", one, 2); err != nil {
		return r, err
	}
	single, singleCPU, err := run("one tenant", one, loadSeconds)
	if err != nil {
		return r, err
	}
	warm, rates, err := warmSpread(func(seconds int) (wrkResult, error) {
		w, _, err := run("warm-up, spread", targets, seconds)
		return w, err
	})
	if err != nil {
		return r, err
	}
	spreadRun, spreadCPU, err := run(fmt.Sprintf("spread over %d tenants", len(targets)), targets, loadSeconds)
	if err != nil {
		return r, err
	}
	mem, _, memOK := b.backendMemory(ctx, app)
	share := spreadRun.rate() / single.rate()
	r.Median = ptr(spreadRun.rate())
	r.Extra = map[string]float64{"one_tenant_req_s": single.rate(), "spread_share": share, "spread_tenants": float64(len(targets)),
		"cpu_us_per_request_one": singleCPU, "cpu_us_per_request_spread": spreadCPU, "spread_p99_ms": spreadRun.P99 / 1000}
	r.setPass("spread ≥ 80% of one tenant, no errors", share >= 0.8 && single.SocketErrors == 0 && spreadRun.SocketErrors == 0)
	if n := single.SocketErrors + spreadRun.SocketErrors; n > 0 {
		r.addNote("%d socket errors (wrk's timeouts)", n)
	}
	r.addNote("GET one spread over %d tenants: %.0f req/s, %.0f%% of one tenant's %.0f req/s; CPU a request %.0f µs spread, %.0f µs one tenant (erpbench and the API's server backends)",
		len(targets), spreadRun.rate(), share*100, single.rate(), spreadCPU, singleCPU)
	if memOK {
		r.Extra["backend_rss_anon_mb"] = mem
		r.addNote("the API's server backends hold %.0f MB of private memory after the spread", mem)
	}
	r.Extra["spread_warmup_s"] = float64(warm)
	r.Extra["spread_first_warmup_req_s"] = rates[0]
	r.addNote("wrk -t%d -c%d -d%ds %s; the data API on a listener of its own, no access log; URL settings %q",
		loadThreads, loadConns, loadSeconds, warmNote(warm, rates), params)
	return r, nil
}

// backendCPU is the CPU time the server's backends with application_name app ("": every
// backend) have used, each, where the server runs on this machine (else none).
func (b *bench) backendCPU(ctx context.Context, app string) backendTimes {
	t := backendTimes{}
	for _, pid := range b.backendPIDs(ctx, app) {
		t[pid] = procCPU(pid)
	}
	return t
}

// backendTimes are backends' CPU times by pid.
type backendTimes map[int]time.Duration

// since is the CPU the backends of t used after those of before: a backend new since then
// counts whole, one gone since (a connection at the end of its lifetime) is missing from t and
// counts nothing, rather than taking its total off the others'.
func (t backendTimes) since(before backendTimes) time.Duration {
	var d time.Duration
	for pid, cpu := range t {
		d += cpu - before[pid]
	}
	return d
}

// backendMemory is the private memory (RssAnon) the backends with application_name app hold, in
// MB, in all and the largest's; false when they cannot be read (a server elsewhere).
func (b *bench) backendMemory(ctx context.Context, app string) (total, largest float64, ok bool) {
	pids := b.backendPIDs(ctx, app)
	for _, pid := range pids {
		kb, ok := procStatusKB(pid, "RssAnon")
		if !ok {
			return 0, 0, false
		}
		total += kb / 1024
		largest = max(largest, kb/1024)
	}
	return total, largest, len(pids) > 0
}

func (b *bench) backendPIDs(ctx context.Context, app string) []int {
	rows, err := b.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE $1 IN (application_name, '')`, app)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procCPU is the user and system CPU time of process pid, 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces: fields count from after it.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// procStatusKB reads one kB field of /proc/pid/status.
func procStatusKB(pid int, key string) (float64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		return kb, err == nil
	}
	return 0, false
}
