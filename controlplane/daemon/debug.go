package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// DebugConfig configures the debug server: Go's pprof handlers on a listener of their own, so
// that an operator can take a heap or CPU profile of a running daemon.
type DebugConfig struct {
	Listen string // HOST:PORT; "" serves nothing
	// AnyAddress allows an address other than loopback: profiles show the daemon's insides, and
	// a CPU profile costs CPU, so by default only this machine may ask.
	AnyAddress bool
	// OnListening is a test signal: called with the address once the server listens.
	OnListening func(net.Addr)
}

// CheckDebugListen refuses a debug address that is not loopback unless any is set.
func CheckDebugListen(addr string, any bool) error {
	return checkListen("debug", "pprof", "127.0.0.1:6060", addr, any)
}

// checkListen refuses addr for the listener of what (serving exposed) when it is not loopback,
// unless any is set, or when it is not HOST:PORT.
func checkListen(what, exposed, example, addr string, any bool) error {
	if err := checkLoopback(addr, any); err != nil {
		if errors.Is(err, errNotLoopback) {
			return fmt.Errorf("%s address %q is not loopback: %s would be open to the network (allow it explicitly to do so)", what, addr, exposed)
		}
		return fmt.Errorf("invalid %s address %q: use HOST:PORT, e.g. %s", what, addr, example)
	}
	return nil
}

var errNotLoopback = errors.New("not a loopback address")

// checkLoopback refuses an address that is not HOST:PORT, and one whose host is not loopback
// unless any is set.
func checkLoopback(addr string, any bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("use HOST:PORT")
	}
	if any || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errNotLoopback
}

// DebugServer serves /debug/pprof/.
type DebugServer struct {
	runner
	cfg DebugConfig
	log *slog.Logger
	srv *http.Server
}

// NewDebugServer returns the debug server.
func NewDebugServer(cfg DebugConfig, log *slog.Logger) *DebugServer {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &DebugServer{cfg: cfg, log: log, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
}

// Start listens, and returns an error when it cannot or when the address is refused.
func (s *DebugServer) Start(ctx context.Context) error {
	if err := CheckDebugListen(s.cfg.Listen, s.cfg.AnyAddress); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen for debug on %s: %w", s.cfg.Listen, err)
	}
	s.log.Info("serving pprof", "addr", ln.Addr().String())
	if s.cfg.OnListening != nil {
		s.cfg.OnListening(ln.Addr())
	}
	// Profiles in flight are of no use once the daemon stops: close, do not drain.
	s.run(ctx, func(ctx context.Context) error { return serveUntil(ctx, s.srv, ln, "debug", func() { s.srv.Close() }) })
	return nil
}
