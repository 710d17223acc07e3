package main

import (
	"context"
	"fmt"

	"github.com/erpctl/erpctl/controlplane"
)

// tenantCloneRun is tenant create --from: a new tenant with the template's modules and rows.
func tenantCloneRun(ctx context.Context, opts *TenantCreateOptions) error {
	if opts.ModulesGiven {
		return usageErrorf("--from and --modules do not go together: a clone has its template's modules")
	}
	from, err := parseSlug(opts.From)
	if err != nil {
		return err
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	noteFilesDiffer(ctx, opts.IO, p, opts.ModulesDir)
	t, counts, err := p.CloneTenant(ctx, controlplane.CreateOptions{Slug: opts.Slug, Name: opts.Name, Labels: opts.Labels,
		NoTemplateLabels: !opts.CopyLabels}, from)
	if err != nil {
		return err
	}
	var rows int64
	for _, c := range counts {
		rows += c.Rows
	}
	return opts.IO.Render(opts.Format, t, func() error {
		st := opts.IO.Styles()
		fmt.Fprintf(opts.IO.Out, "%s Created tenant %s (schema %s) from %s: %s in %s; %s\n", st.Success.Render("✓"),
			st.Bold.Render(t.Slug), t.Schema, from, plural(int(rows), "row", "rows"), plural(len(counts), "table", "tables"), st.Status(t.Status))
		return nil
	})
}
