package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/erpctl/erpctl/controlplane/api"
)

// ServerConfig configures the HTTP server.
type ServerConfig struct {
	Listen string // HOST:PORT
	Caches api.CacheSizes
	// ShutdownTimeout bounds how long requests in flight may finish on stop; 0: 3s.
	ShutdownTimeout time.Duration
	// OnListening is a test signal: called with the address once the server listens.
	OnListening func(net.Addr)
}

// Server serves /healthz, /readyz, /metrics and the data API.
type Server struct {
	runner
	cfg ServerConfig
	log *slog.Logger
	srv *http.Server
}

// NewServer returns the server; problems says what keeps the daemon from being ready.
func NewServer(cfg ServerConfig, log *slog.Logger, dataAPI, metrics http.Handler, problems func() []string) *Server {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 3 * time.Second
	}
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
	return &Server{cfg: cfg, log: log, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
}

// Start listens, and returns an error when it cannot; it then serves until ctx ends and shuts
// down gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen on %s: %w", s.cfg.Listen, err)
	}
	s.log.Info("serving", "addr", ln.Addr().String())
	if s.cfg.OnListening != nil {
		s.cfg.OnListening(ln.Addr())
	}
	s.run(ctx, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- s.srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("daemon: serve http: %w", err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.srv.Shutdown(sctx)
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("daemon: serve http: %w", err)
		}
		return nil
	})
	return nil
}
