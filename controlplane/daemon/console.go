package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/console"
)

// ConsoleConfig configures the operator console: the web pages of controlplane/console on a
// listener of their own.
type ConsoleConfig struct {
	Listen string // HOST:PORT; "" serves nothing
	// AnyAddress allows an address other than loopback: the console shows the whole fleet and
	// repairs tenants, so by default only this machine may reach it.
	AnyAddress bool
	// URL is the address operators reach the console at, recorded in the catalog for the login
	// links of erpctl operator token create; "": http:// and the address it listens on.
	URL string
	// Poll is how often the pages that show progress fetch themselves again; 0: 2s.
	Poll time.Duration
	// OnListening is a test signal: called with the address once the console listens.
	OnListening func(net.Addr)
}

// CheckConsoleListen refuses a console address that is not loopback unless any is set.
func CheckConsoleListen(addr string, any bool) error {
	return checkListen("console", "the console", "127.0.0.1:8081", addr, any)
}

// ConsoleServer serves the console.
type ConsoleServer struct {
	runner
	cfg ConsoleConfig
	log *slog.Logger
	p   *controlplane.Plane
	srv *http.Server
}

// NewConsoleServer returns the console's server; health reports the daemon's state.
func NewConsoleServer(cfg ConsoleConfig, log *slog.Logger, p *controlplane.Plane, health func(context.Context) console.Health) (*ConsoleServer, error) {
	h, err := console.New(console.Config{Plane: p, Generations: p.Generations(), Operators: p.Operators(),
		Rollouts: p.Rollouts(), Health: health, Logger: log, Poll: cfg.Poll, SecureCookies: strings.HasPrefix(cfg.URL, "https://")})
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return &ConsoleServer{cfg: cfg, log: log, p: p, srv: srv}, nil
}

// Start listens and records where, and returns an error when it cannot or the address is refused.
func (s *ConsoleServer) Start(ctx context.Context) error {
	if err := CheckConsoleListen(s.cfg.Listen, s.cfg.AnyAddress); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen for the console on %s: %w", s.cfg.Listen, err)
	}
	u := s.cfg.URL
	if u == "" {
		u = "http://" + ln.Addr().String()
	}
	if err := s.p.Operators().SetConsoleURL(ctx, u); err != nil {
		ln.Close()
		return fmt.Errorf("daemon: %w", err)
	}
	s.log.Info("serving the console", "addr", ln.Addr().String(), "url", u)
	if s.cfg.OnListening != nil {
		s.cfg.OnListening(ln.Addr())
	}
	s.run(ctx, func(ctx context.Context) error {
		return serveUntil(ctx, s.srv, ln, "console", func() {
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s.srv.Shutdown(sctx)
		})
	})
	return nil
}
