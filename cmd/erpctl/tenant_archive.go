package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// ---- tenant list --archived ----

func tenantListArchivedRun(ctx context.Context, opts *TenantListOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	archives, err := p.ListArchives(ctx)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, archives, func() error {
		if len(archives) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "No archived tenants.")
			return nil
		}
		now := opts.Now()
		tbl := opts.IO.NewTable("slug", "archive schema", "modules", "tokens", "archived")
		for _, a := range archives {
			mods := strings.Join(a.Modules, ",")
			if mods == "" {
				mods = "(all)"
			}
			tbl.Row(a.Slug, a.Schema, mods, strconv.Itoa(a.Tokens), ago(now, &a.ArchivedAt))
		}
		return tbl.Render()
	})
}

// ---- tenant restore ----

// TenantRestoreOptions are the inputs of tenant restore.
type TenantRestoreOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug ident.Slug
}

// NewCmdTenantRestore parses tenant restore; runF replaces the run in tests.
func NewCmdTenantRestore(f *Factory, runF func(*TenantRestoreOptions) error) *cobra.Command {
	opts := &TenantRestoreOptions{IO: f.IO, Plane: f.Plane}
	return &cobra.Command{
		Use:   "restore SLUG",
		Short: "Bring back a deleted (archived) tenant as it was: rows, modules and tokens",
		Args:  exactArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug, opts.Format = slug, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return tenantRestoreRun(cmd.Context(), opts)
		},
	}
}

func tenantRestoreRun(ctx context.Context, opts *TenantRestoreOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	t, err := p.RestoreTenant(ctx, opts.Slug)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, t, func() error {
		st := opts.IO.Styles()
		fmt.Fprintf(opts.IO.Out, "%s Restored tenant %s (schema %s) with its rows and tokens: %s\n",
			st.Success.Render("✓"), st.Bold.Render(t.Slug), t.Schema, st.Status(t.Status))
		return nil
	})
}

// ---- tenant purge ----

// TenantPurgeOptions are the inputs of tenant purge.
type TenantPurgeOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	Slug      ident.Slug // zero with OlderThan
	OlderThan time.Duration
	Yes       bool
}

// NewCmdTenantPurge parses tenant purge; runF replaces the run in tests.
func NewCmdTenantPurge(f *Factory, runF func(*TenantPurgeOptions) error) *cobra.Command {
	opts := &TenantPurgeOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	var olderThan string
	cmd := &cobra.Command{
		Use:   "purge [SLUG] --yes | purge --older-than 30d --yes",
		Short: "Drop an archived tenant's schema and rows for good; the slug becomes free",
		Long: `Drop archived tenants for good: their schema, every row in it and their tokens. This is the
only command that destroys a tenant's rows; tenant delete only archives. Give a slug, or
--older-than DURATION (30d, 12h, 90m) for every tenant archived longer ago than that.`,
		Example: "  erpctl tenant purge acme --yes\n  erpctl tenant purge --older-than 30d --yes",
		Args:    maxArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			switch {
			case len(args) == 1 && olderThan != "":
				return usageErrorf("give a slug or --older-than, not both")
			case len(args) == 1:
				slug, err := parseSlug(args[0])
				if err != nil {
					return err
				}
				opts.Slug = slug
			case olderThan == "":
				return usageErrorf("give the slug of an archived tenant, or --older-than DURATION")
			default:
				d, err := parseAge(olderThan)
				if err != nil {
					return usageErrorf("--older-than %q: %v", olderThan, err)
				}
				opts.OlderThan = d
			}
			if runF != nil {
				return runF(opts)
			}
			return tenantPurgeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "", "purge every tenant archived longer ago than this (30d, 12h)")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "confirm: drop the archived schema and every row in it")
	return cmd
}

// parseAge reads a duration that may be given in days ("30d") as well as Go's units.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("not a number of days")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("not a duration such as 30d or 12h")
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("the age must be more than zero")
	}
	return d, nil
}

func tenantPurgeRun(ctx context.Context, opts *TenantPurgeOptions) error {
	if !opts.Yes {
		what := fmt.Sprintf("tenant %q", opts.Slug)
		if opts.Slug.IsZero() {
			what = "tenants archived more than " + opts.OlderThan.String() + " ago"
		}
		return usageErrorf("refusing to purge %s without --yes: it drops the archived schema and every row in it", what)
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	var purged []controlplane.Archive
	if opts.Slug.IsZero() {
		purged, err = p.PurgeArchivedBefore(ctx, opts.Now().Add(-opts.OlderThan))
	} else {
		var a *controlplane.Archive
		if a, err = p.PurgeTenant(ctx, opts.Slug); a != nil {
			purged = []controlplane.Archive{*a}
		}
	}
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, purged, func() error {
		if len(purged) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "No archived tenant is that old; nothing purged.")
			return nil
		}
		for _, a := range purged {
			fmt.Fprintf(opts.IO.Out, "%s Purged tenant %s: dropped schema %s\n", opts.IO.Styles().Success.Render("✓"), a.Slug, a.Schema)
		}
		return nil
	})
}
