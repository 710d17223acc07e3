package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

func newCmdDebug(f *Factory) *cobra.Command {
	return newGroupCmd("debug", "Inspect a tenant schema against its modules", NewCmdDebugTables(f, nil))
}

// DebugTablesOptions are the inputs of debug tables.
type DebugTablesOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug     ident.Slug
	Fix      bool
	Selector string
	Yes      bool
	sel      labels.Selector
}

// NewCmdDebugTables parses debug tables; runF replaces the run in tests.
func NewCmdDebugTables(f *Factory, runF func(*DebugTablesOptions) error) *cobra.Command {
	opts := &DebugTablesOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "tables SLUG [--fix] | -l SELECTOR [--fix]",
		Short: "Report each table of a tenant: ok, missing, drifted or unmanaged",
		Long: `Report each table of a tenant schema against the tables its modules declare in the module
generation the tenant has applied: ok, missing, drifted (it differs from the declaration) or
unmanaged (no module declares it; left alone). A newer generation still to come is not drift:
the report says so. Exits 1 when a table is missing or drifted.

With --fix, repair the tenant toward its own generation (destructive changes excepted), print
what was applied and report the tables again. A fix rolls nothing out: erpctl reconcile SLUG
brings a tenant to the latest generation.

With -l, every tenant whose labels match the selector, one line each (the tables of those that
are unhealthy, -o json gives them all); --fix then repairs each, after a yes on the terminal or
--yes when there is more than one.`,
		Example: "  erpctl debug tables acme\n  erpctl debug tables acme --fix\n  erpctl debug tables -l tier=free",
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.Selector != "" {
				return noArgs(cmd, args)
			}
			return exactArgs("SLUG")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if opts.Selector != "" {
				sel, err := parseSelector(opts.Selector)
				if err != nil {
					return err
				}
				opts.sel = sel
				if runF != nil {
					return runF(opts)
				}
				return debugTablesManyRun(cmd.Context(), opts)
			}
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug = slug
			if runF != nil {
				return runF(opts)
			}
			return debugTablesRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Fix, "fix", false, "repair the tenant toward its own generation, then report again")
	addSelectorFlag(cmd, &opts.Selector)
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "with -l --fix: repair every matching tenant without asking")
	return cmd
}

// fixedReport is debug tables --fix as one document: the report after the fix (tenant,
// healthy, tables), what the fix did, and the report before it.
type fixedReport struct {
	*controlplane.TablesReport
	Fix    *controlplane.Result       `json:"fix"`
	Before *controlplane.TablesReport `json:"before"`
}

func debugTablesRun(ctx context.Context, opts *DebugTablesOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	report, err := p.DebugTables(ctx, opts.Slug)
	if err != nil {
		return err
	}
	if !opts.Fix {
		if err := opts.IO.Render(opts.Format, report, func() error { return printTablesReport(opts.IO, report) }); err != nil {
			return err
		}
		return unhealthy(report)
	}
	res, err := p.Reconcile(ctx, opts.Slug, controlplane.ReconcileOptions{Target: controlplane.TargetApplied, Cause: "erpctl debug tables --fix"})
	if err != nil {
		return err
	}
	after, err := p.DebugTables(ctx, opts.Slug)
	if err != nil {
		return err
	}
	doc := fixedReport{TablesReport: after, Fix: res, Before: report}
	err = opts.IO.Render(opts.Format, doc, func() error {
		st := opts.IO.Styles()
		out := opts.IO.Out
		if err := printTablesReport(opts.IO, report); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%s %s\n", st.Bold.Render("Fix:"), st.Status(res.Action))
		switch {
		case res.Action == controlplane.ActionFailed:
			fmt.Fprintf(out, "  %s\n", oneSentence(res.Error))
		case len(res.SQL) == 0 && res.Action != controlplane.ActionBlocked:
			fmt.Fprintln(out, "  nothing to apply")
		}
		for _, s := range res.SQL {
			fmt.Fprintln(out, indent(s+";", "  "))
		}
		if len(res.Destructive) > 0 {
			fmt.Fprintf(out, "  %s\n", st.Error.Render("-- not applied, destructive (erpctl reconcile "+opts.Slug.String()+" --allow-destructive):"))
			for _, s := range res.Destructive {
				fmt.Fprintln(out, indent(s+";", "  "))
			}
		}
		fmt.Fprintf(out, "\n%s\n", st.Bold.Render("After the fix"))
		return printTablesReport(opts.IO, after)
	})
	if err != nil {
		return err
	}
	if res.Action == controlplane.ActionFailed {
		return failedf("fixing tenant %q failed: %s", opts.Slug, res.Error)
	}
	return unhealthy(after)
}

// debugSummary is one tenant's line of debug tables -l.
type debugSummary struct {
	*controlplane.TablesReport
	Missing   int                  `json:"missing"`
	Drifted   int                  `json:"drifted"`
	Unmanaged int                  `json:"unmanaged"`
	Fix       *controlplane.Result `json:"fix,omitempty"`
	Error     string               `json:"error,omitempty"`
}

// debugTablesManyRun is debug tables -l: a summary per selected tenant, each fixed with --fix.
func debugTablesManyRun(ctx context.Context, opts *DebugTablesOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	slugs, err := selectedSlugs(ctx, p, targets{Selector: opts.sel, selText: opts.Selector})
	if err != nil {
		if !opts.Fix {
			var e *exitError
			if errors.As(err, &e) && e.code == exitFail {
				fmt.Fprintf(opts.IO.ErrOut, "No tenant matches the selector %q.\n", opts.Selector)
				return opts.IO.Render(opts.Format, []debugSummary{}, func() error { return nil })
			}
		}
		return err
	}
	if opts.Fix {
		if err := confirmMany(opts.IO, opts.Yes, "Repair the tables", slugs); err != nil {
			return err
		}
	}
	var out []debugSummary
	var bad []string
	for _, slug := range slugs {
		s := debugSummary{}
		if opts.Fix {
			res, err := p.Reconcile(ctx, slug, controlplane.ReconcileOptions{Target: controlplane.TargetApplied, Cause: "erpctl debug tables --fix"})
			if err == nil {
				s.Fix = res
			}
		}
		rep, err := p.DebugTables(ctx, slug)
		if err != nil {
			s.TablesReport, s.Error = &controlplane.TablesReport{Tenant: slug.String()}, err.Error()
		} else {
			s.TablesReport = rep
		}
		for _, t := range s.Tables {
			switch t.Status {
			case "missing":
				s.Missing++
			case "drifted":
				s.Drifted++
			case "unmanaged":
				s.Unmanaged++
			}
		}
		if !s.Healthy || s.Error != "" {
			bad = append(bad, slug.String())
		}
		out = append(out, s)
	}
	err = opts.IO.Render(opts.Format, out, func() error {
		st := opts.IO.Styles()
		tbl := opts.IO.NewTable("tenant", "health", "missing", "drifted", "unmanaged", "status", "fix")
		for _, s := range out {
			health := st.Success.Render("healthy")
			if !s.Healthy {
				health = st.Error.Render("unhealthy")
			}
			if s.Error != "" {
				health = st.Error.Render(term.Safe(firstLine(s.Error)))
			}
			fix := "-"
			if s.Fix != nil {
				fix = fmt.Sprintf("%s, %s", s.Fix.Action, plural(len(s.Fix.SQL), "statement", "statements"))
			}
			tbl.Row(s.Tenant, health, fmt.Sprint(s.Missing), fmt.Sprint(s.Drifted), fmt.Sprint(s.Unmanaged), st.Status(orDash(s.Status)), fix)
		}
		if err := tbl.Render(); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "%s: %d healthy, %d unhealthy\n", plural(len(out), "tenant", "tenants"), len(out)-len(bad), len(bad))
		return nil
	})
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return failedf("%s unhealthy: %s (erpctl debug tables SLUG shows the tables)", plural(len(bad), "tenant is", "tenants are"), listNames(bad, 10))
	}
	return nil
}

func unhealthy(r *controlplane.TablesReport) error {
	if r.Healthy {
		return nil
	}
	n := 0
	for _, t := range r.Tables {
		if t.Status == "missing" || t.Status == "drifted" {
			n++
		}
	}
	return failedf("tenant %q is unhealthy: %s missing or drifted (fix with: erpctl debug tables %s --fix)",
		r.Tenant, plural(n, "table", "tables"), r.Tenant)
}

func printTablesReport(io *term.IOStreams, r *controlplane.TablesReport) error {
	st := io.Styles()
	tbl := io.NewTable("module", "table", "status", "details")
	for _, t := range r.Tables {
		tbl.Row(orDash(t.Module), t.Table, st.Status(t.Status), t.Details)
	}
	if tbl.Len() > 0 {
		if err := tbl.Render(); err != nil {
			return err
		}
	}
	verdict := st.Success.Render("healthy")
	if !r.Healthy {
		verdict = st.Error.Render("unhealthy")
	}
	fmt.Fprintf(io.Out, "Tenant %s: %s\n", r.Tenant, verdict)
	if r.Status != "" {
		fmt.Fprintf(io.Out, "Status: %s (%s)\n", st.Status(r.Status), r.Reason)
	}
	switch {
	case r.Generation != nil && r.TargetGeneration != nil:
		fmt.Fprintf(io.Out, "Module generation: %d (compared with it; the latest, %d, is not applied yet)\n", *r.Generation, *r.TargetGeneration)
	case r.Generation != nil:
		fmt.Fprintf(io.Out, "Module generation: %d (the latest)\n", *r.Generation)
	}
	if r.LastError != nil && r.Status != controlplane.StatusReady {
		fmt.Fprintf(io.Out, "  %s\n", oneSentence(*r.LastError))
	}
	if ev := r.LastRepair; ev != nil {
		fmt.Fprintf(io.Out, "Last repair: %s %s %s, %s\n", ev.At.Format(time.RFC3339), ev.Kind, ev.Outcome, term.Safe(*ev.Reason))
	}
	return nil
}
