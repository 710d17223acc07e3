package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/operators"
)

// consoleSamples is how many times each page is fetched.
const consoleSamples = 20

// consoleScenario measures the operator console of the built `erpctl daemon --console-listen`:
// the time to the first byte of its pages over HTTP (beside the catalog queries of a tenants page
// run by hand, its floor), the time to a tenants page rendered by Chromium, and the daemon's
// extra memory while Chromium keeps console pages open (they poll every 2 s) during rollouts
// for BENCH_CONSOLE_MINUTES (default 10 when the scenario is asked for by name, else 1).
func (b *bench) consoleScenario(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	names := []string{"console TTFB: tenants page", "console TTFB: tenants page 2 sorted by name", "console TTFB: tenants filtered",
		"console TTFB: one tenant", "console TTFB: fleet page", "console: tenants page rendered in Chromium", "console: daemon's extra memory, pages open during rollouts"}
	if b.erpctl == "" {
		return skipped(names, n, fmt.Sprintf("cmd/erpctl does not build: %v", b.erpctlErr)), nil
	}
	minutes := 1.0
	if strings.Contains(os.Getenv("BENCH_ONLY"), "console") {
		minutes = 10
	}
	if s := os.Getenv("BENCH_CONSOLE_MINUTES"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("BENCH_CONSOLE_MINUTES=%q: want a number of minutes greater than 0", s)
		}
		minutes = v
	}
	d, err := b.startConsoleDaemon(ctx)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	op, err := b.p.Operators().Create(ctx, "erpbench")
	if err != nil {
		return nil, err
	}
	fetch := func(path string) (time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", d.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+op.Secret)
		var first time.Time
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}))
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", path, res.Status)
		}
		return first.Sub(start), nil
	}
	// The second page by name needs the first page's cursor.
	page2 := "/tenants?sort=name"
	if p, err := b.p.TenantPage(ctx, controlplane.TenantQuery{Sort: "name"}); err == nil && p.Next != "" {
		page2 += "&after=" + p.Next
	}
	mid := b.slugs[n/2]
	pages := []struct{ name, path string }{
		{names[0], "/tenants"},
		{names[1], page2},
		{names[2], "/tenants?status=Ready&selector=tier%21%3Dfree&q=" + mid[:min(len(mid), 6)]},
		{names[3], "/tenants/" + mid},
		{names[4], "/"},
	}
	// The floor: a tenants page's two catalog queries (its count and its page) by hand.
	var floor []time.Duration
	for range consoleSamples {
		start := time.Now()
		var c int
		if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM erpctl.tenants`).Scan(&c); err != nil {
			return nil, err
		}
		rows, err := b.db.QueryContext(ctx, `SELECT * FROM erpctl.tenants ORDER BY slug LIMIT 51`)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
		}
		rows.Close()
		floor = append(floor, time.Since(start))
	}
	var out []result
	for _, pg := range pages {
		var ds []time.Duration
		for range consoleSamples {
			ttfb, err := fetch(pg.path)
			if err != nil {
				return nil, err
			}
			ds = append(ds, ttfb)
		}
		r := result{Name: pg.name, Tenants: n}
		r.setTimes(ds, "ms")
		if pg.path == "/tenants" {
			r.setBaseline(inUnit(median(floor), "ms"), "its count and page queries by hand", false)
		}
		r.addNote("GET %s, %d times", abbrev(pg.path, 60), consoleSamples)
		b.logf("%s: median %s", pg.name, median(ds))
		out = append(out, r)
	}

	bin := chromiumPath()
	if bin == "" {
		return append(out, skipped(names[5:], n, "Chromium is not installed (scripts/ensure-chromium.sh)")...), nil
	}
	bctx, cancel, err := startChromium(ctx, bin)
	if err != nil {
		return append(out, skipped(names[5:], n, "Chromium did not start: "+err.Error())...), nil
	}
	defer cancel()
	rendered, err := b.renderTenants(bctx, d.base, op.LoginCode)
	if err != nil {
		return nil, err
	}
	out = append(out, rendered)
	mem, err := b.consoleMemory(ctx, bctx, d, time.Duration(minutes*float64(time.Minute)))
	if err != nil {
		return nil, err
	}
	return append(out, mem), nil
}

// consoleDaemon is a running `erpctl daemon --console-listen`.
type consoleDaemon struct {
	cmd    *exec.Cmd
	base   string // the console's http://host:port
	exited chan error
}

func (d *consoleDaemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

func (b *bench) startConsoleDaemon(ctx context.Context) (*consoleDaemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	caddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(b.tmp, "console-daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := b.erpctlCmd(context.WithoutCancel(ctx), "daemon", "--listen", addr, "--console-listen", caddr, "--interval", "1h")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	d := &consoleDaemon{cmd: cmd, base: "http://" + caddr, exited: make(chan error, 1)}
	go func() { d.exited <- cmd.Wait(); logFile.Close() }()
	if _, err := waitReady(ctx, "http://"+addr+"/readyz", d.exited, 10*time.Minute); err != nil {
		if !errors.Is(err, errExited) {
			d.stop()
		}
		return nil, fmt.Errorf("erpctl daemon --console-listen: %w; its log: %s", err, tail(logPath, 5))
	}
	return d, nil
}

func chromiumPath() string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// startChromium starts a headless Chromium for the scenario; cancel stops it.
func startChromium(ctx context.Context, bin string) (context.Context, context.CancelFunc, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	cancel := func() { bcancel(); acancel() }
	if err := chromedp.Do(bctx); err != nil {
		cancel()
		return nil, nil, err
	}
	return bctx, cancel, nil
}

// renderTenants signs a tab in with a login link, then loads the tenants page again and again:
// the time from the navigation's start to its load event, as the browser's Navigation Timing
// gives it (the page is rendered then: its rows are server-side HTML).
func (b *bench) renderTenants(bctx context.Context, base, loginCode string) (result, error) {
	r := result{Name: "console: tenants page rendered in Chromium", Tenants: len(b.slugs)}
	tab, cancel := chromedp.NewContext(bctx)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(operators.LoginURL(base, loginCode)), chromedp.WaitVisible(chromedp.ID("count-all"))); err != nil {
		return r, fmt.Errorf("sign in with the login link: %w", err)
	}
	var loads, firsts []time.Duration
	for range consoleSamples {
		if err := chromedp.Do(tab, chromedp.Navigate(base+"/tenants"), chromedp.WaitVisible(chromedp.CSS("tr[data-slug]"))); err != nil {
			return r, err
		}
		timing, err := chromedp.Run(tab, chromedp.Poll[[]float64](`(() => { const t = performance.getEntriesByType("navigation")[0];
			return t && t.loadEventEnd > 0 ? [t.responseStart - t.startTime, t.loadEventEnd - t.startTime] : null; })()`,
			chromedp.WithPollingInterval(10*time.Millisecond)))
		if err != nil {
			return r, err
		}
		firsts = append(firsts, time.Duration(timing[0]*float64(time.Millisecond)))
		loads = append(loads, time.Duration(timing[1]*float64(time.Millisecond)))
	}
	r.setTimes(loads, "ms")
	r.Extra = map[string]float64{"ttfb_ms": inUnit(median(firsts), "ms")}
	r.addNote("navigation start to load event, %d loads of /tenants in one tab (the browser's own first byte: median %.1f ms)", consoleSamples, inUnit(median(firsts), "ms"))
	b.logf("%s: median %s", r.Name, median(loads))
	return r, nil
}

// consoleMemory keeps the fleet, tenants and a tenant's pages open in Chromium tabs (each polls
// every 2 s) while new generations roll out one after another, for the given time, and reports
// how much the daemon's resident memory grew over what it was before the tabs opened.
func (b *bench) consoleMemory(ctx, bctx context.Context, d *consoleDaemon, dur time.Duration) (result, error) {
	r := result{Name: "console: daemon's extra memory, pages open during rollouts", Tenants: len(b.slugs), Unit: "MB"}
	pid := d.cmd.Process.Pid
	before, _, err := procMemory(pid)
	if err != nil {
		return r, err
	}
	op, err := b.p.Operators().Create(ctx, "erpbench-memory")
	if err != nil {
		return r, err
	}
	for i, path := range []string{"/", "/tenants", "/tenants/" + b.slugs[0]} {
		tab, cancel := chromedp.NewContext(bctx)
		defer cancel()
		steps := []chromedp.Action[chromedp.Void]{}
		if i == 0 {
			// The tabs share the browser's cookies: one sign-in serves them all.
			steps = append(steps, chromedp.Navigate(operators.LoginURL(d.base, op.LoginCode)), chromedp.WaitVisible(chromedp.ID("count-all")))
		}
		steps = append(steps, chromedp.Navigate(d.base+path), chromedp.WaitVisible(chromedp.ID("main")))
		if err := chromedp.Do(tab, steps...); err != nil {
			return r, fmt.Errorf("open %s: %w", path, err)
		}
	}
	file := filepath.Join(b.modulesDir, "console_bench.hcl")
	defer os.Remove(file)
	start := time.Now()
	peak, last, mid := before, before, 0.0
	published, rolled := 0, 0
	for time.Since(start) < dur {
		// The next generation: one more nullable column, rolled out by the daemon.
		var cols strings.Builder
		for i := 0; i <= published; i++ {
			fmt.Fprintf(&cols, "  column \"c%d\" {\n    type = text\n    null = true\n  }\n", i)
		}
		src := "schema \"tenant\" {}\ntable \"console_bench\" {\n  schema = schema.tenant\n" + cols.String() + "}\n"
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			return r, err
		}
		if err := publishModules(ctx, b.p); err != nil {
			return r, err
		}
		published++
		gen, _, err := b.p.Generations().Latest(ctx, nil)
		if err != nil {
			return r, err
		}
		for time.Since(start) < dur {
			byGen, err := b.p.Generations().TenantsByGeneration(ctx)
			if err != nil {
				return r, err
			}
			if rss, _, err := procMemory(pid); err == nil {
				peak, last = max(peak, rss), rss
				if mid == 0 && time.Since(start) >= dur/2 {
					mid = rss // is the growth early (caches filling) or steady (a leak)?
				}
			}
			if byGen[gen] == len(b.slugs) {
				rolled++
				break
			}
			select {
			case <-ctx.Done():
				return r, ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
	}
	r.Median, r.Samples = ptr(peak-before), 1
	r.Extra = map[string]float64{"rss_before_mb": before, "rss_peak_mb": peak, "rss_end_mb": last, "minutes": dur.Minutes(),
		"generations_published": float64(published), "rollouts_finished": float64(rolled)}
	r.Extra["rss_half_mb"] = mid
	r.addNote("peak VmRSS minus VmRSS before 3 console tabs opened (%.1f → %.1f MB; %.1f halfway, %.1f at the end), over %.1f min of %d rollouts of a new column, each a generation (%d finished)",
		before, peak, mid, last, dur.Minutes(), published, rolled)
	b.logf("%s: %.1f MB (%.1f → %.1f MB) over %s, %d rollouts", r.Name, peak-before, before, peak, dur, published)
	return r, nil
}
