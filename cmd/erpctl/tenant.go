package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
	"github.com/erpctl/erpctl/modules"
)

// openPlane is how commands reach the control plane (a Factory method, or a fake in tests).
type openPlane func(context.Context) (*controlplane.Plane, error)

func newCmdTenant(f *Factory) *cobra.Command {
	return newGroupCmd("tenant", "Create, list, show, label, delete (archive), restore, purge, export, import and move tenants; enable and disable their modules; set their limits, see their usage",
		NewCmdTenantCreate(f, nil),
		NewCmdTenantList(f, nil),
		NewCmdTenantShow(f, nil),
		NewCmdTenantLabel(f, nil),
		NewCmdTenantDelete(f, nil),
		NewCmdTenantEnableModule(f, nil),
		NewCmdTenantDisableModule(f, nil),
		NewCmdTenantRestore(f, nil),
		NewCmdTenantPurge(f, nil),
		NewCmdTenantExport(f, nil),
		NewCmdTenantImport(f, nil),
		NewCmdTenantMove(f, nil),
		NewCmdTenantLimits(f, nil),
		NewCmdTenantTop(f, nil),
	)
}

// ---- tenant create ----

// TenantCreateOptions are the inputs of tenant create.
type TenantCreateOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug         ident.Slug
	Name         string
	Modules      []string
	ModulesGiven bool   // --modules was on the command line, even if empty
	From         string // --from: clone this tenant's schema and rows
	ModulesDir   string // --modules-dir, for the note when it differs from the latest generation
	LabelArgs    []string
	Labels       labels.Labels
	CopyLabels   bool // --from: the template's labels too
}

// NewCmdTenantCreate parses tenant create; runF replaces the run in tests.
func NewCmdTenantCreate(f *Factory, runF func(*TenantCreateOptions) error) *cobra.Command {
	opts := &TenantCreateOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "create SLUG",
		Short: "Create a tenant: its schema and every table of its modules",
		Long: `Create a tenant: its schema and every table of its modules, in one transaction. The tenant
is Ready when the command returns.

A slug is 2 to 50 characters of lowercase letters, digits and '-', starts with a letter, does
not end with '-' or contain '--', and is not reserved (public, erpctl, admin, api,
information-schema, pg-*). Without --modules the tenant gets every module, including modules
added later.`,
		Example: "  erpctl tenant create acme --name 'ACME Corp' --label tier=free --label region=eu\n  erpctl tenant create globex --modules inventory\n" +
			"  erpctl tenant create initech --from demo",
		Args: exactArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug, opts.Format, opts.ModulesDir = slug, f.Format(), f.ModulesDir
			opts.ModulesGiven = cmd.Flags().Changed("modules")
			if opts.Labels, err = labels.ParseSet(opts.LabelArgs); err != nil {
				return badInput(err)
			}
			if cmd.Flags().Changed("copy-labels") && opts.From == "" {
				return usageErrorf("--copy-labels goes with --from: it takes the template's labels")
			}
			if runF != nil {
				return runF(opts)
			}
			return tenantCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", fmt.Sprintf("display name, up to %d characters (default: the slug)", controlplane.MaxTenantNameLen))
	cmd.Flags().StringSliceVar(&opts.Modules, "modules", nil, "modules to enable, comma-separated, with what they depend on (default: every module, now and later)")
	_ = cmd.RegisterFlagCompletionFunc("modules", f.completeModules)
	cmd.Flags().StringVar(&opts.From, "from", "", "clone this tenant: its modules, labels and every row, copied inside the database in one transaction")
	cmd.Flags().StringArrayVar(&opts.LabelArgs, "label", nil, "a label KEY=VALUE (repeat it for more); with --from, on top of the template's")
	cmd.Flags().BoolVar(&opts.CopyLabels, "copy-labels", true, "with --from: take the template's labels (--copy-labels=false for only --label's)")
	return cmd
}

func tenantCreateRun(ctx context.Context, opts *TenantCreateOptions) error {
	if opts.From != "" {
		return tenantCloneRun(ctx, opts)
	}
	var mods []string
	for _, m := range opts.Modules {
		if m = strings.TrimSpace(m); m == "" {
			return usageErrorf("--modules %q names an empty module: separate module names with single commas, or leave out --modules for every module", strings.Join(opts.Modules, ","))
		}
		mods = append(mods, m)
	}
	if opts.ModulesGiven && len(mods) == 0 {
		return usageErrorf("--modules names no module: leave it out for every module")
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	noteFilesDiffer(ctx, opts.IO, p, opts.ModulesDir)
	t, err := p.CreateTenant(ctx, controlplane.CreateOptions{Slug: opts.Slug, Name: opts.Name, Modules: mods, Labels: opts.Labels})
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, t, func() error {
		st := opts.IO.Styles()
		fmt.Fprintf(opts.IO.Out, "%s Created tenant %s (schema %s) with modules %s: %s\n",
			st.Success.Render("✓"), st.Bold.Render(t.Slug), t.Schema, strings.Join(t.Modules, ", "), st.Status(t.Status))
		return nil
	})
}

// ---- tenant list ----

// TenantListOptions are the inputs of tenant list.
type TenantListOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	Archived bool // list archived (deleted) tenants instead
	Selector string
	Columns  []string // -L: label keys shown as columns
}

// NewCmdTenantList parses tenant list; runF replaces the run in tests.
func NewCmdTenantList(f *Factory, runF func(*TenantListOptions) error) *cobra.Command {
	opts := &TenantListOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tenants with their schema, status, generation, modules and last reconcile",
		Example: "  erpctl tenant list\n  erpctl tenant list -l 'tier=free,region in (eu)' -L tier,region\n  erpctl tenant list -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Format = f.Format()
			if opts.Selector != "" {
				if _, err := parseSelector(opts.Selector); err != nil {
					return err
				}
			}
			for _, k := range opts.Columns {
				if err := labels.ValidateKey(k); err != nil {
					return badInput(fmt.Errorf("-L: %w", err))
				}
			}
			if opts.Archived && (opts.Selector != "" || len(opts.Columns) > 0) {
				return usageErrorf("--archived lists archived tenants; -l and -L go with live ones")
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.Archived {
				return tenantListArchivedRun(cmd.Context(), opts)
			}
			return tenantListRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Archived, "archived", false, "list deleted tenants, whose rows are kept until purged")
	cmd.Flags().StringVarP(&opts.Selector, "selector", "l", "", "list the tenants whose labels match this selector (Kubernetes' syntax: tier=free,region in (eu,us),!legacy)")
	cmd.Flags().StringSliceVarP(&opts.Columns, "label-columns", "L", nil, "show these labels as columns, comma-separated (as kubectl's -L)")
	return cmd
}

func tenantListRun(ctx context.Context, opts *TenantListOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	var sel labels.Selector
	if opts.Selector != "" {
		sel, _ = labels.ParseSelector(opts.Selector)
	}
	tenants, err := p.ListTenantsSelected(ctx, sel)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, tenants, func() error {
		switch {
		case len(tenants) == 0 && opts.Selector != "":
			fmt.Fprintf(opts.IO.ErrOut, "No tenant matches the selector %q.\n", opts.Selector)
			return nil
		case len(tenants) == 0:
			fmt.Fprintln(opts.IO.ErrOut, "No tenants yet; create one with: erpctl tenant create SLUG")
			return nil
		}
		st := opts.IO.Styles()
		now := opts.Now()
		// On Citus, where each tenant is; on plain PostgreSQL there is one node and no column.
		citus := slices.ContainsFunc(tenants, func(t controlplane.Tenant) bool { return t.Node != "" })
		cols := []string{"slug", "schema", "status", "generation", "modules", "last reconcile"}
		if citus {
			cols = append(cols, "node")
		}
		for _, k := range opts.Columns {
			cols = append(cols, strings.ToUpper(k))
		}
		tbl := opts.IO.NewTable(cols...)
		for _, t := range tenants {
			status := st.Status(t.Status)
			if t.Reason == controlplane.ReasonRolloutHalted {
				// Ready, but held at its schema by a halted rollout: say so where operators look.
				status += " (rollout halted)"
			}
			row := []string{t.Slug, t.Schema, status, generationText(&t), strings.Join(t.Modules, ","), ago(now, t.LastReconciledAt)}
			if citus {
				row = append(row, nodeText(&t))
			}
			for _, k := range opts.Columns {
				row = append(row, t.Labels[k])
			}
			tbl.Row(row...)
		}
		return tbl.Render()
	})
}

// ---- tenant show ----

// TenantShowOptions are the inputs of tenant show.
type TenantShowOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	Slug ident.Slug
}

// tenantDetail is what tenant show prints: the tenant and its last events.
type tenantDetail struct {
	*controlplane.Tenant
	Events []controlplane.Event `json:"events"`
}

// NewCmdTenantShow parses tenant show; runF replaces the run in tests.
func NewCmdTenantShow(f *Factory, runF func(*TenantShowOptions) error) *cobra.Command {
	opts := &TenantShowOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	return &cobra.Command{
		Use:   "show SLUG",
		Short: "Show a tenant: status, modules, last error, blocked SQL and its last 10 events",
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
			return tenantShowRun(cmd.Context(), opts)
		},
	}
}

func tenantShowRun(ctx context.Context, opts *TenantShowOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	t, err := p.GetTenant(ctx, opts.Slug)
	if err != nil {
		return err
	}
	events, err := p.TenantEvents(ctx, opts.Slug, 10)
	if err != nil {
		return err
	}
	if events == nil {
		events = []controlplane.Event{}
	}
	d := tenantDetail{Tenant: t, Events: events}
	return opts.IO.Render(opts.Format, d, func() error { return printTenant(opts.IO, opts.Now(), d) })
}

func printTenant(io *term.IOStreams, now time.Time, d tenantDetail) error {
	st := io.Styles()
	t := d.Tenant
	mods := strings.Join(t.Modules, ", ")
	if t.FollowAll {
		mods += " (every module, now and later)"
	}
	fields := []term.Field{
		{Label: "Slug", Value: t.Slug},
		{Label: "Name", Value: t.Name},
		{Label: "Schema", Value: t.Schema},
		{Label: "Status", Value: st.Status(t.Status) + " (" + orDash(t.Reason) + ", since " + stamp(now, t.LastTransitionAt) + ")"},
		{Label: "Modules", Value: orDash(mods)},
		{Label: "Labels", Value: orDash(t.Labels.String())},
		{Label: "Generation", Value: generationDetail(t)},
		{Label: "Created", Value: stamp(now, &t.CreatedAt)},
		{Label: "Last reconcile", Value: stamp(now, t.LastReconciledAt)},
		{Label: "Last applied", Value: stamp(now, t.LastAppliedAt)},
	}
	if t.Node != "" || t.PinnedNode != "" {
		fields = append(fields, term.Field{Label: "Node", Value: nodeText(t)})
	}
	if t.Failures > 0 {
		fields = append(fields, term.Field{Label: "Failures", Value: fmt.Sprint(t.Failures)})
	}
	if t.NextAttemptAt != nil {
		fields = append(fields, term.Field{Label: "Next attempt", Value: t.NextAttemptAt.Local().Format("2006-01-02 15:04:05 MST")})
	}
	if t.LastError != nil && *t.LastError != "" {
		fields = append(fields, term.Field{Label: "Last error", Value: st.Error.Render(oneSentence(*t.LastError))})
	}
	if err := io.PrintFields(fields...); err != nil {
		return err
	}
	out := io.Out
	if t.Reason == controlplane.ReasonDestructiveChange && t.BlockedSQL != nil {
		fmt.Fprintf(out, "\n%s (nothing was applied; apply it with: erpctl reconcile %s --allow-destructive)\n",
			st.Bold.Render("Blocked on destructive SQL"), t.Slug)
		fmt.Fprintln(out, indent(safeLines(*t.BlockedSQL), "  "))
	}
	fmt.Fprintf(out, "\n%s\n", st.Bold.Render("Last events"))
	if len(d.Events) == 0 {
		fmt.Fprintln(out, "  none")
		return nil
	}
	tbl := io.NewTable("at", "kind", "outcome", "duration", "error or why")
	for _, e := range d.Events {
		errText := ""
		switch {
		case e.Error != nil:
			errText = term.Safe(firstLine(*e.Error))
		case e.Reason != nil:
			errText = term.Safe(firstLine(*e.Reason))
		}
		tbl.Row(e.At.Local().Format("2006-01-02 15:04:05"), e.Kind, st.Status(e.Outcome),
			humanDuration(time.Duration(e.DurationMS*float64(time.Millisecond))), errText)
	}
	return tbl.Render()
}

// ---- tenant delete ----

// TenantDeleteOptions are the inputs of tenant delete.
type TenantDeleteOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug ident.Slug
	Yes  bool
}

// NewCmdTenantDelete parses tenant delete; runF replaces the run in tests.
func NewCmdTenantDelete(f *Factory, runF func(*TenantDeleteOptions) error) *cobra.Command {
	opts := &TenantDeleteOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "delete SLUG --yes",
		Short: "Delete a tenant: take it out of service and archive its schema, rows and tokens",
		Long: `Delete a tenant. It leaves the data API (404, and its tokens get 401), tenant list and the
reconcile loop at once. Its schema is renamed to an archive with every row in it, and its slug
stays reserved: erpctl tenant restore SLUG brings it back as it was, erpctl tenant purge SLUG
--yes drops it for good. erpctl tenant list --archived shows the archives.`,
		Args: exactArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			slug, err := parseSlug(args[0])
			if err != nil {
				return err
			}
			opts.Slug, opts.Format = slug, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return tenantDeleteRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "confirm: take the tenant out of service (its rows are archived)")
	return cmd
}

func tenantDeleteRun(ctx context.Context, opts *TenantDeleteOptions) error {
	schema := opts.Slug.Schema()
	if !opts.Yes {
		return usageErrorf("refusing to delete tenant %q without --yes: it takes the tenant out of service (schema %s is archived with its rows)", opts.Slug, schema)
	}
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	a, err := p.ArchiveTenant(ctx, opts.Slug)
	if err != nil {
		return err
	}
	res := struct {
		Slug          string `json:"slug"`
		Schema        string `json:"schema"`
		Deleted       bool   `json:"deleted"`
		ArchiveSchema string `json:"archive_schema"`
	}{opts.Slug.String(), schema, true, a.Schema}
	return opts.IO.Render(opts.Format, res, func() error {
		fmt.Fprintf(opts.IO.Out, "%s Deleted tenant %s: schema %s is archived as %s with its rows and %s\n",
			opts.IO.Styles().Success.Render("✓"), opts.Slug, schema, a.Schema, plural(a.Tokens, "token", "tokens"))
		fmt.Fprintf(opts.IO.Out, "Restore it with: erpctl tenant restore %s   Drop it for good with: erpctl tenant purge %s --yes\n", opts.Slug, opts.Slug)
		return nil
	})
}

// ---- tenant enable-module / disable-module ----

// TenantModuleOptions are the inputs of tenant enable-module and disable-module.
type TenantModuleOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Enable     bool
	Targets    targets // one SLUG, or -l
	Module     string
	ModulesDir string // --modules-dir, for the note when it differs from the latest generation
	Selector   string
	Yes        bool
}

// NewCmdTenantEnableModule parses tenant enable-module; runF replaces the run in tests.
func NewCmdTenantEnableModule(f *Factory, runF func(*TenantModuleOptions) error) *cobra.Command {
	return newCmdTenantModule(f, runF, true)
}

// NewCmdTenantDisableModule parses tenant disable-module; runF replaces the run in tests.
func NewCmdTenantDisableModule(f *Factory, runF func(*TenantModuleOptions) error) *cobra.Command {
	return newCmdTenantModule(f, runF, false)
}

func newCmdTenantModule(f *Factory, runF func(*TenantModuleOptions) error, enable bool) *cobra.Command {
	opts := &TenantModuleOptions{IO: f.IO, Plane: f.Plane, Enable: enable}
	cmd := &cobra.Command{
		Use:   "enable-module SLUG MODULE | -l SELECTOR MODULE",
		Short: "Enable a module (and what it depends on) for a tenant, or the tenants a selector matches, and create its tables",
		Long: `Enable a module (and what it depends on) for a tenant and create its tables. With -l, for every
tenant whose labels match the selector, one after the other; more than one tenant needs a yes
on the terminal, or --yes.`,
		Example: "  erpctl tenant enable-module globex inventory\n  erpctl tenant enable-module -l tier=pro inventory --yes",
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.Selector != "" {
				return exactArgs("MODULE")(cmd, args)
			}
			return exactArgs("SLUG", "MODULE")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Selector != "" {
				sel, err := parseSelector(opts.Selector)
				if err != nil {
					return err
				}
				opts.Targets = targets{Selector: sel, selText: opts.Selector}
			} else {
				slug, err := parseSlug(args[0])
				if err != nil {
					return err
				}
				opts.Targets = targets{Slug: slug}
				args = args[1:]
			}
			opts.Module, opts.Format, opts.ModulesDir = args[0], f.Format(), f.ModulesDir
			if runF != nil {
				return runF(opts)
			}
			return tenantModuleRun(cmd.Context(), opts)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return f.completeModules(cmd, args, "")
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
	}
	addSelectorFlag(cmd, &opts.Selector)
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "with -l: change every matching tenant without asking")
	if !enable {
		cmd.Use = "disable-module SLUG MODULE | -l SELECTOR MODULE"
		cmd.Short = "Disable a module for a tenant, or the tenants a selector matches; its tables and their data are kept"
		cmd.Long = `Disable a module for a tenant. The module's tables and every row in them stay in the tenant's
schema, no longer managed by erpctl, until the module is enabled again. With -l, for every tenant
whose labels match the selector; more than one tenant needs a yes on the terminal, or --yes.`
		cmd.Example = "  erpctl tenant disable-module globex inventory\n  erpctl tenant disable-module -l tier=free inventory --yes"
	}
	return cmd
}

// moduleChange is what tenant enable-module and disable-module did to one tenant.
type moduleChange struct {
	*controlplane.Tenant
	Error string `json:"error,omitempty"`
}

func tenantModuleRun(ctx context.Context, opts *TenantModuleOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	slugs, err := selectedSlugs(ctx, p, opts.Targets)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "Enable", false: "Disable"}[opts.Enable]
	if err := confirmMany(opts.IO, opts.Yes, fmt.Sprintf("%s module %s", verb, opts.Module), slugs); err != nil {
		return err
	}
	noteFilesDiffer(ctx, opts.IO, p, opts.ModulesDir)
	if len(slugs) == 1 && !opts.Targets.many() {
		return tenantModuleOne(ctx, opts, p, slugs[0])
	}
	var changes []moduleChange
	var failed []string
	for _, slug := range slugs {
		var t *controlplane.Tenant
		if opts.Enable {
			t, err = p.EnableModule(ctx, slug, opts.Module)
		} else {
			t, err = p.DisableModule(ctx, slug, opts.Module)
		}
		c := moduleChange{Tenant: t}
		switch {
		case err != nil:
			c.Tenant, c.Error = &controlplane.Tenant{Slug: slug.String()}, err.Error()
		case t.Reason != controlplane.ReasonUpToDate:
			c.Error = fmt.Sprintf("%s (%s) after the change", t.Status, t.Reason)
		}
		if c.Error != "" {
			failed = append(failed, slug.String())
		}
		changes = append(changes, c)
	}
	err = opts.IO.Render(opts.Format, changes, func() error {
		st := opts.IO.Styles()
		tbl := opts.IO.NewTable("tenant", "status", "modules", "error")
		for _, c := range changes {
			tbl.Row(c.Slug, st.Status(orDash(c.Status)), orDash(strings.Join(c.Modules, ",")), term.Safe(firstLine(c.Error)))
		}
		if err := tbl.Render(); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "%sd module %s for %s\n", verb, opts.Module, plural(len(slugs)-len(failed), "tenant", "tenants"))
		return nil
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return failedf("%s module %s failed for %s: %s", strings.ToLower(verb), opts.Module, plural(len(failed), "tenant", "tenants"), listNames(failed, 10))
	}
	return nil
}

// tenantModuleOne enables or disables a module for one tenant named by its slug.
func tenantModuleOne(ctx context.Context, opts *TenantModuleOptions, p *controlplane.Plane, slug ident.Slug) error {
	var kept []string
	if reg, err := tenantRegistry(ctx, p, slug); err == nil {
		if m, ok := reg.Module(opts.Module); ok {
			kept = m.Tables
		}
	}
	var t *controlplane.Tenant
	var err error
	if opts.Enable {
		t, err = p.EnableModule(ctx, slug, opts.Module)
	} else {
		t, err = p.DisableModule(ctx, slug, opts.Module)
	}
	if err != nil {
		return err
	}
	err = opts.IO.Render(opts.Format, t, func() error {
		st := opts.IO.Styles()
		out := opts.IO.Out
		if opts.Enable {
			fmt.Fprintf(out, "%s Enabled module %s for tenant %s; modules now: %s; status %s\n", st.Success.Render("✓"),
				opts.Module, t.Slug, strings.Join(t.Modules, ", "), st.Status(t.Status))
			return nil
		}
		fmt.Fprintf(out, "%s Disabled module %s for tenant %s; modules now: %s; status %s\n", st.Success.Render("✓"),
			opts.Module, t.Slug, orDash(strings.Join(t.Modules, ", ")), st.Status(t.Status))
		fmt.Fprintf(out, "Its tables (%s) and their data are kept in schema %s, no longer managed; enable the module again to manage them.\n",
			strings.Join(kept, ", "), t.Schema)
		return nil
	})
	if err != nil {
		return err
	}
	if t.Reason != controlplane.ReasonUpToDate {
		reason := ""
		if t.LastError != nil {
			reason = ": " + *t.LastError
		}
		return failedf("tenant %q is %s (%s) after the change%s", t.Slug, t.Status, t.Reason, reason)
	}
	return nil
}

// completeModules completes module names from the built-ins and --modules-dir.
func (f *Factory) completeModules(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	if f.ModulesDir == "" {
		f.ModulesDir = f.Getenv(envModulesDir) // completion skips the pre-run hooks
	}
	reg, err := f.Registry()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return slices.Clone(reg.Names()), cobra.ShellCompDirectiveNoFileComp
}

// generationText is a tenant's generation as a list shows it: "3", or "3 → 4" while the latest
// is still to come, "- → 4" for a tenant no reconcile has recorded at one yet.
func generationText(t *controlplane.Tenant) string {
	applied := "-"
	if t.Generation != nil {
		applied = strconv.FormatInt(*t.Generation, 10)
	}
	if t.TargetGeneration != nil {
		return applied + " → " + strconv.FormatInt(*t.TargetGeneration, 10)
	}
	return applied
}

// generationDetail is a tenant's generation as tenant show says it.
func generationDetail(t *controlplane.Tenant) string {
	switch {
	case t.TargetGeneration == nil && t.Generation != nil:
		return fmt.Sprintf("%d (the latest)", *t.Generation)
	case t.TargetGeneration == nil:
		return "-"
	case t.Generation == nil:
		return fmt.Sprintf("none recorded yet; the latest is %d", *t.TargetGeneration)
	}
	return fmt.Sprintf("%d; the latest, %d, is not applied yet", *t.Generation, *t.TargetGeneration)
}

// tenantRegistry is the modules of the generation a tenant has applied (the latest when none).
func tenantRegistry(ctx context.Context, p *controlplane.Plane, slug ident.Slug) (*modules.Registry, error) {
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, err
	}
	if t.Generation != nil {
		return p.ModulesAt(ctx, *t.Generation)
	}
	_, reg, err := p.LatestModules(ctx)
	return reg, err
}

// nodeText is where a tenant is on Citus, and whether tenant move pinned it there.
func nodeText(t *controlplane.Tenant) string {
	switch {
	case t.PinnedNode == "":
		return orDash(t.Node)
	case t.PinnedNode == t.Node:
		return t.Node + " (pinned)"
	default:
		// Moved by hand behind erpctl's back: the pin is where the rebalancer keeps it.
		return orDash(t.Node) + " (pinned to " + t.PinnedNode + ")"
	}
}
