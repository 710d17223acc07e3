package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/pgcluster"
	"github.com/erpctl/erpctl/internal/term"
)

func newCmdDB(f *Factory) *cobra.Command {
	c := newGroupCmd("db", "Manage the embedded PostgreSQL cluster; on Citus, list the nodes and rebalance",
		NewCmdDBStatus(f, nil),
		NewCmdDBStop(f, nil),
		NewCmdDBURL(f, nil),
		NewCmdDBDestroy(f, nil),
		NewCmdDBRebalance(f, nil),
	)
	c.Long = `Manage the embedded PostgreSQL cluster erpctl uses when no --database-url (or
ERPCTL_DATABASE_URL) is given. It lives under $ERPCTL_HOME (default ~/.local/share/erpctl),
starts on first use and keeps running, with its data, after erpctl exits.

When --database-url is a Citus coordinator, db status lists its nodes with their tenants, and
db rebalance spreads the tenants that are not pinned over them.`
	return c
}

// DBOptions are the inputs of db status, db stop and db url.
type DBOptions struct {
	IO      *term.IOStreams
	Cluster func() *pgcluster.Cluster
	Plane   openPlane // db status: the database of --database-url, for its Citus nodes
	Format  term.Format

	// DatabaseURL is set when erpctl is pointed elsewhere; the commands then say so.
	DatabaseURL string

	Yes bool // db destroy: confirmed
}

func newDBOptions(f *Factory) *DBOptions {
	return &DBOptions{IO: f.IO, Cluster: f.Cluster, Plane: f.Plane}
}

func dbRunE(f *Factory, opts *DBOptions, runF func(*DBOptions) error, run func(context.Context, *DBOptions) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		opts.Format, opts.DatabaseURL = f.Format(), f.DatabaseURL
		if runF != nil {
			return runF(opts)
		}
		return run(cmd.Context(), opts)
	}
}

// NewCmdDBStatus parses db status; runF replaces the run in tests.
func NewCmdDBStatus(f *Factory, runF func(*DBOptions) error) *cobra.Command {
	opts := newDBOptions(f)
	return &cobra.Command{
		Use:   "status",
		Short: "Show whether the embedded cluster is initialised and running, and where; on Citus, the nodes",
		Long: `Show whether the embedded cluster is initialised and running, and where. It starts nothing.

When --database-url (or ERPCTL_DATABASE_URL) is a Citus coordinator, db status also lists the
nodes of the cluster: which takes tenants, how many it holds, how many of those are pinned
there by erpctl tenant move, and how many archived tenants (erpctl tenant delete) it keeps.`,
		Args: noArgs,
		RunE: dbRunE(f, opts, runF, dbStatusRun),
	}
}

// NewCmdDBStop parses db stop; runF replaces the run in tests.
func NewCmdDBStop(f *Factory, runF func(*DBOptions) error) *cobra.Command {
	opts := newDBOptions(f)
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the embedded cluster (its data stays; it starts again on next use)",
		Args:  noArgs,
		RunE:  dbRunE(f, opts, runF, dbStopRun),
	}
}

// NewCmdDBDestroy parses db destroy; runF replaces the run in tests.
func NewCmdDBDestroy(f *Factory, runF func(*DBOptions) error) *cobra.Command {
	opts := newDBOptions(f)
	cmd := &cobra.Command{
		Use:   "destroy --yes",
		Short: "Stop the embedded cluster and remove it with every tenant's data; refuses without --yes",
		Long: `Stop the embedded cluster of $ERPCTL_HOME and remove its data directory (every tenant, token
and row in it) and what the home records of it: where it is, its port and its passwords. The
next command that needs the cluster makes a new, empty one. The home itself and anything else in
it stay; remove the home after this to remove everything.

It needs no password, so it also clears the data directory that an earlier home at the same path
left under /var/lib/erpctl/clusters (as root, when the home is out of the postgres user's reach).`,
		Example: "  erpctl db destroy --yes\n  erpctl db destroy --yes && rm -rf \"${ERPCTL_HOME:-$HOME/.local/share/erpctl}\"",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.Yes {
				return usageErrorf("refusing to destroy the embedded cluster in %s without --yes: it removes every tenant's data", opts.Cluster().DataDir)
			}
			return dbRunE(f, opts, runF, dbDestroyRun)(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "confirm: stop the cluster and remove its data for good")
	return cmd
}

func dbDestroyRun(ctx context.Context, opts *DBOptions) error {
	c := opts.Cluster()
	removed, err := c.Destroy(ctx)
	if err != nil {
		return err
	}
	res := struct {
		DataDir string `json:"data_dir"`
		Removed bool   `json:"removed"`
	}{c.DataDir, removed}
	return opts.IO.Render(opts.Format, res, func() error {
		if removed {
			fmt.Fprintf(opts.IO.Out, "%s Stopped and removed the embedded PostgreSQL in %s\n", opts.IO.Styles().Success.Render("✓"), c.DataDir)
		} else {
			fmt.Fprintf(opts.IO.Out, "There is no embedded PostgreSQL in %s\n", c.DataDir)
		}
		if opts.DatabaseURL != "" {
			fmt.Fprintln(opts.IO.ErrOut, "note: erpctl uses --database-url / "+envDatabaseURL+", which this did not touch")
		}
		return nil
	})
}

// NewCmdDBURL parses db url; runF replaces the run in tests.
func NewCmdDBURL(f *Factory, runF func(*DBOptions) error) *cobra.Command {
	opts := newDBOptions(f)
	return &cobra.Command{
		Use:     "url",
		Short:   "Print the URL of the embedded cluster's erpctl database, starting it if needed",
		Example: "  psql \"$(erpctl db url)\"",
		Args:    noArgs,
		RunE:    dbRunE(f, opts, runF, dbURLRun),
	}
}

type dbStatusView struct {
	Home        string `json:"home"`
	DataDir     string `json:"data_dir"`
	Initialized bool   `json:"initialized"`
	Running     bool   `json:"running"`
	PID         int    `json:"pid"`
	Port        int    `json:"port"`
	Version     string `json:"version"`
	BinDir      string `json:"bin_dir"`
	InUse       bool   `json:"in_use"` // erpctl uses it: no --database-url
	// The nodes of the Citus cluster --database-url points at; omitted when it is not Citus.
	Nodes []controlplane.Node `json:"nodes,omitempty"`
}

func dbStatusRun(ctx context.Context, opts *DBOptions) error {
	c := opts.Cluster()
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	v := dbStatusView{Home: c.Home, DataDir: s.DataDir, Initialized: s.Initialized, Running: s.Running, PID: s.PID,
		Port: s.Port, Version: s.Version, BinDir: s.BinDir, InUse: opts.DatabaseURL == ""}
	if !v.InUse {
		// The embedded cluster is never Citus; another server may be.
		if v.Nodes, err = citusNodes(ctx, opts.Plane); err != nil {
			return err
		}
	}
	return opts.IO.Render(opts.Format, v, func() error {
		st := opts.IO.Styles()
		state := st.Status("running")
		switch {
		case !v.Initialized:
			state = "not initialised (it starts on first use)"
		case !v.Running:
			state = st.Warning.Render("stopped") + " (it starts on next use)"
		}
		num := func(n int) string {
			if n == 0 {
				return "-"
			}
			return strconv.Itoa(n)
		}
		fields := []term.Field{
			{Label: "State", Value: state},
			{Label: "Home", Value: v.Home},
			{Label: "Data directory", Value: v.DataDir},
			{Label: "PID", Value: num(v.PID)},
			{Label: "Port", Value: num(v.Port)},
			{Label: "Version", Value: orDash(v.Version)},
			{Label: "Binaries", Value: orDash(v.BinDir)},
		}
		if !v.InUse {
			fields = append(fields, term.Field{Label: "Note", Value: "erpctl uses --database-url / " + envDatabaseURL + ", not this cluster"})
		}
		if err := opts.IO.PrintFields(fields...); err != nil || v.Nodes == nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "\n%s\n", st.Bold.Render("Citus nodes of --database-url"))
		return printNodes(opts.IO, v.Nodes)
	})
}

// citusNodes lists the nodes of the Citus cluster the control plane is on, nil when it is not
// Citus.
func citusNodes(ctx context.Context, open openPlane) ([]controlplane.Node, error) {
	p, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if !p.Citus() {
		return nil, nil
	}
	return p.Nodes(ctx)
}

func printNodes(io *term.IOStreams, nodes []controlplane.Node) error {
	st := io.Styles()
	tbl := io.NewTable("node", "role", "takes tenants", "tenants", "pinned", "archives")
	for _, n := range nodes {
		role := "worker"
		if n.Coordinator {
			role = "coordinator"
		}
		if !n.Active {
			role += " " + st.Warning.Render("(inactive)")
		}
		takes := "no"
		if n.TakesTenants() {
			takes = "yes"
		}
		tbl.Row(n.Node, role, takes, strconv.Itoa(n.Tenants), strconv.Itoa(n.Pinned), strconv.Itoa(n.Archives))
	}
	return tbl.Render()
}

func dbStopRun(ctx context.Context, opts *DBOptions) error {
	c := opts.Cluster()
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if err := c.Stop(ctx); err != nil {
		return err
	}
	res := struct {
		DataDir    string `json:"data_dir"`
		WasRunning bool   `json:"was_running"`
		Running    bool   `json:"running"`
	}{s.DataDir, s.PID != 0, false}
	return opts.IO.Render(opts.Format, res, func() error {
		if res.WasRunning {
			fmt.Fprintf(opts.IO.Out, "%s Stopped the embedded PostgreSQL (data kept in %s)\n", opts.IO.Styles().Success.Render("✓"), s.DataDir)
		} else {
			fmt.Fprintln(opts.IO.Out, "The embedded PostgreSQL is not running")
		}
		return nil
	})
}

func dbURLRun(ctx context.Context, opts *DBOptions) error {
	c := opts.Cluster()
	if err := c.Ensure(ctx); err != nil {
		return err
	}
	url := c.URL(pgcluster.DefaultDatabase)
	res := struct {
		URL string `json:"url"`
	}{url}
	return opts.IO.Render(opts.Format, res, func() error {
		fmt.Fprintln(opts.IO.Out, url)
		if opts.DatabaseURL != "" {
			fmt.Fprintln(opts.IO.ErrOut, "note: erpctl uses --database-url / "+envDatabaseURL+", not this cluster")
		}
		return nil
	})
}
