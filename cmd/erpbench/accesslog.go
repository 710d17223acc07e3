package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/erpctl/erpctl/controlplane/daemon"
)

// accessLog is the in-process daemon's logger: the JSON lines the erpctl daemon writes when its
// stderr is not a terminal (one access log line per request, through daemon.LogWriter),
// appended to a file. It can be switched off and on while the daemon runs, so that each data API
// run is measured with the log, as shipped, and without it, back to back in the same run.
type accessLog struct {
	path string
	f    *os.File
	w    *daemon.LogWriter
	on   atomic.Bool
	log  *slog.Logger
}

// openAccessLog opens BENCH_ACCESS_LOG, or access.log in the bench's scratch directory; the log
// starts on.
func openAccessLog(tmp string) (*accessLog, error) {
	path := os.Getenv("BENCH_ACCESS_LOG")
	if path == "" {
		path = filepath.Join(tmp, "access.log")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access log %q: %w", path, err)
	}
	// Through the daemon's own buffered writer, as erpctl daemon writes its stderr.
	l := &accessLog{path: path, f: f, w: daemon.NewLogWriter(f, nil)}
	l.on.Store(true)
	l.log = slog.New(switchHandler{on: &l.on, Handler: slog.NewJSONHandler(l.w, nil)})
	return l, nil
}

// set switches the log on or off; a nil log (no daemon) is always off.
func (l *accessLog) set(on bool) {
	if l != nil {
		l.on.Store(on)
	}
}

func (l *accessLog) close() {
	l.w.Close()
	l.f.Close()
}

// switchHandler is a handler that is enabled only while on is true: the data API asks Enabled
// before it builds its access log line, so that off costs what no logger costs.
type switchHandler struct {
	on *atomic.Bool
	slog.Handler
}

func (h switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.on.Load() && h.Handler.Enabled(ctx, l)
}

func (h switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return switchHandler{on: h.on, Handler: h.Handler.WithAttrs(as)}
}

func (h switchHandler) WithGroup(name string) slog.Handler {
	return switchHandler{on: h.on, Handler: h.Handler.WithGroup(name)}
}
