package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// TenantLabelOptions are the inputs of tenant label.
type TenantLabelOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug      ident.Slug
	Edits     []labels.Edit
	Overwrite bool
}

// NewCmdTenantLabel parses tenant label; runF replaces the run in tests.
func NewCmdTenantLabel(f *Factory, runF func(*TenantLabelOptions) error) *cobra.Command {
	opts := &TenantLabelOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "label SLUG KEY=VALUE... | KEY-...",
		Short: "Set or remove a tenant's labels, as kubectl label does",
		Long: `Set (KEY=VALUE) or remove (KEY-) labels of a tenant. Keys and values follow Kubernetes' rules:
a key is an optional DNS-subdomain prefix and '/', then at most 63 letters, digits, '-', '_' and
'.', starting and ending with a letter or digit; a value is empty or the same without the prefix.
Changing a label's value needs --overwrite. Selectors (-l) and deployment stages match labels.`,
		Example: "  erpctl tenant label acme tier=free region=eu\n  erpctl tenant label acme tier=pro --overwrite\n  erpctl tenant label acme region-",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%s needs a tenant SLUG and at least one KEY=VALUE or KEY-", cmdPath(cmd))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			edits, err := labels.ParseEdits(args[1:])
			if err != nil {
				return badInput(err)
			}
			opts.Slug, opts.Edits, opts.Format = slug, edits, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return tenantLabelRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Overwrite, "overwrite", false, "change the value of a label the tenant has")
	return cmd
}

func tenantLabelRun(ctx context.Context, opts *TenantLabelOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	t, err := p.LabelTenant(ctx, opts.Slug, opts.Edits, opts.Overwrite)
	if errors.Is(err, controlplane.ErrInvalid) {
		return badInput(err)
	}
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, t, func() error {
		fmt.Fprintf(opts.IO.Out, "%s Tenant %s labels: %s\n", opts.IO.Styles().Success.Render("✓"), t.Slug, orDash(t.Labels.String()))
		return nil
	})
}
