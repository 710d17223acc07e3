package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The attacks of issue 30 against `erpctl daemon` with its defaults, while the tenant "victim"
// reads one product every 50 ms: 20 heavy searches, 20 slow readers of big pages, and idle
// keep-alive connections that fill the connection cap. Each runs against the erpctl built from
// this tree ("after") and, with BENCH_BEFORE, against an earlier one ("before"), each in a
// database of its own. Also measured: the daemon's peak RSS while 8 clients read pages of 30 rows
// of 900 KB at once.
//
//	BENCH_BEFORE          an erpctl binary, or a git revision of this repository to build one from
//	                      (e.g. the commit before the fairness work); unset: "after" only
//	BENCH_NOISY_SECONDS   how long each attack runs (default 20)
//	BENCH_NOISY_IDLE      idle connections of the third attack (default 1000); the daemon runs
//	                      with a file limit of 6/5 of it (at least 1024), so that its connection
//	                      cap, three quarters of that, is 9/10 of the idle connections
//	BENCH_NOISY_ROWS      rows of 900 KB the attacker's searches scan (default 20)

const (
	noisyRowSize   = 900_000
	noisyAttackers = 20
	noisyEvery     = 50 * time.Millisecond
	noisyTimeout   = 60 * time.Second // a victim's request that waits longer counts as failed
	noisySearch    = "search=0+1+2+3+4+5+6+7+8+9+a+b+c+d+e+f+0+1+2+3+4+5+6+7+8+9+a+b+c+d+e+f"
)

type noisyConfig struct {
	seconds, idle, rows int
}

// fileLimit is the daemon's: its connection cap is three quarters of it.
func (c noisyConfig) fileLimit() int { return max(1024, c.idle*6/5) }

func noisyConfigFromEnv() (noisyConfig, error) {
	c := noisyConfig{seconds: 20, idle: 1000, rows: 20}
	for name, v := range map[string]*int{"BENCH_NOISY_SECONDS": &c.seconds, "BENCH_NOISY_IDLE": &c.idle, "BENCH_NOISY_ROWS": &c.rows} {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 100000 {
				return c, fmt.Errorf("%s=%q: want a whole number from 1 to 100000", name, s)
			}
			*v = n
		}
	}
	return c, nil
}

// noisy runs the attacks against each build.
func (b *bench) noisy(ctx context.Context) ([]result, error) {
	cfg, err := noisyConfigFromEnv()
	if err != nil {
		return nil, err
	}
	names := []string{"attack: 20 heavy searches", "attack: 20 slow readers", "attack: idle connections", "8 pages of 30 rows of 900 KB"}
	if b.erpctl == "" {
		return skipped(names, 2, fmt.Sprintf("cmd/erpctl does not build: %v", b.erpctlErr)), nil
	}
	builds := []struct{ label, bin string }{{"after", b.erpctl}}
	if before := os.Getenv("BENCH_BEFORE"); before != "" {
		bin, err := b.beforeBinary(ctx, before)
		if err != nil {
			return nil, fmt.Errorf("BENCH_BEFORE=%s: %w", before, err)
		}
		builds = append([]struct{ label, bin string }{{"before", bin}}, builds...)
	}
	figures := map[string]map[string]noisyFigure{} // attack → build → figure
	for _, bd := range builds {
		b.logf("noisy neighbours: the %s build (%s)", bd.label, bd.bin)
		fs, err := b.noisyRun(ctx, bd.bin, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bd.label, err)
		}
		for attack, f := range fs {
			if figures[attack] == nil {
				figures[attack] = map[string]noisyFigure{}
			}
			figures[attack][bd.label] = f
		}
	}
	var out []result
	for _, name := range names {
		after, ok := figures[name]["after"]
		if !ok {
			continue
		}
		r := result{Name: name, Tenants: 2, Unit: after.unit, Samples: after.samples, Median: ptr(after.p50), Extra: after.extra}
		r.addNote("%s", after.note)
		if before, ok := figures[name]["before"]; ok {
			r.Baseline, r.BaselineOf = ptr(before.p50), "the build of BENCH_BEFORE, same attack"
			for k, v := range before.extra {
				r.Extra["before_"+k] = v
			}
			r.addNote("before: %s", before.note)
		}
		if after.target != "" {
			r.setPass(after.target, after.pass)
		}
		out = append(out, r)
	}
	return out, nil
}

// noisyFigure is what one attack measured on one build.
type noisyFigure struct {
	unit         string
	p50          float64
	samples      int
	extra        map[string]float64
	note, target string
	pass         bool
}

// beforeBinary is BENCH_BEFORE's erpctl: the file it names, or one built from that revision.
func (b *bench) beforeBinary(ctx context.Context, before string) (string, error) {
	if st, err := os.Stat(before); err == nil && !st.IsDir() {
		return before, nil
	}
	dir := filepath.Join(b.tmp, "before")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b.logf("building erpctl at %s", before)
	cmd := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", before, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive: %w: %s", err, firstLines(string(out), 3))
	}
	bin := filepath.Join(dir, "erpctl-before")
	cmd = exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/erpctl")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, firstLines(string(out), 3))
	}
	return bin, nil
}

// noisyTenants are what one build's database holds: the victim's product and the tokens.
type noisyTenants struct {
	base, victimToken, attackerToken string
	victimID                         int64
}

// noisyRun sets up a database for bin, runs its daemon and the attacks one after the other.
func (b *bench) noisyRun(ctx context.Context, bin string, cfg noisyConfig) (map[string]noisyFigure, error) {
	u, drop, err := b.createDatabase(ctx, "erpbench_noisy")
	if err != nil {
		return nil, err
	}
	defer drop()
	erp := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--database-url", u}, args...)...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		out, err := cmd.Output()
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return out, fmt.Errorf("erpctl %s: %w: %s", strings.Join(args, " "), err, firstLines(string(ee.Stderr), 2))
		}
		return out, err
	}
	nt := noisyTenants{}
	for _, slug := range []string{"victim", "attacker"} {
		if _, err := erp("tenant", "create", slug); err != nil {
			return nil, err
		}
		out, err := erp("-o", "json", "token", "create", slug, "--name", "bench")
		if err != nil {
			return nil, err
		}
		var tok struct{ Token string }
		if err := json.Unmarshal(out, &tok); err != nil {
			return nil, fmt.Errorf("token create: %w", err)
		}
		if slug == "victim" {
			nt.victimToken = tok.Token
		} else {
			nt.attackerToken = tok.Token
		}
	}
	b.logf("seeding the attacker: %d categories and 30 products of %d KB", cfg.rows, noisyRowSize/1000)
	if err := execOn(ctx, u, fmt.Sprintf(`INSERT INTO tenant_attacker.categories (name, description)
		SELECT 'big-' || g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, %d) i) FROM generate_series(1, %d) g`,
		noisyRowSize/32, cfg.rows)); err != nil {
		return nil, err
	}
	if err := execOn(ctx, u, fmt.Sprintf(`INSERT INTO tenant_attacker.products (sku, name, description)
		SELECT 'big-' || g, 'Big ' || g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, %d) i) FROM generate_series(1, 30) g`,
		noisyRowSize/32)); err != nil {
		return nil, err
	}
	if err := execOn(ctx, u, `INSERT INTO tenant_victim.products (sku, name) VALUES ('victim', 'Victim')`); err != nil {
		return nil, err
	}
	nt.victimID = 1

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	nt.base = "http://" + addr
	logPath := filepath.Join(b.tmp, "noisy-daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// The file limit, and so the connection cap, set for the daemon alone.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), "sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, cfg.fileLimit()),
		bin, "--database-url", u, "daemon", "--listen", addr, "--interval", "1h")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	if _, err := waitReady(ctx, nt.base+"/readyz", exited, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("erpctl daemon: %w; its log: %s", err, tail(logPath, 5))
	}
	pid := cmd.Process.Pid
	figs := map[string]noisyFigure{}
	d := time.Duration(cfg.seconds) * time.Second

	// The pages first, so that the daemon's peak RSS is theirs.
	b.settle(ctx, nt)
	figs["8 pages of 30 rows of 900 KB"] = b.bigPages(ctx, nt, d, pid)
	b.settle(ctx, nt)
	figs["attack: 20 heavy searches"] = b.attackSearches(ctx, nt, d)
	b.settle(ctx, nt)
	figs["attack: 20 slow readers"] = b.attackSlowReaders(ctx, nt, d, pid)
	b.settle(ctx, nt)
	figs["attack: idle connections"] = b.attackIdle(ctx, nt, d, cfg.idle, cfg.fileLimit()*3/4, pid)
	return figs, nil
}

// settle waits until the victim's read is quick again (the last attack's requests are over).
func (b *bench) settle(ctx context.Context, nt noisyTenants) {
	client := &http.Client{Timeout: noisyTimeout}
	for start := time.Now(); time.Since(start) < 2*time.Minute && ctx.Err() == nil; {
		t0 := time.Now()
		if code, _ := nt.get(client, "victim", nt.victimURL()); code == 200 && time.Since(t0) < 100*time.Millisecond {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	b.logf("the daemon did not settle within 2 minutes")
}

func (nt noisyTenants) victimURL() string {
	return fmt.Sprintf("%s/api/victim/product/products/%d/", nt.base, nt.victimID)
}

// get sends GET url with tenant's token and reads the whole answer.
func (nt noisyTenants) get(client *http.Client, tenant, url string) (int, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	tok := nt.victimToken
	if tenant == "attacker" {
		tok = nt.attackerToken
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// victimLoad starts a read of the victim's product every 50 ms for d (each on a new connection
// when fresh), and returns once every read has ended: their latencies, sorted, and how many
// failed (not 200, or no answer within noisyTimeout).
func (nt noisyTenants) victimLoad(d time.Duration, fresh bool) (lat []time.Duration, failed int) {
	tr := &http.Transport{DisableKeepAlives: fresh, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: noisyTimeout, Transport: tr}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(noisyEvery)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			code, err := nt.get(client, "victim", nt.victimURL())
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, took)
			if err != nil || code != 200 {
				failed++
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, failed
}

// victimFigure is the victim's latencies as an attack's figure: p50, with p99 and max beside it.
func victimFigure(lat []time.Duration, failed int, attack string) noisyFigure {
	f := noisyFigure{unit: "ms", samples: len(lat), extra: map[string]float64{"failed": float64(failed)}}
	if len(lat) == 0 {
		f.note = "no reads of the victim"
		return f
	}
	p99, worst := lat[len(lat)*99/100], lat[len(lat)-1]
	f.p50 = inUnit(lat[len(lat)/2], "ms")
	f.extra["p99_ms"], f.extra["max_ms"] = inUnit(p99, "ms"), inUnit(worst, "ms")
	f.target, f.pass = "victim p99 < 200 ms, no failed read", p99 < 200*time.Millisecond && failed == 0
	f.note = fmt.Sprintf("the victim's GET of one row every 50 ms during %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d of %d failed",
		attack, f.p50, f.extra["p99_ms"], f.extra["max_ms"], failed, len(lat))
	return f
}

// attackSearches: 20 clients of the attacker search every row of large text, over and over.
func (b *bench) attackSearches(ctx context.Context, nt noisyTenants, d time.Duration) noisyFigure {
	b.logf("attack: %d parallel searches for %s", noisyAttackers, d)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	client := &http.Client{Timeout: 5 * time.Minute}
	for range noisyAttackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, _ := nt.get(client, "attacker", nt.base+"/api/attacker/product/categories/?"+noisySearch)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second) // the searches take the pool first
	lat, failed := nt.victimLoad(d, false)
	close(stop)
	f := victimFigure(lat, failed, fmt.Sprintf("%d parallel searches of 32 words over the attacker's rows of 900 KB", noisyAttackers))
	mu.Lock()
	f.note += fmt.Sprintf("; the searches were answered %s (their last ones end in the background)", codeCounts(codes))
	mu.Unlock()
	return f
}

// attackSlowReaders: 20 sockets with a 4 KB receive buffer ask for a page of 1000 large rows and
// never read.
func (b *bench) attackSlowReaders(ctx context.Context, nt noisyTenants, d time.Duration, pid int) noisyFigure {
	b.logf("attack: %d slow readers for %s", noisyAttackers, d)
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	addr := strings.TrimPrefix(nt.base, "http://")
	var conns []net.Conn
	for range noisyAttackers {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/attacker/product/products/?page_size=1000 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, nt.attackerToken)
	}
	time.Sleep(time.Second)
	lat, failed := nt.victimLoad(d, false)
	rss, _, _ := procMemory(pid)
	for _, c := range conns {
		c.Close()
	}
	f := victimFigure(lat, failed, fmt.Sprintf("%d sockets with a 4 KB receive buffer that asked for a page of 30 rows of 900 KB and never read", len(conns)))
	f.extra["daemon_rss_mb"] = rss
	f.note += fmt.Sprintf("; daemon RSS %.0f MB at the end", rss)
	return f
}

// attackIdle: idle keep-alive connections, each having sent one unauthenticated /healthz, fill
// the connection cap; the victim's reads come on new connections, as new clients' do.
func (b *bench) attackIdle(ctx context.Context, nt noisyTenants, d time.Duration, n, connCap, pid int) noisyFigure {
	b.logf("attack: %d idle keep-alive connections for %s", n, d)
	addr := strings.TrimPrefix(nt.base, "http://")
	conns := make([]net.Conn, 0, n)
	var answered int
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	}
	buf := make([]byte, 512)
	for _, c := range conns { // read each answer, where there is one, and keep the connection
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if k, _ := c.Read(buf); k > 0 {
			answered++
		}
		c.SetReadDeadline(time.Time{})
	}
	rss, _, _ := procMemory(pid)
	lat, failed := nt.victimLoad(d, true)
	for _, c := range conns {
		c.Close()
	}
	f := victimFigure(lat, failed, fmt.Sprintf("%d idle keep-alive connections (%d answered) against a connection cap of %d, each read on a new connection",
		len(conns), answered, connCap))
	f.extra["daemon_rss_mb"] = rss
	f.note += fmt.Sprintf("; daemon RSS %.0f MB with the idle connections open", rss)
	return f
}

// bigPages: 8 clients read pages of 30 rows of 900 KB at once, over and over, as fast as they
// can; the figure is the daemon's peak RSS.
func (b *bench) bigPages(ctx context.Context, nt noisyTenants, d time.Duration, pid int) noisyFigure {
	b.logf("8 clients reading pages of 30 rows of 900 KB for %s", d)
	_, hwm0, _ := procMemory(pid)
	var wg sync.WaitGroup
	var mu sync.Mutex
	pages, bad := 0, 0
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	end := time.Now().Add(d)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				code, err := nt.get(client, "attacker", nt.base+"/api/attacker/product/products/?page_size=30")
				mu.Lock()
				if err == nil && code == 200 {
					pages++
				} else {
					bad++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rss, hwm, _ := procMemory(pid)
	f := noisyFigure{unit: "MB", p50: hwm, samples: pages, extra: map[string]float64{"pages": float64(pages), "failed": float64(bad),
		"rss_mb": rss, "peak_before_mb": hwm0, "pages_per_s": float64(pages) / d.Seconds()}}
	f.note = fmt.Sprintf("daemon peak RSS (VmHWM) after 8 clients read pages of 30 rows of 900 KB for %s: %d pages (%.1f/s), %d failed; peak before them %.0f MB",
		d, pages, float64(pages)/d.Seconds(), bad, hwm0)
	return f
}

func codeCounts(codes map[int]int) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		label := strconv.Itoa(c)
		if c == 0 {
			label = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", label, codes[c]))
	}
	return strings.Join(parts, ", ")
}
