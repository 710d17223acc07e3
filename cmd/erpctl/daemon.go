package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/term"
)

// DaemonOptions are the inputs of daemon.
type DaemonOptions struct {
	IO    *term.IOStreams
	Plane func(context.Context, *slog.Logger) (*controlplane.Plane, error)

	Interval         time.Duration
	FullCheck        time.Duration
	TrackChanges     bool
	Listen           string
	Workers          int
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	DebugListen      string
	DebugListenAny   bool
	ConsoleListen    string
	ConsoleListenAny bool
	ConsoleURL       string
	PublicURL        string
	AllowedHosts     []string
	CORSOrigins      []string
	Rollout          rolloutFlags
	MaxConns         int
	API              apiFlags
	PublishModules   bool
	LogLevel         string
	level            slog.Level

	// OnListening is told the HTTP address once the daemon serves (tests).
	OnListening func(net.Addr)
}

// NewCmdDaemon parses daemon; runF replaces the run in tests.
func NewCmdDaemon(f *Factory, runF func(*DaemonOptions) error) *cobra.Command {
	opts := &DaemonOptions{IO: f.IO, Plane: f.DaemonPlane}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Reconcile every tenant continuously and serve the health, metrics and data API endpoints",
		Long: `Reconcile every tenant to the latest published module generation on an interval, and at once
when a tenant changes or a generation is published; back off tenants that fail, stage the
rollout of each change (--canary, --max-failures: a halted rollout holds the rest of its tenants
until the module changes or erpctl reconcile --all --resume); serve /healthz, /readyz, /metrics
and the data API on --listen, and with --console-listen the operator console (off by default;
loopback only unless --console-listen-any). Runs until SIGINT or SIGTERM, then shuts down cleanly. Several
daemons may run against one database, with any module files: they all follow the catalog.

The daemon never publishes its module files (erpctl module publish does), and says once when
they differ from the latest generation. With --publish-modules, for development, it publishes
them whenever their content changes, after the same check as erpctl module publish.

With --change-tracking (the default) and a superuser role, event triggers record DDL made on
tenant schemas outside erpctl: the daemon reconciles those tenants within about a second, each
--interval runs a pass over what changed, and every tenant is checked each --full-check. Without
a superuser it says so once and checks every tenant each --interval. Such a periodic check, and
the first one after the daemon starts, reads the tenants' schemas again only when PostgreSQL has
counted a write to its catalog since the last read by any erpctl, or an hour has gone by.

No tenant can starve the others in the data API: each statement runs under
--api-statement-timeout; a tenant holds at most --api-tenant-share of the API's connections and
of --api-memory (the answers waiting for their clients), its other requests wait in a queue of
its own (--api-tenant-queue, --api-queue-wait), then get 429 as Django REST framework's
throttles answer. --tenant-rate and --tenant-concurrency limit every tenant; erpctl tenant
limits sets them per tenant. Each daemon publishes its tenants' usage for erpctl tenant top.

Logs go to stderr: text on a terminal, JSON otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return usageErrorf("--interval must be greater than 0, got %s", opts.Interval)
			}
			if err := opts.level.UnmarshalText([]byte(opts.LogLevel)); err != nil {
				return usageErrorf("--log-level %q: give debug, info, warn or error", opts.LogLevel)
			}
			if opts.FullCheck <= 0 {
				return usageErrorf("--full-check must be greater than 0, got %s", opts.FullCheck)
			}
			if err := validateTuning(opts.Workers, opts.LockTimeout, opts.StatementTimeout); err != nil {
				return err
			}
			if err := opts.Rollout.validate(); err != nil {
				return err
			}
			if opts.Listen != "" {
				if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
					return usageErrorf("invalid --listen address %q: use HOST:PORT, e.g. 127.0.0.1:8080", opts.Listen)
				}
			}
			if opts.PublicURL != "" {
				if err := checkPublicURL(opts.PublicURL); err != nil {
					return usageErrorf("--public-url %q: %s", opts.PublicURL, err)
				}
			}
			for _, h := range opts.AllowedHosts {
				if h == "" || strings.ContainsAny(h, "/ :@") {
					return usageErrorf("--allowed-hosts: %q is not a host name (give names like api.example.com or .example.com, without scheme or port)", h)
				}
			}
			for _, o := range opts.CORSOrigins {
				if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil) {
					return usageErrorf("--cors-origins: %q is not an origin (give scheme://host[:port], e.g. https://app.example.com, or *)", o)
				}
			}
			if opts.DebugListen != "" {
				if err := daemon.CheckDebugListen(opts.DebugListen, opts.DebugListenAny); err != nil {
					return usageErrorf("--debug-listen: %s; pass --debug-listen-any to allow it", err)
				}
			}
			if opts.ConsoleListen != "" {
				if err := daemon.CheckConsoleListen(opts.ConsoleListen, opts.ConsoleListenAny); err != nil {
					return usageErrorf("--console-listen: %s; pass --console-listen-any to allow it", err)
				}
			}
			if opts.ConsoleURL != "" {
				if err := checkPublicURL(opts.ConsoleURL); err != nil {
					return usageErrorf("--console-url %q: %s", opts.ConsoleURL, err)
				}
			}
			if opts.MaxConns < 0 {
				return usageErrorf("--max-conns must be 0 (three quarters of the file limit) or more, got %d", opts.MaxConns)
			}
			if err := opts.API.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return daemonRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Interval, "interval", 30*time.Second, "time between reconcile passes")
	fl.DurationVar(&opts.FullCheck, "full-check", 5*time.Minute, "time between passes over every tenant while changes are tracked")
	fl.BoolVar(&opts.TrackChanges, "change-tracking", true, "record DDL made by hand with event triggers (needs a superuser)")
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1:8080", `HTTP address for /healthz, /readyz, /metrics and the data API ("" serves nothing)`)
	fl.StringVar(&opts.PublicURL, "public-url", "", "the URL clients reach the data API at (e.g. https://erp.example.com): every link in an answer is built from it")
	fl.StringSliceVar(&opts.AllowedHosts, "allowed-hosts", nil, `Host headers the data API answers, as Django's ALLOWED_HOSTS (".example.com" for subdomains too, "*" for any); default: localhost, 127.0.0.1, ::1 and the --listen host`)
	fl.StringSliceVar(&opts.CORSOrigins, "cors-origins", nil, `origins whose browser front ends may call the data API (e.g. https://app.example.com, "*" for any); their CORS preflights need no token`)
	fl.StringVar(&opts.DebugListen, "debug-listen", "", `serve Go's pprof handlers (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 ("" serves nothing)`)
	fl.BoolVar(&opts.DebugListenAny, "debug-listen-any", false, "allow a --debug-listen address other than loopback")
	fl.StringVar(&opts.ConsoleListen, "console-listen", "", `serve the operator console on this address, e.g. 127.0.0.1:8081 ("" serves nothing; see erpctl operator token create)`)
	fl.BoolVar(&opts.ConsoleListenAny, "console-listen-any", false, "allow a --console-listen address other than loopback")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "debug, info, warn or error; debug adds each pass and where its time went")
	fl.StringVar(&opts.ConsoleURL, "console-url", "", "the address operators reach the console at, for login links (default: http:// and --console-listen)")
	fl.IntVar(&opts.MaxConns, "max-conns", 0, "connections the HTTP server holds open; near it, idle ones are closed first, longest idle first (0: three quarters of the file limit)")
	fl.BoolVar(&opts.PublishModules, "publish-modules", false, "publish the module files as a new generation whenever they change (development)")
	addTuningFlags(cmd, &opts.Workers, &opts.LockTimeout, &opts.StatementTimeout)
	opts.Rollout.add(cmd)
	opts.API.add(cmd)
	return cmd
}

// daemonLogger logs text to a terminal and JSON to anything else, through w.
func daemonLogger(io *term.IOStreams, w *daemon.LogWriter, level slog.Level) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if io.IsStderrTTY() {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

func daemonRun(ctx context.Context, opts *DaemonOptions) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var log *slog.Logger
	lw := daemon.NewLogWriter(opts.IO.ErrOut, func(n int64) { log.Warn("log lines dropped: stderr was too slow", "lines", n) })
	defer lw.Close()
	log = daemonLogger(opts.IO, lw, opts.level)
	p, err := opts.Plane(ctx, log)
	if err != nil {
		return err
	}
	defer p.Close()
	if h, _, _ := net.SplitHostPort(opts.Listen); (h == "" || h == "0.0.0.0" || h == "::") && opts.PublicURL == "" && len(opts.AllowedHosts) == 0 {
		log.Warn("listening on every interface, but the data API answers only the Host headers localhost, 127.0.0.1 and ::1; set --allowed-hosts or --public-url")
	}
	log.Info("daemon starting", "interval", opts.Interval.String(), "full_check", opts.FullCheck.String(),
		"listen", opts.Listen, "workers", opts.Workers, "publish_modules", opts.PublishModules,
		"api_statement_timeout", opts.API.StatementTimeout.String(), "api_conn_tenants", opts.API.ConnTenants, "api_tenant_share", opts.API.Share,
		"api_memory", opts.API.Memory, "tenant_rate", opts.API.Rate, "tenant_concurrency", opts.API.Concurrency)
	return daemon.Run(ctx, p, daemon.Config{
		Loop: daemon.LoopConfig{Interval: opts.Interval, Workers: opts.Workers,
			LockTimeout: opts.LockTimeout, StatementTimeout: opts.StatementTimeout,
			TrackChanges: opts.TrackChanges, FullCheck: opts.FullCheck, PublishModules: opts.PublishModules,
			Canary: opts.Rollout.Canary, MaxFailures: opts.Rollout.MaxFailures},
		Server: daemon.ServerConfig{Listen: opts.Listen, OnListening: opts.OnListening,
			PublicURL: opts.PublicURL, AllowedHosts: allowedHosts(opts), CORSOrigins: opts.CORSOrigins,
			MaxConns: opts.MaxConns, StatementTimeout: opts.API.StatementTimeout, ConnTenants: opts.API.connTenants(), Fair: opts.API.fairConfig()},
		Debug:   daemon.DebugConfig{Listen: opts.DebugListen, AnyAddress: opts.DebugListenAny},
		Console: daemon.ConsoleConfig{Listen: opts.ConsoleListen, AnyAddress: opts.ConsoleListenAny, URL: opts.ConsoleURL},
		Logger:  log,
	})
}

// checkPublicURL accepts scheme://host[:port] with no path, query or user.
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("use http:// or https://")
	case u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return errors.New("give only a scheme and a host, e.g. https://erp.example.com")
	}
	return nil
}

// allowedHosts is --allowed-hosts, or else the loopback names and the --listen host, so that a
// daemon only links to a host the operator named. With --public-url, links never come from the
// Host header, so any is answered unless a list is given.
func allowedHosts(opts *DaemonOptions) []string {
	if len(opts.AllowedHosts) > 0 {
		return opts.AllowedHosts
	}
	if opts.PublicURL != "" {
		return nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(opts.Listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	return hosts
}
