package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// TenantMoveOptions are the inputs of tenant move.
type TenantMoveOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug  ident.Slug
	Node  string // HOST:PORT of the Citus worker to move to
	Unpin bool
}

// NewCmdTenantMove parses tenant move; runF replaces the run in tests.
func NewCmdTenantMove(f *Factory, runF func(*TenantMoveOptions) error) *cobra.Command {
	opts := &TenantMoveOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "move SLUG --node HOST:PORT | --unpin",
		Short: "On Citus: move a tenant to another node and pin it there, or unpin it",
		Long: `On Citus: move a tenant's schema, tables and rows, to another worker with citus_schema_move,
and pin it there, so that erpctl db rebalance leaves it where you put it. The data API and the
daemon keep serving the tenant while its rows are copied; writes wait only for the switch at
the end. Moving a tenant to the node it is on pins it without a move.

With --unpin the tenant stays where it is, and the next erpctl db rebalance may move it again.

erpctl db status lists the nodes, with how many tenants each holds. On plain PostgreSQL this
command refuses: there is one node.`,
		Example: `  erpctl tenant move acme --node 10.0.0.12:5432
  erpctl tenant move acme --unpin`,
		Args: exactArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug, opts.Format = slug, f.Format()
			switch {
			case opts.Unpin && opts.Node != "":
				return usageErrorf("--node and --unpin do not go together: --unpin leaves the tenant where it is")
			case !opts.Unpin && opts.Node == "":
				return usageErrorf("say where to move tenant %q with --node HOST:PORT (erpctl db status lists the nodes), or --unpin it", slug)
			}
			if runF != nil {
				return runF(opts)
			}
			return tenantMoveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Node, "node", "", "the Citus worker to move the tenant to, as HOST:PORT the way db status shows it")
	cmd.Flags().BoolVar(&opts.Unpin, "unpin", false, "unpin the tenant instead, so that db rebalance may move it")
	return cmd
}

func tenantMoveRun(ctx context.Context, opts *TenantMoveOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	st := opts.IO.Styles()
	if opts.Unpin {
		t, err := p.UnpinTenant(ctx, opts.Slug)
		if err != nil {
			return err
		}
		return opts.IO.Render(opts.Format, t, func() error {
			fmt.Fprintf(opts.IO.Out, "%s Tenant %s is not pinned: it stays on %s, and erpctl db rebalance may move it\n",
				st.Success.Render("✓"), st.Bold.Render(t.Slug), orDash(t.Node))
			return nil
		})
	}
	res, err := p.MoveTenant(ctx, opts.Slug, opts.Node)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, res, func() error {
		if !res.Moved {
			fmt.Fprintf(opts.IO.Out, "%s Tenant %s is on %s already; pinned there, so erpctl db rebalance leaves it\n",
				st.Success.Render("✓"), st.Bold.Render(res.Tenant), res.To)
			return nil
		}
		fmt.Fprintf(opts.IO.Out, "%s Moved tenant %s from %s to %s in %s; pinned there, so erpctl db rebalance leaves it\n",
			st.Success.Render("✓"), st.Bold.Render(res.Tenant), orDash(res.From), res.To, humanDuration(res.Duration))
		return nil
	})
}
