package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/fair"
)

// ServerConfig configures the HTTP server. Its limits keep clients that hold connections open,
// send slowly or read slowly from exhausting the daemon.
type ServerConfig struct {
	Listen       string // HOST:PORT
	Caches       api.CacheSizes
	PublicURL    string   // see api.Config
	AllowedHosts []string // see api.Config
	CORSOrigins  []string // see api.Config
	// MaxConns caps open connections. Near it, each new connection closes the one idle longest;
	// at it, with every connection busy, new ones wait to be accepted. 0, or more than the
	// process may open: three quarters of its file limit.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's headers; 0: 10s. ReadTimeout the whole
	// request, body included; 0: 30s. WriteTimeout writing the answer; 0: 60s. IdleTimeout a
	// kept-alive connection between requests; 0: 60s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; 0: 64 KiB.
	MaxHeaderBytes int
	// ShutdownTimeout bounds how long requests in flight may finish on stop; 0: 3s.
	ShutdownTimeout time.Duration
	// OnListening is a test signal: called with the address once the server listens.
	OnListening func(net.Addr)
	// StatementTimeout bounds each statement of the data API (controlplane.APIOptions).
	StatementTimeout time.Duration
	// ConnTenants bounds the tenants one data API connection serves (controlplane.APIOptions).
	ConnTenants int
	// Fair shares the data API between tenants (its Slots are the pool's size); see package fair.
	Fair fair.Config
	// NoFairness serves the data API without that bookkeeping: erpbench measures its cost.
	NoFairness bool
}

// Server serves /healthz, /readyz, /metrics and the data API.
type Server struct {
	runner
	cfg   ServerConfig
	log   *slog.Logger
	srv   *http.Server
	conns *connLimiter
}

// NewServer returns the server; problems says what keeps the daemon from being ready.
func NewServer(cfg ServerConfig, log *slog.Logger, dataAPI, metrics http.Handler, problems func() []string) *Server {
	cfg = cfg.withDefaults()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ps := problems(); len(ps) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, s := range ps {
				fmt.Fprintln(w, "degraded:", s)
			}
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", dataAPI)
	return &Server{cfg: cfg, log: log, srv: &http.Server{Handler: mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes,
		// net/http's own complaints (TLS handshakes, accept errors, panics) go to the same log.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
}

func (c ServerConfig) withDefaults() ServerConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ShutdownTimeout, 3*time.Second)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 30*time.Second)
	def(&c.WriteTimeout, 60*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	return c
}

// Start listens, and returns an error when it cannot; it then serves until ctx ends and shuts
// down gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen on %s: %w", s.cfg.Listen, err)
	}
	maxConns := connCap(s.cfg.MaxConns)
	s.conns = newConnLimiter(ln, maxConns)
	s.srv.ConnState = s.conns.connState
	ln = s.conns
	s.log.Info("serving", "addr", ln.Addr().String(), "max_conns", maxConns)
	if s.cfg.OnListening != nil {
		s.cfg.OnListening(ln.Addr())
	}
	s.run(ctx, func(ctx context.Context) error {
		return serveUntil(ctx, s.srv, ln, "http", func() {
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			s.srv.Shutdown(sctx)
		})
	})
	return nil
}

// connCounts is how many connections the server holds open, and how many of them are idle.
func (s *Server) connCounts() (open, idle int) {
	if s.conns == nil {
		return 0, 0
	}
	return s.conns.counts()
}

// serveUntil serves srv on ln until ctx ends, then stops it with stop and waits for Serve to
// return.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, what string, stop func()) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("daemon: serve %s: %w", what, err)
	case <-ctx.Done():
	}
	stop()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("daemon: serve %s: %w", what, err)
	}
	return nil
}

// connCap keeps the connection cap under three quarters of the process's file limit (which Go
// raises to the hard limit at start), so that clients alone can never take the descriptors the
// database pool and the listener need. limit 0 means that much.
func connCap(limit int) int {
	fds := 4096
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 0 {
		fds = int(min(lim.Cur, 1<<20))
	}
	if ceiling := max(1, fds*3/4); limit <= 0 || limit > ceiling {
		return ceiling
	}
	return limit
}
