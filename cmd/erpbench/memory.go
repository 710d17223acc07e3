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
)

// rssTarget is the daemon's resident memory target after its first pass, in MB.
func rssTarget(n int) float64 {
	if n <= 10000 {
		return 150
	}
	return 300 * max(1, float64(n)/100000)
}

// memory runs the built `erpctl daemon`, waits for its first pass over the fleet (/readyz), reads
// its resident memory, then stops it with SIGTERM and checks that it exits 0 within 5 s.
func (b *bench) memory(ctx context.Context) ([]result, error) {
	n := len(b.slugs)
	r := result{Name: "daemon RSS after a pass", Tenants: n, Unit: "MB"}
	if b.erpctl == "" {
		r.Skipped = fmt.Sprintf("cmd/erpctl does not build yet: %v", b.erpctlErr)
		return []result{r}, nil
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
	r.Extra = map[string]float64{"peak_rss_mb": hwm, "ready_s": readyIn.Seconds()}
	limit := rssTarget(n)
	r.setPass(fmt.Sprintf("< %g MB", limit), rss < limit && r.Error == "")
	r.addNote("`erpctl daemon --interval 1h`: VmRSS once /readyz said ok (%.1f s after start; peak VmHWM %.0f MB)", readyIn.Seconds(), hwm)
	b.logf("daemon RSS %.1f MB (peak %.1f MB), started %s ago", rss, hwm, time.Since(start).Round(time.Millisecond))
	return []result{r}, nil
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
