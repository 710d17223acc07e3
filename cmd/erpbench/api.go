package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

const (
	apiSeedProducts = 300
	loadThreads     = 2
	loadConns       = 32
	loadSeconds     = 10
	p99TargetMS     = 20
)

// api loads the data API of an in-process daemon with wrk (GET one, GET a page, POST), beside
// pgbench -S on the same server.
func (b *bench) api(ctx context.Context) ([]result, error) {
	names := []string{"API GET one: throughput", "API GET one: latency", "API GET page of 20: throughput",
		"API GET page of 20: latency", "API POST: throughput", "API POST: latency"}
	skipAll := func(reason string) []result { return skipped(names, len(b.slugs), reason) }

	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	if err := b.settleServer(ctx); err != nil {
		return nil, err
	}
	pg, pgErr := b.pgbench(ctx)
	var out []result
	if pgErr != nil {
		out = append(out, result{Name: "pgbench -S (baseline)", Tenants: len(b.slugs), Skipped: pgErr.Error()})
	} else {
		out = append(out, pg)
	}

	wrk, err := findWrk(ctx, b)
	if err != nil {
		return append(out, skipAll(err.Error())...), nil
	}
	slug, id, token, err := b.getOneTarget(ctx, "erpbench")
	if err != nil {
		return out, err
	}

	syncOff := os.Getenv("BENCH_SYNC_COMMIT") == "off"
	if syncOff {
		// An experiment, for this bench database only: does POST's tail go with the WAL flush?
		db := pgx.Identifier{b.dbName(ctx)}.Sanitize()
		if _, err := b.db.ExecContext(ctx, "ALTER DATABASE "+db+" SET synchronous_commit = off"); err != nil {
			return out, fmt.Errorf("BENCH_SYNC_COMMIT=off: %w", err)
		}
		defer b.db.ExecContext(context.WithoutCancel(ctx), "ALTER DATABASE "+db+" RESET synchronous_commit")
	}
	base, how, alog, stop, err := b.serveAPI(ctx)
	if err != nil {
		return append(out, skipAll(err.Error())...), nil
	}
	defer stop()
	apiDB, err := b.p.APIDB(ctx)
	if err != nil {
		return out, err
	}
	apiPool, _ := apiDB.(*pgxpool.Pool)
	if pp, ok := apiDB.(interface{ Pools() []*pgxpool.Pool }); ok {
		apiPool = pp.Pools()[0] // the data API's statements, sent unprepared on pools of their own
	}
	if apiPool != nil {
		var sc string
		if err := apiPool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err == nil {
			how += ", synchronous_commit " + sc
		}
	}
	prefix := base + "/api/" + slug + "/product/products/"
	if err := probe(ctx, prefix+strconv.FormatInt(id, 10)+"/", token); err != nil {
		return append(out, skipAll("the data API does not answer yet: "+err.Error())...), nil
	}

	// A throughput target is either a rate or a share of pgbench's.
	endpoints := []struct {
		name, method, url string
		minRate, minShare float64
	}{
		{"GET one", "GET", prefix + strconv.FormatInt(id, 10) + "/", 0, 0.35},
		{"GET page of 20", "GET", prefix + "?limit=20", 5000, 0},
		{"POST", "POST", prefix, 3000, 0},
	}
	// Warm up (connections, caches), not measured.
	if _, err := b.runWrk(ctx, wrk, "GET", endpoints[0].url, token, 2); err != nil {
		return out, fmt.Errorf("wrk warm-up: %w", err)
	}
	// The Go floor, just before erpctl's GET one, under the same load.
	floor, floorErr := b.floorRate(ctx, wrk, slug, id, token)
	var rs []result
	if floorErr != nil {
		rs = append(rs, result{Name: "Go floor GET one: throughput", Tenants: len(b.slugs), Skipped: floorErr.Error()})
	} else {
		fr := result{Name: "Go floor GET one: throughput", Tenants: len(b.slugs), Unit: "req/s", Samples: 1, Median: ptr(floor)}
		if pgErr == nil {
			fr.setBaseline(*pg.Median, "pgbench -S -M prepared TPS on the same server", true)
		}
		fr.addNote("one route, one prepared primary-key select, encoding/json, same pool size; no auth, logging or tenant lookup")
		rs = append(rs, fr)
	}
	prof, err := profilerFromEnv()
	if err != nil {
		return out, err
	}
	// Each endpoint runs with the access log (as shipped: the published figure), then without
	// it, back to back, so that the log's cost is measured in the same run.
	measure := func(name, method, url string) (wrkResult, float64, runStats, error) {
		b.logf("wrk: %s %s, %d threads, %d connections, %d s", method, url, loadThreads, loadConns, loadSeconds)
		stopProf, err := prof.start(name)
		if err != nil {
			return wrkResult{}, 0, runStats{}, err
		}
		srv0, ok0 := b.readServerCounters(ctx, slug)
		cpu0, snap0 := processCPU(), snapshotRun(apiPool)
		w, err := b.runWrk(ctx, wrk, method, url, token, loadSeconds)
		cpu, rs := processCPU()-cpu0, snapshotRun(apiPool).since(snap0)
		if srv1, ok1 := b.readServerCounters(ctx, slug); ok0 && ok1 {
			rs.serverOK = true
			rs.server = serverCounters{checkpoints: srv1.checkpoints - srv0.checkpoints,
				walSyncs: srv1.walSyncs - srv0.walSyncs, autovacuums: srv1.autovacuums - srv0.autovacuums}
		}
		if perr := stopProf(); perr != nil && err == nil {
			err = fmt.Errorf("profile: %w", perr)
		}
		if err != nil {
			return w, 0, rs, fmt.Errorf("wrk %s: %w", name, err)
		}
		// The API's own CPU per request: less swayed than the rate by what else the machine runs.
		cpuPerReq := float64(cpu.Microseconds()) / float64(w.Requests)
		b.logf("wrk %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx, %d socket errors; %.0f µs of erpbench CPU per request",
			name, w.rate(), w.P50/1000, w.P99/1000, w.Non2xx, w.SocketErrors, cpuPerReq)
		b.logf("wrk %s: %s", name, rs)
		return w, cpuPerReq, rs, nil
	}
	var oneRate float64
	for _, e := range endpoints {
		w, cpuPerReq, st, err := measure(e.name, e.method, e.url)
		if err != nil {
			return out, err
		}
		if e.name == "GET one" {
			oneRate = w.rate()
		}
		var bare wrkResult
		bareCPU := 0.0
		if alog != nil {
			alog.set(false)
			bare, bareCPU, _, err = measure(e.name+", no access log", e.method, e.url)
			alog.set(true)
			if err != nil {
				return out, err
			}
		}
		clean := w.Non2xx == 0 && w.SocketErrors == 0

		tp := result{Name: "API " + e.name + ": throughput", Tenants: len(b.slugs), Unit: "req/s", Samples: 1, Median: ptr(w.rate())}
		if pgErr == nil {
			tp.setBaseline(*pg.Median, "pgbench -S -M prepared TPS on the same server", true)
		}
		tp.Extra = map[string]float64{"requests": float64(w.Requests), "non_2xx": float64(w.Non2xx), "socket_errors": float64(w.SocketErrors),
			"cpu_us_per_request": cpuPerReq}
		if alog != nil {
			tp.Extra["no_access_log_req_s"] = bare.rate()
			tp.Extra["no_access_log_cpu_us_per_request"] = bareCPU
			tp.Extra["no_access_log_p99_ms"] = bare.P99 / 1000
			tp.addNote("with the access log; without it, right after: %.0f req/s (%+.1f%%), %.0f µs CPU per request, p99 %.2f ms",
				bare.rate(), (w.rate()/bare.rate()-1)*100, bareCPU, bare.P99/1000)
		}
		switch {
		case e.minRate > 0:
			tp.setPass(fmt.Sprintf("≥ %s req/s, no errors", formatThousands(int64(e.minRate))), w.rate() >= e.minRate && clean)
		case pgErr == nil:
			tp.setPass(fmt.Sprintf("≥ %.0f%% of pgbench -S TPS, no errors", e.minShare*100), w.rate() >= e.minShare*(*pg.Median) && clean)
		}
		if e.name == "GET one" && floorErr == nil {
			share := w.rate() / floor
			tp.Extra["share_of_go_floor"] = share
			tp.addNote("%.0f%% of the Go floor (%.0f req/s) in the same run", share*100, floor)
			if tp.Pass != nil {
				tp.setPass(tp.Target+fmt.Sprintf(", ≥ %.0f%% of the Go floor", minFloorShare*100), *tp.Pass && share >= minFloorShare)
			}
		}
		tp.addNote("wrk -t%d -c%d -d%ds, one run, %s, pool of %d connections; %d requests, %d non-2xx/3xx, %d socket errors; "+
			"%.0f µs of the erpbench process's CPU (user and system: the API, its pool, the kernel's side of its sockets) per request",
			loadThreads, loadConns, loadSeconds, how, b.p.Pool().Config().MaxConns, w.Requests, w.Non2xx, w.SocketErrors, cpuPerReq)

		lat := result{Name: "API " + e.name + ": latency", Tenants: len(b.slugs), Unit: "ms", Samples: int(w.Requests),
			Median: ptr(w.P50 / 1000), P95: ptr(w.P95 / 1000)}
		lat.Extra = map[string]float64{"p99_ms": w.P99 / 1000, "max_ms": w.Max / 1000}
		lat.setPass(fmt.Sprintf("p99 < %d ms", p99TargetMS), w.P99/1000 < p99TargetMS)
		lat.addNote("p99 %.2f ms, max %.1f ms; in the erpbench process: %s", w.P99/1000, w.Max/1000, st)
		rs = append(rs, tp, lat)
		if e.method == "POST" {
			rs = append(rs, b.writeFloorResults(ctx, slug, syncOff, w)...)
		}
		if e.name == "GET one" {
			sr, err := b.spreadResult(ctx, wrk, base, alog, oneRate, how)
			if err != nil {
				return out, err
			}
			rs = append(rs, sr)
		}
	}
	return append(out, rs...), nil
}

// spreadResult loads GET one spread over many tenants on the daemon at base, in turns with GET
// one on one tenant, with the access log, then the spread without it. oneRate is GET one's rate
// measured before, for comparison.
func (b *bench) spreadResult(ctx context.Context, wrk, base string, alog *accessLog, oneRate float64, how string) (result, error) {
	n, err := b.spreadSize()
	if err != nil {
		return result{}, err
	}
	r := result{Name: fmt.Sprintf("API GET one spread over %d tenants: throughput", n), Tenants: len(b.slugs), Unit: "req/s", Samples: 1}
	targets, err := b.prepareSpread(ctx, n)
	if err != nil {
		return r, err
	}
	// Autovacuum's workers count among the server's backends (their CPU would be the requests').
	if err := b.settleServer(ctx); err != nil {
		return r, err
	}
	b.logf("wrk: GET one spread over %d tenants, a warm-up until the rate is steady, then %d s", n, loadSeconds)
	warm, rates, err := warmSpread(func(seconds int) (wrkResult, error) {
		w, err := b.runWrkSpread(ctx, wrk, base, targets, seconds)
		if err == nil {
			b.logf("wrk spread warm-up, %d s: %.0f req/s", seconds, w.rate())
		}
		return w, err
	})
	if err != nil {
		return r, fmt.Errorf("wrk spread warm-up: %w", err)
	}
	prof, err := profilerFromEnv()
	if err != nil {
		return r, err
	}
	// The spread and GET one on one tenant (the spread's first, through the same wrk script)
	// take turns, so that the share compares rates measured side by side: beside this bench the
	// machine's speed changes by up to 2x from one minute to the next, and the GET one of the
	// endpoints above ran minutes earlier, before the spread's tokens and warm-up.
	var spreadRuns, oneRuns []spreadRound
	for i := range spreadRounds {
		var stopProf func() error
		if i == 0 {
			if stopProf, err = prof.start("GET one spread"); err != nil {
				return r, err
			}
		}
		s, err := b.spreadRound(ctx, wrk, base, targets, loadSeconds, "")
		if stopProf != nil {
			if perr := stopProf(); perr != nil && err == nil {
				err = fmt.Errorf("profile: %w", perr)
			}
		}
		if err != nil {
			return r, fmt.Errorf("wrk spread: %w", err)
		}
		o, err := b.spreadRound(ctx, wrk, base, targets[:1], loadSeconds, "")
		if err != nil {
			return r, fmt.Errorf("wrk one tenant, between the spread's rounds: %w", err)
		}
		b.logf("wrk spread, round %d: %s; one tenant: %s", i+1, s, o)
		spreadRuns, oneRuns = append(spreadRuns, s), append(oneRuns, o)
	}
	spreadRate, oneSide := medianRound(spreadRuns, spreadRound.rate), medianRound(oneRuns, spreadRound.rate)
	var requests, non2xx, sockErr int64 // the spread's requests; the errors of both
	for _, s := range spreadRuns {
		requests += s.w.Requests
	}
	for _, s := range append(slices.Clone(spreadRuns), oneRuns...) {
		non2xx, sockErr = non2xx+s.w.Non2xx, sockErr+s.w.SocketErrors
	}
	b.logf("wrk spread: %.0f req/s against %.0f on one tenant, medians of %d rounds (GET one earlier: %.0f req/s)",
		spreadRate, oneSide, spreadRounds, oneRate)
	r.Median, r.Samples = ptr(spreadRate), spreadRounds
	r.setBaseline(oneSide, "GET one on one tenant, in turns with the spread", true)
	r.Extra = map[string]float64{"requests": float64(requests), "non_2xx": float64(non2xx), "socket_errors": float64(sockErr),
		"p99_ms":                               medianRound(spreadRuns, func(s spreadRound) float64 { return s.w.P99 / 1000 }),
		"cpu_us_per_request":                   medianRound(spreadRuns, func(s spreadRound) float64 { return s.own }),
		"server_cpu_us_per_request":            medianRound(spreadRuns, func(s spreadRound) float64 { return s.server }),
		"one_tenant_req_s":                     oneSide,
		"one_tenant_cpu_us_per_request":        medianRound(oneRuns, func(s spreadRound) float64 { return s.own }),
		"one_tenant_server_cpu_us_per_request": medianRound(oneRuns, func(s spreadRound) float64 { return s.server }),
		"earlier_one_tenant_req_s":             oneRate, "earlier_share": spreadRate / oneRate,
		"tenants_spread": float64(n), "warmup_s": float64(warm), "first_warmup_req_s": rates[0]}
	r.addNote("%d rounds of %d s each, spread then one tenant: spread %v req/s, one tenant %v; CPU a request, medians: "+
		"erpbench's %.0f µs spread against %.0f one tenant, the server's backends' %.0f µs against %.0f",
		spreadRounds, loadSeconds, roundAll(roundRates(spreadRuns)), roundAll(roundRates(oneRuns)),
		r.Extra["cpu_us_per_request"], r.Extra["one_tenant_cpu_us_per_request"],
		r.Extra["server_cpu_us_per_request"], r.Extra["one_tenant_server_cpu_us_per_request"])
	r.addNote("against GET one measured earlier in the run (%.0f req/s): %.0f%%", oneRate, spreadRate/oneRate*100)
	// What the API's backends (application_name erpctl, as the control plane's) keep of the
	// tenants they served: the cost --api-conn-tenants bounds.
	if total, largest, ok := b.backendMemory(ctx, "erpctl"); ok {
		r.Extra["backends_rss_anon_mb"], r.Extra["largest_backend_rss_anon_mb"] = total, largest
		replaced := "no count of the connections replaced for it"
		if db, err := b.p.APIDB(ctx); err == nil {
			if rp, ok := db.(interface{ Retired() int64 }); ok {
				n := rp.Retired()
				r.Extra["connections_replaced"] = float64(n)
				replaced = fmt.Sprintf("%d connections replaced for it so far", n)
			}
		}
		r.addNote("erpctl's backends hold %.0f MB of private memory after the spread, the largest %.0f MB (--api-conn-tenants %s; %s)",
			total, largest, connTenantsNote(b.apiConnTenants), replaced)
	}
	if alog != nil {
		alog.set(false)
		bare, err := b.runWrkSpread(ctx, wrk, base, targets, loadSeconds)
		alog.set(true)
		if err != nil {
			return r, fmt.Errorf("wrk spread, no access log: %w", err)
		}
		r.Extra["no_access_log_req_s"] = bare.rate()
		r.addNote("without the access log, right after: %.0f req/s", bare.rate())
	}
	r.setPass("≥ 80% of GET one on one tenant, no errors", spreadRate >= 0.8*oneSide && non2xx == 0 && sockErr == 0)
	r.addNote("each request for the next of %d tenants (each its own token), %s; the first %d s of it: %.0f%% of one tenant's rate; wrk -t%d -c%d -d%ds; %s",
		n, warmNote(warm, rates), spreadWarmup, rates[0]/oneSide*100, loadThreads, loadConns, loadSeconds, how)
	return r, nil
}

// writeFloorResults measures the database's own write floor right after POST: pgbench's insert
// with each commit waiting for its WAL flush (as POST's), then without the wait.
func (b *bench) writeFloorResults(ctx context.Context, slug string, syncOff bool, post wrkResult) []result {
	name := "pgbench insert (write floor)"
	b.logf("%s: pgbench -f insert.sql -M prepared -c %d -j %d -T %d", name, loadConns, loadThreads, loadSeconds)
	on, err := b.pgbenchInsert(ctx, slug, "-c synchronous_commit=on")
	if err != nil {
		return []result{{Name: name, Tenants: len(b.slugs), Skipped: err.Error()}}
	}
	b.logf("%s: %.0f TPS, p50 %.2f ms, p99 %.2f ms", name, on.tps, on.p50, on.p99)
	off, err := b.pgbenchInsert(ctx, slug, "-c synchronous_commit=off")
	if err != nil {
		return []result{{Name: name, Tenants: len(b.slugs), Skipped: err.Error()}}
	}
	b.logf("%s, synchronous_commit off: %.0f TPS, p50 %.2f ms, p99 %.2f ms", name, off.tps, off.p50, off.p99)
	r := result{Name: name + ": latency", Tenants: len(b.slugs), Unit: "ms", Samples: on.txs, Median: ptr(on.p50)}
	r.Extra = map[string]float64{"p99_ms": on.p99, "tps": on.tps, "sync_off_p99_ms": off.p99, "sync_off_tps": off.tps}
	r.addNote("pgbench -n -M prepared -c %d -j %d -T %d, one INSERT of a product per transaction into the tenant's table, "+
		"right after POST: %.0f TPS, p99 %.2f ms (POST's %.2f ms); with synchronous_commit off: %.0f TPS, p99 %.2f ms",
		loadConns, loadThreads, loadSeconds, on.tps, on.p99, post.P99/1000, off.tps, off.p99)
	if syncOff {
		r.addNote("BENCH_SYNC_COMMIT=off: the API's POST ran with synchronous_commit off for this database")
	}
	return []result{r}
}

// dbName is the bench database's name.
func (b *bench) dbName(ctx context.Context) string {
	var name string
	_ = b.db.QueryRowContext(ctx, "SELECT current_database()").Scan(&name)
	return name
}

// connTenantsNote is BENCH_API_CONN_TENANTS as the note says it.
func connTenantsNote(n int) string {
	switch {
	case n == 0:
		return fmt.Sprintf("%d, erpctl's default", controlplane.DefaultAPIConnTenants)
	case n < 0:
		return "0, no bound"
	}
	return strconv.Itoa(n)
}

// serveAPI runs the daemon in-process and returns its base URL. When the daemon scenario found
// the daemon unusable, the data API is served on a listener of its own (how says which).
func (b *bench) serveAPI(ctx context.Context) (base, how string, alog *accessLog, stop func(), err error) {
	if b.daemonBroken != "" {
		base, stop, err := serveHandler(b.p)
		return base, "the data API on a listener of its own, not the in-process daemon, without an access log: the erpctl daemon is not usable (" +
			b.daemonBroken + ")", nil, stop, err
	}
	alog, err = openAccessLog(b.tmp)
	if err != nil {
		return "", "", nil, nil, err
	}
	base, stopDaemon, err := b.serveDaemon(ctx, daemon.ServerConfig{ConnTenants: b.apiConnTenants}, alog.log)
	if err != nil {
		alog.close()
		return "", "", nil, nil, err
	}
	stop = func() {
		stopDaemon()
		alog.close()
	}
	how = "API served by the in-process daemon (daemon.Run), access log as JSON lines to a file, as the erpctl daemon writes to a non-terminal stderr"
	return base, how, alog, stop, nil
}

// serveHandler serves the data API of p on a listener of its own.
func serveHandler(p *controlplane.Plane) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	db, err := p.APIDB(context.Background())
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	h := api.New(api.Config{Plane: p, DB: db})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// probe checks that GET url answers 200 with the token.
func probe(ctx context.Context, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// getOneTarget is what GET one loads: the first tenant, with products seeded, the id of one of
// them, and a new token named name.
func (b *bench) getOneTarget(ctx context.Context, name string) (slug string, id int64, token string, err error) {
	slug = b.slugs[0]
	if id, err = b.seedProducts(ctx, slug); err != nil {
		return "", 0, "", err
	}
	_, token, err = b.p.CreateToken(ctx, ident.MustParseSlug(slug), name)
	return slug, id, token, err
}

// seedProducts inserts apiSeedProducts products into the tenant and returns the id of one in the
// middle.
func (b *bench) seedProducts(ctx context.Context, slug string) (int64, error) {
	t := ident.Quote(ident.SchemaName(slug), "products")
	if _, err := b.db.ExecContext(ctx, `INSERT INTO `+t+` (sku, name, price)
		SELECT 'seed-' || g, 'Seed product ' || g, g % 100 + 0.5 FROM generate_series(1, $1) g
		ON CONFLICT DO NOTHING`, apiSeedProducts); err != nil {
		return 0, fmt.Errorf("seed products of %s: %w", slug, err)
	}
	var id int64
	err := b.db.QueryRowContext(ctx, `SELECT id FROM `+t+` ORDER BY id OFFSET $1 LIMIT 1`, apiSeedProducts/2).Scan(&id)
	return id, err
}

// findWrk returns the path of wrk, installing the Debian package when it is missing and erpbench
// runs as root.
func findWrk(ctx context.Context, b *bench) (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("wrk is not installed (apt-get install wrk, as root)")
	}
	b.logf("installing wrk: apt-get install -y wrk")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "wrk")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("wrk is not installed and apt-get install -y wrk failed: %v: %s", err, firstLines(lastLines(string(out), 2), 2))
	}
	return exec.LookPath("wrk")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// wrkResult is what the Lua done() callback reports; times in microseconds.
type wrkResult struct {
	Requests     int64   `json:"requests"`
	DurationUS   float64 `json:"duration_us"`
	P50          float64 `json:"p50_us"`
	P95          float64 `json:"p95_us"`
	P99          float64 `json:"p99_us"`
	Max          float64 `json:"max_us"`
	Non2xx       int64   `json:"non_2xx"`
	SocketErrors int64   `json:"socket_errors"`
}

func (w wrkResult) rate() float64 { return float64(w.Requests) / (w.DurationUS / 1e6) }

// wrkScript is the Lua script of one wrk run: the token, a body with a unique sku per POST, and
// a done() that prints the figures as one JSON line.
func wrkScript(method, token, skuPrefix string) string {
	s := fmt.Sprintf("wrk.method = %q\nwrk.headers[\"Authorization\"] = \"Bearer \" .. %q\n", method, token)
	if method == "POST" {
		s += fmt.Sprintf(`wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"sku":"%s-%%d-%%d","name":"Bench product %%d","price":"9.50"}', tid, n, n))
end
`, skuPrefix)
	}
	return s + wrkDone
}

// wrkDone is the done() of every wrk script: the figures as one JSON line.
const wrkDone = `function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)), math.floor(latency:percentile(95)),
    math.floor(latency:percentile(99)), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
`

var benchJSONRE = regexp.MustCompile(`(?m)^BENCHJSON (\{.*\})$`)

func (b *bench) runWrk(ctx context.Context, wrk, method, url, token string, seconds int) (wrkResult, error) {
	script := filepath.Join(b.tmp, "wrk-"+strings.ToLower(method)+".lua")
	if err := os.WriteFile(script, []byte(wrkScript(method, token, "wrk"+randomHex(4))), 0o600); err != nil {
		return wrkResult{}, err
	}
	return b.runWrkScript(ctx, wrk, script, url, seconds)
}

// runWrkScript runs wrk with a script of its own (ending in wrkDone) against url.
func (b *bench) runWrkScript(ctx context.Context, wrk, script, url string, seconds int) (wrkResult, error) {
	cmd := exec.CommandContext(ctx, wrk, "-t"+strconv.Itoa(loadThreads), "-c"+strconv.Itoa(loadConns),
		"-d"+strconv.Itoa(seconds)+"s", "--latency", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%w: %s", err, lastLines(string(out), 3))
	}
	m := benchJSONRE.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no figures in its output: %s", lastLines(string(out), 3))
	}
	var w wrkResult
	if err := json.Unmarshal(m[1], &w); err != nil {
		return w, err
	}
	if w.Requests == 0 || w.DurationUS == 0 {
		return w, fmt.Errorf("no requests completed: %s", lastLines(string(out), 3))
	}
	return w, nil
}

// pgbench runs pgbench -S -M prepared against a database of its own on the bench server.
func (b *bench) pgbench(ctx context.Context) (result, error) {
	r := result{Name: "pgbench -S (baseline)", Tenants: len(b.slugs), Unit: "TPS", Samples: 1}
	bin, err := findPgbench()
	if err != nil {
		return r, err
	}
	u, drop, err := b.createDatabase(ctx, "erpbench_pgbench")
	if err != nil {
		return r, err
	}
	defer drop()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return r, err
	}
	env := append(os.Environ(), "PGHOST="+cfg.Host, "PGPORT="+strconv.Itoa(int(cfg.Port)), "PGUSER="+cfg.User,
		"PGPASSWORD="+cfg.Password, "PGDATABASE="+cfg.Database, "PGSSLMODE=disable")
	b.logf("pgbench -i -s 10")
	cmd := exec.CommandContext(ctx, bin, "-i", "-s", "10", "-q")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return r, fmt.Errorf("pgbench -i: %w: %s", err, lastLines(string(out), 3))
	}
	b.logf("pgbench -S -M prepared -c %d -j %d -T %d", loadConns, loadThreads, loadSeconds)
	cmd = exec.CommandContext(ctx, bin, "-S", "-M", "prepared", "-c", strconv.Itoa(loadConns), "-j", strconv.Itoa(loadThreads),
		"-T", strconv.Itoa(loadSeconds))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("pgbench -S: %w: %s", err, lastLines(string(out), 3))
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("pgbench -S: no tps in its output: %s", lastLines(string(out), 3))
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return r, err
	}
	if lat := regexp.MustCompile(`latency average = ([0-9.]+) ms`).FindSubmatch(out); lat != nil {
		if v, err := strconv.ParseFloat(string(lat[1]), 64); err == nil {
			r.Extra = map[string]float64{"latency_avg_ms": v}
		}
	}
	r.Median = ptr(tps)
	r.addNote("pgbench -S -M prepared -c %d -j %d -T %d, scale 10, in a database of its own on the same server", loadConns, loadThreads, loadSeconds)
	b.logf("pgbench: %.0f TPS", tps)
	return r, nil
}

// findPgbench looks on PATH, then in the newest /usr/lib/postgresql/*/bin.
func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	best, bestMajor := "", -1
	for _, d := range dirs {
		major, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(d))))
		if err == nil && major > bestMajor {
			best, bestMajor = d, major
		}
	}
	if best == "" {
		return "", errors.New("pgbench not found on PATH or in /usr/lib/postgresql/*/bin")
	}
	return best, nil
}

// minFloorShare is the share of the Go floor's GET one that erpctl's GET one must reach.
const minFloorShare = 0.70

// floorRate serves the Go floor and loads its GET one with wrk as erpctl's is loaded.
func (b *bench) floorRate(ctx context.Context, wrk, slug string, id int64, token string) (float64, error) {
	base, stop, err := b.serveFloor(ctx, slug)
	if err != nil {
		return 0, err
	}
	defer stop()
	url := base + "/floor/" + strconv.FormatInt(id, 10) + "/"
	if err := probe(ctx, url, token); err != nil {
		return 0, err
	}
	if _, err := b.runWrk(ctx, wrk, "GET", url, token, 2); err != nil {
		return 0, err
	}
	w, err := b.runWrk(ctx, wrk, "GET", url, token, loadSeconds)
	if err != nil {
		return 0, err
	}
	if w.Non2xx != 0 || w.SocketErrors != 0 {
		return 0, fmt.Errorf("the Go floor answered %d non-2xx, %d socket errors", w.Non2xx, w.SocketErrors)
	}
	b.logf("Go floor GET one: %.0f req/s, p99 %.2f ms", w.rate(), w.P99/1000)
	return w.rate(), nil
}

// spreadRounds is how many times the spread and one tenant take turns.
const spreadRounds = 3

// spreadRound is one wrk run of the spread (or of one tenant) with the CPU a request cost, in µs:
// the erpbench process's (the API) and the server's backends'.
type spreadRound struct {
	w           wrkResult
	own, server float64
}

func (s spreadRound) rate() float64 { return s.w.rate() }

func (s spreadRound) String() string {
	return fmt.Sprintf("%.0f req/s, p99 %.2f ms, %d non-2xx, %d socket errors, CPU a request %.0f µs erpbench's, %.0f µs the server's",
		s.rate(), s.w.P99/1000, s.w.Non2xx, s.w.SocketErrors, s.own, s.server)
}

// spreadRound loads targets for seconds, counting the CPU of the server's backends with
// application_name app ("": every backend).
func (b *bench) spreadRound(ctx context.Context, wrk, base string, targets []spreadTarget, seconds int, app string) (spreadRound, error) {
	cpu0, srv0 := processCPU(), b.backendCPU(ctx, app)
	w, err := b.runWrkSpread(ctx, wrk, base, targets, seconds)
	cpu, srv := processCPU()-cpu0, b.backendCPU(ctx, app).since(srv0)
	if err != nil {
		return spreadRound{w: w}, err
	}
	n := float64(max(w.Requests, 1))
	return spreadRound{w: w, own: float64(cpu.Microseconds()) / n, server: float64(srv.Microseconds()) / n}, nil
}

func roundRates(rs []spreadRound) []float64 {
	out := make([]float64, len(rs))
	for i, s := range rs {
		out[i] = s.rate()
	}
	return out
}

// medianRound is the median of f over the rounds.
func medianRound(rs []spreadRound, f func(spreadRound) float64) float64 {
	xs := make([]float64, len(rs))
	for i, s := range rs {
		xs[i] = f(s)
	}
	return medianOf(xs)
}
