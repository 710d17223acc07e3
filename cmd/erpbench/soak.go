package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/erpctl/erpctl/internal/ident"
)

// soakConfig is one soak run: how long, with what traffic, sampled how often.
type soakConfig struct {
	duration, warmup, every time.Duration
	interval                time.Duration // the daemon's --interval: short, so that many passes run
	junk                    bool          // add wrong tokens and unknown tenants to the mix
	workers                 int
}

// soakConfigFromEnv reads SOAK_MINUTES (default def), SOAK_WARMUP_MINUTES (1, or a fifth of a
// shorter run), SOAK_SAMPLE_SECONDS (5) and SOAK_MIX ("full": the mix with junk; "valid").
func soakConfigFromEnv(def float64) (soakConfig, error) {
	c := soakConfig{every: 5 * time.Second, interval: 5 * time.Second, junk: true, workers: 32}
	minutes := def
	if s := os.Getenv("SOAK_MINUTES"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("SOAK_MINUTES=%q: want a number of minutes above 0", s)
		}
		minutes = v
	}
	c.duration = time.Duration(minutes * float64(time.Minute))
	c.warmup = min(time.Minute, c.duration/5)
	if s := os.Getenv("SOAK_WARMUP_MINUTES"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v >= minutes {
			return c, fmt.Errorf("SOAK_WARMUP_MINUTES=%q: want a number of minutes shorter than the run", s)
		}
		c.warmup = time.Duration(v * float64(time.Minute))
	}
	if s := os.Getenv("SOAK_SAMPLE_SECONDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return c, fmt.Errorf("SOAK_SAMPLE_SECONDS=%q: want a whole number of at least 1", s)
		}
		c.every = time.Duration(v) * time.Second
	}
	switch mix := os.Getenv("SOAK_MIX"); mix {
	case "", "full":
	case "valid":
		c.junk = false
	default:
		return c, fmt.Errorf("SOAK_MIX=%q: want full or valid", mix)
	}
	return c, nil
}

// soakSample is one reading of the daemon and the load.
type soakSample struct {
	at                        time.Duration
	rssMB, heapMB             float64
	goroutines, fds, pgConns  int
	passes, requests, badCode int64
	socketErrors              int64
	rate                      float64 // requests per second since the previous sample
}

// soakTargets: RSS growth after the warm-up, and the bound with junk traffic.
const (
	soakGrowthTarget = 0.10
	soakRSSBoundMB   = 150
)

// soak runs the built `erpctl daemon` with a short interval over the fleet, every tenant with
// products and a token, under a steady mix of requests, and samples its memory and resources.
func (b *bench) soak(ctx context.Context, cfg soakConfig) ([]result, bool, error) {
	name := fmt.Sprintf("soak %s, %s traffic", cfg.duration.Round(time.Second), map[bool]string{true: "full", false: "valid"}[cfg.junk])
	r := result{Name: name, Tenants: len(b.slugs), Unit: "% RSS growth"}
	if b.erpctl == "" {
		r.Skipped = fmt.Sprintf("cmd/erpctl does not build: %v", b.erpctlErr)
		return []result{r}, true, nil
	}
	tokens, err := b.soakTenants(ctx)
	if err != nil {
		return nil, false, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(b.tmp, "soak-daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close()
	cmd := b.erpctlCmd(context.WithoutCancel(ctx), "daemon", "--listen", addr, "--interval", cfg.interval.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	base := "http://" + addr
	if _, err := waitReady(ctx, base+"/readyz", exited, 5*time.Minute); err != nil {
		return nil, false, fmt.Errorf("erpctl daemon: %w; its log: %s", err, tail(logPath, 5))
	}

	load := newSoakLoad(base, b.slugs, tokens, cfg)
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range cfg.workers {
		wg.Add(1)
		go func() { defer wg.Done(); load.worker(lctx, uint64(i)) }()
	}
	samples, err := b.sampleSoak(ctx, cmd.Process.Pid, base, load, cfg, exited)
	stopLoad()
	wg.Wait()
	if err != nil {
		return nil, false, fmt.Errorf("soak: %w; the daemon's log: %s", err, tail(logPath, 5))
	}
	printSoak(os.Stderr, samples)
	return soakResults(r, samples, load, cfg)
}

// soakTenants gives every tenant 20 products and a token, and returns the tokens by slug.
func (b *bench) soakTenants(ctx context.Context) (map[string]string, error) {
	tokens := make(map[string]string, len(b.slugs))
	for i, slug := range b.slugs {
		t := ident.Quote(ident.SchemaName(slug), "products")
		if _, err := b.db.ExecContext(ctx, `INSERT INTO `+t+` (sku, name, price)
			SELECT 'soak-' || g, 'Soak product ' || g, g FROM generate_series(1, 20) g`); err != nil {
			return nil, fmt.Errorf("seed products of %s: %w", slug, err)
		}
		_, secret, err := b.p.CreateToken(ctx, ident.MustParseSlug(slug), "soak")
		if err != nil {
			return nil, err
		}
		tokens[slug] = secret
		if (i+1)%max(1, len(b.slugs)/5) == 0 {
			b.logf("soak: %d/%d tenants with products and a token", i+1, len(b.slugs))
		}
	}
	return tokens, nil
}

// soakLoad is the traffic: each worker sends one request after another.
type soakLoad struct {
	base     string
	slugs    []string
	tokens   map[string]string
	junk     bool
	client   *http.Client
	requests atomic.Int64
	badCode  atomic.Int64 // answers other than the one the request should get
	sockErrs atomic.Int64
	lat      latencyHistogram
	badMu    sync.Mutex
	badSeen  string // the first unexpected answer, for the report
}

func newSoakLoad(base string, slugs []string, tokens map[string]string, cfg soakConfig) *soakLoad {
	tr := &http.Transport{MaxIdleConns: cfg.workers, MaxIdleConnsPerHost: cfg.workers,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	return &soakLoad{base: base, slugs: slugs, tokens: tokens, junk: cfg.junk,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// worker sends the mix until ctx ends: 70 % GET one, 10 % GET a page, 10 % POST, and with junk
// 5 % a wrong token and 5 % an unknown tenant (without junk, those become GET one).
func (l *soakLoad) worker(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	for n := 0; ctx.Err() == nil; n++ {
		slug := l.slugs[rng.IntN(len(l.slugs))]
		token := l.tokens[slug]
		path := "/api/" + slug + "/product/products/"
		method, body, want := "GET", "", http.StatusOK
		switch k := rng.IntN(100); {
		case k < 70:
			path += strconv.Itoa(1+rng.IntN(20)) + "/"
		case k < 80:
			path += "?limit=20"
		case k < 90:
			method, want = "POST", http.StatusCreated
			body = fmt.Sprintf(`{"sku": "w%d-%d-%d", "name": "Soak"}`, seed, n, rng.Uint32())
		case k < 95 && l.junk:
			token, want = fmt.Sprintf("erp_junk%016x", rng.Uint64()), http.StatusUnauthorized
		case l.junk:
			path, want = fmt.Sprintf("/api/nobody-%x/product/products/", rng.Uint32()), http.StatusNotFound
		default:
			path += strconv.Itoa(1+rng.IntN(20)) + "/"
		}
		l.send(ctx, method, path, token, body, want)
	}
}

func (l *soakLoad) send(ctx context.Context, method, path, token, body string, want int) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.sockErrs.Add(1)
		}
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	l.lat.add(time.Since(start))
	l.requests.Add(1)
	if resp.StatusCode != want {
		l.badCode.Add(1)
		l.badMu.Lock()
		if l.badSeen == "" {
			l.badSeen = fmt.Sprintf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
		}
		l.badMu.Unlock()
	}
}

// sampleSoak reads the daemon every cfg.every until the run ends.
func (b *bench) sampleSoak(ctx context.Context, pid int, base string, load *soakLoad, cfg soakConfig, exited <-chan error) ([]soakSample, error) {
	start := time.Now()
	tick := time.NewTicker(cfg.every)
	defer tick.Stop()
	var samples []soakSample
	var lastReq int64
	last := start
	for {
		select {
		case <-ctx.Done():
			return samples, ctx.Err()
		case err := <-exited:
			return samples, fmt.Errorf("the daemon exited: %s", exitText(err))
		case now := <-tick.C:
			s := soakSample{at: now.Sub(start)}
			var err error
			if s.rssMB, _, err = procMemory(pid); err != nil {
				return samples, err
			}
			m, err := scrapeMetrics(ctx, base+"/metrics")
			if err != nil {
				return samples, err
			}
			s.heapMB = m["go_memstats_heap_inuse_bytes"] / (1 << 20)
			s.goroutines, s.fds = int(m["go_goroutines"]), int(m["process_open_fds"])
			s.passes = int64(m["erpctl_reconcile_passes_total"])
			if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()`).Scan(&s.pgConns); err != nil {
				return samples, err
			}
			s.requests, s.badCode, s.socketErrors = load.requests.Load(), load.badCode.Load(), load.sockErrs.Load()
			s.rate = float64(s.requests-lastReq) / now.Sub(last).Seconds()
			lastReq, last = s.requests, now
			samples = append(samples, s)
			if s.at >= cfg.duration {
				return samples, nil
			}
		}
	}
}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out, sc.Err()
}

func printSoak(w io.Writer, samples []soakSample) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "t\tRSS MB\theap MB\tgoroutines\tfds\tpg conns\tpasses\trequests\treq/s\tunexpected\tsocket errors\t")
	for _, s := range samples {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t%.0f\t%d\t%d\t\n", s.at.Round(time.Second), s.rssMB, s.heapMB,
			s.goroutines, s.fds, s.pgConns, s.passes, s.requests, s.rate, s.badCode, s.socketErrors)
	}
	tw.Flush()
}

// soakResults turns the samples into the bench's rows; ok is false when memory grew past the
// target (or the bound, with junk).
func soakResults(r result, samples []soakSample, load *soakLoad, cfg soakConfig) ([]result, bool, error) {
	if len(samples) < 2 {
		return nil, false, errors.New("soak: fewer than two samples")
	}
	first := samples[0]
	for _, s := range samples {
		if s.at >= cfg.warmup {
			first = s
			break
		}
	}
	last := samples[len(samples)-1]
	peak := 0.0
	for _, s := range samples {
		peak = max(peak, s.rssMB)
	}
	growth := (last.rssMB - first.rssMB) / first.rssMB
	ok := growth < soakGrowthTarget
	target := fmt.Sprintf("< %.0f %% after the warm-up", soakGrowthTarget*100)
	if cfg.junk {
		ok = ok && peak < soakRSSBoundMB
		target += fmt.Sprintf(", peak < %d MB", soakRSSBoundMB)
	}
	elapsed := (last.at - samples[0].at).Seconds() + cfg.every.Seconds()
	r.Median, r.Samples = ptr(growth*100), len(samples)
	r.setPass(target, ok && last.socketErrors == 0)
	r.Extra = map[string]float64{"rss_start_mb": first.rssMB, "rss_end_mb": last.rssMB, "rss_peak_mb": peak,
		"heap_start_mb": first.heapMB, "heap_end_mb": last.heapMB, "passes": float64(last.passes),
		"requests": float64(last.requests), "req_per_s": float64(last.requests) / elapsed,
		"unexpected_status": float64(last.badCode), "socket_errors": float64(last.socketErrors),
		"p99_ms": load.lat.quantile(0.99) * 1000}
	r.addNote("RSS %.1f → %.1f MB from %s to %s (peak %.1f MB); heap %.1f → %.1f MB; %d passes; %d requests at %.0f req/s, p99 %.1f ms; %d unexpected answers, %d socket errors",
		first.rssMB, last.rssMB, first.at.Round(time.Second), last.at.Round(time.Second), peak, first.heapMB, last.heapMB,
		last.passes, last.requests, float64(last.requests)/elapsed, load.lat.quantile(0.99)*1000, last.badCode, last.socketErrors)
	if load.badSeen != "" {
		r.addNote("first unexpected answer: %s", load.badSeen)
	}
	return []result{r}, ok, nil
}

// latencyHistogram counts durations in buckets 5 % apart, from 10 µs up: enough for a p99 of a
// long run without keeping every sample.
type latencyHistogram struct {
	counts [400]atomic.Int64
}

const latBase, latStep = 10e-6, 1.05

func (h *latencyHistogram) add(d time.Duration) {
	i := 0
	if s := d.Seconds(); s > latBase {
		i = min(len(h.counts)-1, int(math.Log(s/latBase)/math.Log(latStep))+1)
	}
	h.counts[i].Add(1)
}

// quantile is the upper bound, in seconds, of the bucket holding quantile q.
func (h *latencyHistogram) quantile(q float64) float64 {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	want := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= want && seen > 0 {
			return latBase * math.Pow(latStep, float64(i))
		}
	}
	return 0
}
