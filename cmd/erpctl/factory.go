package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/pgcluster"
	"github.com/erpctl/erpctl/internal/term"
	"github.com/erpctl/erpctl/modules"
)

// Environment variables erpctl reads.
const (
	envDatabaseURL       = "ERPCTL_DATABASE_URL"
	envDirectDatabaseURL = "ERPCTL_DIRECT_DATABASE_URL"
	envAdminURL          = "ERPCTL_ADMIN_DATABASE_URL"
	envModulesDir        = "ERPCTL_MODULES_DIR"
	envHome              = "ERPCTL_HOME"
	envNoColor           = "NO_COLOR"
)

// Factory holds what every command shares: the IO streams, the global flags and the ways to
// reach the control plane and the embedded cluster. Commands take from it what they need into
// their Options.
type Factory struct {
	IO     *term.IOStreams
	Getenv func(string) string

	// Global flags, set once cobra has parsed them.
	DatabaseURL       string
	DirectDatabaseURL string // set when DatabaseURL is a transaction pooler (PgBouncer)
	ModulesDir        string
	Output            string
	NoColor           bool

	format term.Format
}

func newFactory(ios *term.IOStreams, getenv func(string) string) *Factory {
	return &Factory{IO: ios, Getenv: getenv}
}

// Format is the validated -o/--output.
func (f *Factory) Format() term.Format {
	if f.format == "" {
		return term.FormatTable
	}
	return f.format
}

// Cluster is the embedded PostgreSQL cluster under $ERPCTL_HOME.
func (f *Factory) Cluster() *pgcluster.Cluster {
	home := f.Getenv(envHome)
	if home == "" {
		home = pgcluster.DefaultHome()
	}
	return pgcluster.Open(home)
}

// Registry loads the modules: the built-ins and the files in --modules-dir. A module file that
// does not load is bad input; the error names the file and line.
func (f *Factory) Registry() (*modules.Registry, error) {
	reg, err := modules.Load(f.ModulesDir)
	if err != nil {
		return nil, badInput(err)
	}
	return reg, nil
}

// Plane opens the control plane on --database-url, or on the embedded cluster (started when
// needed) when no URL is given. The caller closes it.
func (f *Factory) Plane(ctx context.Context) (*controlplane.Plane, error) {
	return f.PlaneWithLogger(ctx, nil)
}

// PlaneWithLogger is Plane with a logger for the control plane.
func (f *Factory) PlaneWithLogger(ctx context.Context, log *slog.Logger) (*controlplane.Plane, error) {
	return f.openPlane(ctx, log, "")
}

// DaemonPlane is the daemon's control plane: what it publishes is by "daemon@HOST".
func (f *Factory) DaemonPlane(ctx context.Context, log *slog.Logger) (*controlplane.Plane, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return f.openPlane(ctx, log, "daemon@"+host)
}

// openPlane opens the control plane; actor names who publishes ("": user@host).
func (f *Factory) openPlane(ctx context.Context, log *slog.Logger, actor string) (*controlplane.Plane, error) {
	// Load the modules first, once: a broken module file is the user's input to fix, not a failure.
	reg, err := f.Registry()
	if err != nil {
		return nil, err
	}
	// The superuser's URL serves once, for what erpctl's own role may not do (see
	// controlplane.Config.AdminURL): the embedded cluster's, or on another server what
	// ERPCTL_ADMIN_DATABASE_URL gives.
	url, admin := f.DatabaseURL, f.Getenv(envAdminURL)
	// The other URLs are named when they are wrong; describeOpenError says "database URL".
	for name, u := range map[string]string{"--direct-database-url": f.DirectDatabaseURL, envAdminURL: admin} {
		if _, err := pgconn.ParseConfig(u); u != "" && err != nil {
			return nil, badInput(fmt.Errorf("invalid %s: %s", name, rootCause(err)))
		}
	}
	if url == "" {
		c := f.Cluster()
		if err := c.Ensure(ctx); err != nil {
			return nil, err
		}
		url, admin = c.URL(pgcluster.DefaultDatabase), c.AdminURL(pgcluster.DefaultDatabase)
	}
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, DirectDatabaseURL: f.DirectDatabaseURL, AdminURL: admin,
		ModulesDir: f.ModulesDir, Registry: reg, Logger: log, Actor: actor})
	if err != nil {
		return nil, describeOpenError(err)
	}
	return p, nil
}

// describeOpenError says in one sentence why the database could not be used, without the URL's
// password.
func describeOpenError(err error) error {
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		return badInput(fmt.Errorf("invalid database URL: %s", rootCause(parseErr)))
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		where := "the database"
		if c := connErr.Config; c != nil {
			where = fmt.Sprintf("the database %q at %s as user %q", c.Database,
				net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.User)
		}
		return fmt.Errorf("cannot connect to %s: %s", where, rootCause(connErr))
	}
	return err
}

// rootCause says briefly why a connection failed: the server's message when it sent one
// ("password authentication failed ..."), else the innermost error ("connection refused") of
// the last attempt (pgx tries TLS first, then each host in turn).
func rootCause(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				err = errs[len(errs)-1]
				continue
			}
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		}
		return err.Error()
	}
}
