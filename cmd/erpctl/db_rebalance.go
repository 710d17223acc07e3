package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/term"
)

// DBRebalanceOptions are the inputs of db rebalance.
type DBRebalanceOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	DryRun bool
}

// NewCmdDBRebalance parses db rebalance; runF replaces the run in tests.
func NewCmdDBRebalance(f *Factory, runF func(*DBRebalanceOptions) error) *cobra.Command {
	opts := &DBRebalanceOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "rebalance [--dry-run]",
		Short: "On Citus: spread the tenants that are not pinned evenly over the nodes",
		Long: `On Citus: run Citus's rebalancer so that the nodes that take tenants hold about as many
live tenants each. Tenants pinned by erpctl tenant move stay where they are; the others move
whole, schema, tables and rows, while the data API and the daemon keep serving them. Archived
tenants (erpctl tenant delete) do not count and stay where they are, or go back to the node
their tenant was pinned to; such a move is listed as "(archive)". Each move is recorded in the
tenant's events (erpctl tenant show SLUG).

With --dry-run it lists the moves Citus plans and makes none. On plain PostgreSQL this command
refuses: there is one node.`,
		Example: `  erpctl db rebalance --dry-run
  erpctl db rebalance`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return dbRebalanceRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "list the moves the rebalancer would make, and make none")
	return cmd
}

func dbRebalanceRun(ctx context.Context, opts *DBRebalanceOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := p.Rebalance(ctx, controlplane.RebalanceOptions{DryRun: opts.DryRun})
	if res != nil && err != nil && len(res.Moves) > 0 {
		// Part done: what did move is in the catalog; say so before the error.
		fmt.Fprintf(opts.IO.ErrOut, "moved before the failure: %s\n", plural(len(res.Moves), "tenant", "tenants"))
	}
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, res, func() error {
		st := opts.IO.Styles()
		out := opts.IO.Out
		switch {
		case len(res.Moves) == 0:
			fmt.Fprintln(out, "Nothing to move: the tenants that are not pinned are spread evenly")
			return nil
		case res.DryRun:
			fmt.Fprintf(out, "Would move %s (nothing moved; run without --dry-run to move them):\n", plural(len(res.Moves), "tenant", "tenants"))
		default:
			fmt.Fprintf(out, "%s Moved %s in %s:\n", st.Success.Render("✓"), plural(len(res.Moves), "tenant", "tenants"), humanDuration(res.Duration))
		}
		tbl := opts.IO.NewTable("tenant", "from", "to")
		for _, m := range res.Moves {
			name := m.Tenant
			if m.Archived {
				name += " (archive)"
			}
			tbl.Row(name, m.From, m.To)
		}
		return tbl.Render()
	})
}
