package main

import (
	"context"
	"log/slog"
	"net"
	"os/signal"
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

	// OnListening is told the HTTP address once the daemon serves (tests).
	OnListening func(net.Addr)
}

// NewCmdDaemon parses daemon; runF replaces the run in tests.
func NewCmdDaemon(f *Factory, runF func(*DaemonOptions) error) *cobra.Command {
	opts := &DaemonOptions{IO: f.IO, Plane: f.PlaneWithLogger}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Reconcile every tenant continuously and serve the health, metrics and data API endpoints",
		Long: `Reconcile every tenant on an interval, and at once when a tenant or its modules change; back
off tenants that fail; serve /healthz, /readyz, /metrics and the data API on --listen. Runs
until SIGINT or SIGTERM, then shuts down cleanly. Several daemons may run against one database.

With --change-tracking (the default) and a superuser role, event triggers record DDL made on
tenant schemas outside erpctl: the daemon reconciles those tenants within about a second, each
--interval runs a pass over what changed, and every tenant is checked each --full-check. Without
a superuser it says so once and checks every tenant each --interval.

Logs go to stderr: text on a terminal, JSON otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return usageErrorf("--interval must be greater than 0, got %s", opts.Interval)
			}
			if opts.FullCheck <= 0 {
				return usageErrorf("--full-check must be greater than 0, got %s", opts.FullCheck)
			}
			if err := validateTuning(opts.Workers, opts.LockTimeout, opts.StatementTimeout); err != nil {
				return err
			}
			if opts.Listen != "" {
				if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
					return usageErrorf("invalid --listen address %q: use HOST:PORT, e.g. 127.0.0.1:8080", opts.Listen)
				}
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
	addTuningFlags(cmd, &opts.Workers, &opts.LockTimeout, &opts.StatementTimeout)
	return cmd
}

// daemonLogger logs text to a terminal and JSON to anything else.
func daemonLogger(io *term.IOStreams) *slog.Logger {
	if io.IsStderrTTY() {
		return slog.New(slog.NewTextHandler(io.ErrOut, nil))
	}
	return slog.New(slog.NewJSONHandler(io.ErrOut, nil))
}

func daemonRun(ctx context.Context, opts *DaemonOptions) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := daemonLogger(opts.IO)
	p, err := opts.Plane(ctx, log)
	if err != nil {
		return err
	}
	defer p.Close()
	log.Info("daemon starting", "interval", opts.Interval.String(), "full_check", opts.FullCheck.String(),
		"listen", opts.Listen, "workers", opts.Workers)
	return daemon.Run(ctx, p, daemon.Config{
		Loop: daemon.LoopConfig{Interval: opts.Interval, Workers: opts.Workers,
			LockTimeout: opts.LockTimeout, StatementTimeout: opts.StatementTimeout,
			TrackChanges: opts.TrackChanges, FullCheck: opts.FullCheck},
		Server: daemon.ServerConfig{Listen: opts.Listen, OnListening: opts.OnListening},
		Logger: log,
	})
}
