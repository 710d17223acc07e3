package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer is a writer that can be held: writes wait while it is.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	hold   chan struct{} // writes wait for it to be closed; nil: none
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.hold != nil {
		<-b.hold
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	out := &lockedBuffer{}
	l := newLogWriter(out, 1<<20, time.Second, func(n int64) { t.Errorf("%d lines dropped", n) })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				fmt.Fprintf(l, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(l, "after close\n")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4001 || lines[4000] != "after close" {
		t.Fatalf("%d lines, last %q; want 4000 and the one after Close", len(lines), lines[len(lines)-1])
	}
	next := map[string]int{}
	for _, line := range lines[:4000] {
		var g string
		var i int
		if _, err := fmt.Sscanf(line, "%s line %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v (lines interleaved)", line, err)
		}
		if i != next[g] {
			t.Fatalf("%s: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if out.writes >= 4000 {
		t.Errorf("%d writes for 4000 lines; want them batched", out.writes)
	}
}

func TestLogWriterDropsLinesWhenItsOutputIsStuck(t *testing.T) {
	out := &lockedBuffer{hold: make(chan struct{})}
	var dropped atomic.Int64
	reported := make(chan struct{}, 1)
	l := newLogWriter(out, 100, 20*time.Millisecond, func(n int64) {
		dropped.Add(n)
		select {
		case reported <- struct{}{}:
		default:
		}
	})
	line := strings.Repeat("x", 39) + "\n"
	start := time.Now()
	for range 20 {
		l.Write([]byte(line))
	}
	// The first lines are taken by the stuck write, two more fill the buffer, and each of the
	// rest waits 20 ms and is dropped: no write waits for the output itself.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("20 writes to a stuck output took %v", took)
	}
	close(out.hold)
	select {
	case <-reported:
	case <-time.After(5 * time.Second):
		t.Fatal("no drop reported after the output came back")
	}
	l.Close()
	kept := strings.Count(out.String(), "\n")
	if kept+int(dropped.Load()) != 20 || dropped.Load() == 0 {
		t.Errorf("kept %d lines and dropped %d; want 20 in all, some dropped", kept, dropped.Load())
	}
}

// BenchmarkAccessLogLine is the cost of one access log line as the daemon writes it (the data
// API's attributes, JSON), to a file directly and through LogWriter, from 16 goroutines.
func BenchmarkAccessLogLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(map[bool]string{false: "file", true: "LogWriter"}[buffered], func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			if buffered {
				lw := NewLogWriter(f, nil)
				defer lw.Close()
				w = lw
			}
			log := slog.New(slog.NewJSONHandler(w, nil))
			ctx := context.Background()
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(ctx, slog.LevelInfo, "api request",
						slog.String("method", "GET"),
						slog.String("route", "/api/{tenant}/{module}/{resource}/{id}/{$}"),
						slog.String("tenant", "bench-000001"),
						slog.Int("status", 200),
						slog.Duration("duration", 1234567*time.Nanosecond))
				}
			})
		})
	}
}
