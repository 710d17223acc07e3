package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/erpctl/erpctl/internal/ident"
)

// rssTarget is the daemon's resident memory target after its first pass, in MB.
func rssTarget(n int) float64 {
	if n <= 10000 {
		return 150
	}
	return 300 * max(1, float64(n)/100000)
}

// memory runs the built `erpctl daemon`: the time from its start to /readyz ok, a data API
// request right then (the first pass may still run), the time to its first pass's end, its
// resident memory then; then it stops it with SIGTERM and checks that it exits 0 within 5 s.
func (b *bench) memory(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	r := result{Name: "daemon RSS after a pass", Tenants: n, Unit: "MB"}
	if b.erpctl == "" {
		r.Skipped = fmt.Sprintf("cmd/erpctl does not build yet: %v", b.erpctlErr)
		return []result{r}, nil
	}
	slug := b.slugs[len(b.slugs)/2]
	_, token, err := b.p.CreateToken(ctx, ident.MustParseSlug(slug), "erpbench-start")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(b.tmp, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := b.erpctlCmd(context.WithoutCancel(ctx), "daemon", "--listen", addr, "--interval", "1h")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() {
		cmd.Process.Kill()
		<-exited
	}

	readyIn, err := waitReady(ctx, "http://"+addr+"/readyz", exited, 5*time.Minute)
	if err != nil {
		if !errors.Is(err, errExited) {
			kill()
		}
		b.daemonBroken = "it " + err.Error()
		r.Error = fmt.Sprintf("erpctl daemon: %v; its log: %s", err, tail(logPath, 5))
		return []result{r}, nil
	}
	b.logf("daemon ready after %s", readyIn.Round(time.Millisecond))
	// Ready means serving: a request right away, while the first pass may still run.
	servedErr := probe(ctx, "http://"+addr+"/api/"+slug+"/product/products/", token)
	passesAtServe := passesDone(ctx, "http://"+addr+"/metrics")
	firstPass, err := waitFirstPass(ctx, "http://"+addr+"/metrics", exited, 30*time.Minute)
	if err != nil {
		kill()
		r.Error = fmt.Sprintf("erpctl daemon: %v; its log: %s", err, tail(logPath, 5))
		return []result{r}, nil
	}
	firstPass += readyIn
	b.logf("daemon's first pass done %s after start", firstPass.Round(time.Millisecond))
	rss, hwm, err := procMemory(cmd.Process.Pid)
	if err != nil {
		kill()
		return nil, err
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		kill()
		return nil, err
	}
	stopStart := time.Now()
	select {
	case err := <-exited:
		stopIn := time.Since(stopStart)
		if err != nil {
			r.Error = fmt.Sprintf("erpctl daemon exited with %v after SIGTERM; its log: %s", err, tail(logPath, 5))
			b.daemonBroken = "it exited with " + exitText(err) + " after SIGTERM"
		}
		r.addNote("SIGTERM: %s after %.1f ms", exitText(err), inUnit(stopIn, "ms"))
	case <-time.After(5 * time.Second):
		kill()
		r.Error = "erpctl daemon did not exit within 5 s of SIGTERM"
	}

	r.Median, r.Samples = ptr(rss), 1
	r.Extra = map[string]float64{"peak_rss_mb": hwm, "ready_s": readyIn.Seconds(), "first_pass_s": firstPass.Seconds()}
	limit := rssTarget(n)
	r.setPass(fmt.Sprintf("< %g MB", limit), rss < limit && r.Error == "")
	r.addNote("`erpctl daemon --interval 1h`: VmRSS once its first pass ended (%.1f s after start; peak VmHWM %.0f MB)", firstPass.Seconds(), hwm)
	b.logf("daemon RSS %.1f MB (peak %.1f MB), started %s ago", rss, hwm, time.Since(start).Round(time.Millisecond))

	ready := result{Name: "daemon start to ready", Tenants: n, Unit: "s", Samples: 1, Median: ptr(readyIn.Seconds())}
	ready.Extra = map[string]float64{"first_pass_s": firstPass.Seconds(), "passes_when_served": float64(passesAtServe)}
	ready.setPass("< 5 s, serving the data API", readyIn < 5*time.Second && servedErr == nil)
	served := "answered 200"
	if servedErr != nil {
		served = "failed: " + servedErr.Error()
	}
	ready.addNote("`erpctl daemon` until /readyz said ok; a GET of %s's products right then %s, with %d passes done; the first full pass ended %.1f s after start",
		slug, served, passesAtServe, firstPass.Seconds())
	return []result{r, ready}, nil
}

// passesDone reads erpctl_reconcile_passes_total from the daemon's /metrics; -1 when unreadable.
func passesDone(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "erpctl_reconcile_passes_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// waitFirstPass polls the daemon's /metrics until a pass has completed.
func waitFirstPass(ctx context.Context, url string, exited <-chan error, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if passesDone(ctx, url) >= 1 {
			return time.Since(start), nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("%w (%s)", errExited, exitText(err))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("no pass completed within %s", timeout)
}

var errExited = errors.New("exited before it was ready")

// waitReady polls url until it answers 200, the process exits, or timeout passes.
func waitReady(ctx context.Context, url string, exited <-chan error, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for time.Since(start) < timeout {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("%w (%s)", errExited, exitText(err))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return time.Since(start), nil
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return 0, fmt.Errorf("not ready after %s: %s", timeout, last)
}

// procMemory reads VmRSS and VmHWM of pid, in MB.
func procMemory(pid int) (rss, hwm float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, sc.Err()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// tail is the last n lines of a file, on one line.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if i := strings.Index(string(b), "panic: "); i >= 0 { // the panic says more than the stack's end
		return firstLines(string(b[i:]), 2)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
