package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/term"
)

// ---- plan ----

// PlanOptions are the inputs of plan.
type PlanOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug     ident.Slug
	All      bool
	Workers  int
	Selector string
	targets  targets
	// DetailedExitCode: exit 3 when changes are pending, 4 when some tenant would be refused.
	DetailedExitCode bool
}

// NewCmdPlan parses plan; runF replaces the run in tests.
func NewCmdPlan(f *Factory, runF func(*PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "plan [SLUG | --all | -l SELECTOR]",
		Short: "Show the SQL each tenant needs to match the module files; nothing is applied or published",
		Long: `Show the SQL each tenant needs to match the modules this command loads (the built-ins and
--modules-dir); nothing is applied or published. Tenants that need the same SQL are shown together.

Every tenant follows the latest published module generation, not module files: when the files
are that generation, the plan is what reconcile would apply; when they differ, it is the preview
of publishing them (erpctl module publish), and plan says so.`,
		Example: "  erpctl plan acme\n  erpctl plan --all\n  erpctl plan -l tier=free",
		Args:    maxArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTargets(cmd, args, opts.All, opts.Selector)
			if err != nil {
				return err
			}
			opts.targets, opts.Slug = t, t.Slug
			if opts.Workers < 1 {
				return usageErrorf("--workers must be at least 1, got %d", opts.Workers)
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return planRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "plan every tenant")
	cmd.Flags().IntVar(&opts.Workers, "workers", 4, "tenants planned at once")
	cmd.Flags().BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "exit 3 when changes are pending, 4 when reconcile would refuse a tenant, 0 with nothing to do")
	addSelectorFlag(cmd, &opts.Selector)
	return cmd
}

// planGroup is a set of tenants that need the same SQL.
type planGroup struct {
	Tenants     []string `json:"tenants"`
	Action      string   `json:"action"`          // unchanged, planned, blocked, failed or skipped
	SQL         []string `json:"sql"`             // every statement, in order, as it would run in each schema
	Destructive []string `json:"destructive_sql"` // those of SQL that reconcile applies only with --allow-destructive
	Steps       []string `json:"steps"`           // migration steps that would run, as module/name
	Seeds       []string `json:"seeds"`           // seed rows the tenants would get: "TABLE: N rows"
	// DataDependent marks the changes whose success depends on the rows (Atlas's analyzer code
	// and text): each tenant's rows are counted before they are applied.
	DataDependent []string `json:"data_dependent"`
	// DataChecks are the data-dependent changes the group's rows fail, with counts: reconcile
	// applies nothing to these tenants.
	DataChecks []string `json:"data_checks"`
	Error      string   `json:"error,omitempty"`
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	ro := controlplane.ReconcileOptions{DryRun: true, IgnoreBackoff: true, Workers: opts.Workers, Modules: p.LocalModules(),
		Selector: opts.targets.Selector}
	differ, gen, err := p.FilesDiffer(ctx)
	if err != nil {
		return err
	}
	var results []controlplane.Result
	if opts.targets.many() {
		pass, err := p.ReconcileAll(ctx, ro)
		if err != nil {
			return err
		}
		results = pass.Results
	} else {
		r, err := p.Reconcile(ctx, opts.Slug, ro)
		if err != nil {
			return err
		}
		results = []controlplane.Result{*r}
	}
	groups := groupPlans(results)
	if len(results) == 0 && opts.Selector != "" {
		fmt.Fprintf(opts.IO.ErrOut, "No tenant matches the selector %q.\n", opts.Selector)
	}
	if err := opts.IO.Render(opts.Format, groups, func() error {
		if differ {
			fmt.Fprintf(opts.IO.Out, "%s\n\n", opts.IO.Styles().Bold.Render(fmt.Sprintf(
				"The module files differ from generation %d, the latest published: this is what publishing them would do "+
					"(erpctl module publish; erpctl module diff shows the HCL).", gen)))
		}
		return printPlan(opts.IO, groups)
	}); err != nil {
		return err
	}
	return planExit(groups, opts.DetailedExitCode)
}

// planOf is what a dry run says a tenant needs. SQL and destructive SQL come unqualified, so
// tenants in the same state compare equal.
func planOf(r controlplane.Result) planGroup {
	g := planGroup{Tenants: []string{}, Action: r.Action, SQL: r.SQL, Destructive: r.Destructive, Steps: r.Steps, Seeds: r.Seeds,
		DataChecks: []string{}, Error: r.Error}
	if g.Seeds == nil {
		g.Seeds = []string{}
	}
	for _, f := range r.DataChecks {
		g.DataChecks = append(g.DataChecks, f.Message)
	}
	if g.Steps == nil {
		g.Steps = []string{}
	}
	g.DataDependent = append([]string{}, r.DataDependent...)
	if g.SQL == nil {
		g.SQL = []string{}
	}
	if g.Destructive == nil {
		g.Destructive = []string{}
	}
	return g
}

// groupPlans groups tenants by identical plan, in order of their first tenant's slug.
func groupPlans(results []controlplane.Result) []planGroup {
	slices.SortFunc(results, func(a, b controlplane.Result) int { return strings.Compare(a.Tenant, b.Tenant) })
	groups := []planGroup{}
	index := map[string]int{}
	for _, r := range results {
		g := planOf(r)
		key := strings.Join([]string{g.Action, strings.Join(g.SQL, ";\x00"), strings.Join(g.Destructive, ";\x00"), g.Error,
			strings.Join(g.Steps, "\x00"), strings.Join(g.Seeds, "\x00"), strings.Join(g.DataChecks, "\x00"), strings.Join(g.DataDependent, "\x00")}, "\x01")
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, g)
		}
		groups[i].Tenants = append(groups[i].Tenants, r.Tenant)
	}
	return groups
}

func printPlan(io *term.IOStreams, groups []planGroup) error {
	out := io.Out
	st := io.Styles()
	if len(groups) == 0 {
		fmt.Fprintln(out, "No tenants.")
		return nil
	}
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(out)
		}
		who := plural(len(g.Tenants), "tenant", "tenants")
		if g.Action != controlplane.ActionUnchanged {
			who += " (" + listNames(g.Tenants, 10) + ")"
		}
		switch {
		case g.Action == controlplane.ActionFailed || g.Action == controlplane.ActionSkipped:
			fmt.Fprintf(out, "%s: %s: %s\n", who, st.Status(g.Action), oneSentence(g.Error))
			continue
		case g.Action == controlplane.ActionUnchanged:
			fmt.Fprintf(out, "%s: %s\n", who, st.Success.Render("no changes"))
			continue
		case len(g.Destructive) > 0 && len(g.DataChecks) > 0:
			fmt.Fprintf(out, "%s: %s\n", who, st.Error.Render(fmt.Sprintf(
				"blocked: %s destructive (applied only by erpctl reconcile --allow-destructive), and their rows fail a data check",
				plural(len(g.Destructive), "statement is", "statements are"))))
		case len(g.Destructive) > 0:
			fmt.Fprintf(out, "%s: %s\n", who, st.Error.Render(fmt.Sprintf(
				"blocked: %s destructive, applied only by erpctl reconcile --allow-destructive",
				plural(len(g.Destructive), "statement is", "statements are"))))
		case len(g.DataChecks) > 0:
			fmt.Fprintf(out, "%s: %s\n", who, st.Error.Render("refused: their rows fail a data check, reconcile applies nothing to them"))
		default:
			fmt.Fprintf(out, "%s:\n", who)
		}
		// Everything the JSON holds: steps, seed rows, data-dependent changes, the statements that
		// would run, the destructive ones, and the rows that fail a check.
		for _, s := range g.Steps {
			fmt.Fprintln(out, indent("migration step "+s, "  + "))
		}
		for _, s := range g.Seeds {
			fmt.Fprintln(out, indent("seed rows of "+s, "  + "))
		}
		for _, d := range g.DataDependent {
			fmt.Fprintln(out, indent("data-dependent, rows checked first: "+d, "  ~ "))
		}
		destructive := map[string]bool{}
		for _, d := range g.Destructive {
			destructive[d] = true
		}
		for _, s := range g.SQL {
			line := indent(term.Safe(s)+";", "  ")
			if destructive[s] {
				line += st.Error.Render("  -- destructive")
			}
			fmt.Fprintln(out, line)
		}
		for _, s := range g.Destructive {
			if !slices.Contains(g.SQL, s) {
				fmt.Fprintln(out, indent(term.Safe(s)+";", "  ")+st.Error.Render("  -- destructive, not applied without --allow-destructive"))
			}
		}
		for _, m := range g.DataChecks {
			fmt.Fprintln(out, st.Error.Render(indent(term.Safe(m), "  ! ")))
		}
	}
	return nil
}

// planExit is plan's exit status: 1 when a tenant could not be planned, or when reconcile would
// refuse one (blocked: a destructive change, rows that fail a data check); with detailed, 3 when
// changes are pending and every one would apply, 4 when some would be refused, 0 with nothing
// to do (as terraform plan -detailed-exitcode, whose 2 is erpctl's bad usage).
func planExit(groups []planGroup, detailed bool) error {
	var failed, refused, pending []string
	for _, g := range groups {
		switch g.Action {
		case controlplane.ActionFailed, controlplane.ActionSkipped:
			failed = append(failed, g.Tenants...)
		case controlplane.ActionBlocked:
			refused = append(refused, g.Tenants...)
		case controlplane.ActionPlanned:
			pending = append(pending, g.Tenants...)
		}
	}
	switch {
	case len(failed) > 0:
		return failedf("could not plan %s: %s", plural(len(failed), "tenant", "tenants"), listNames(failed, 10))
	case len(refused) > 0 && detailed:
		return &exitError{code: exitRefusals, err: fmt.Errorf("reconcile would refuse %s: %s (blocked; see above)", plural(len(refused), "tenant", "tenants"), listNames(refused, 10))}
	case len(refused) > 0:
		return failedf("reconcile would refuse %s: %s (blocked; see above)", plural(len(refused), "tenant", "tenants"), listNames(refused, 10))
	case len(pending) > 0 && detailed:
		return &exitError{code: exitPending, err: fmt.Errorf("changes pending for %s", plural(len(pending), "tenant", "tenants"))}
	}
	return nil
}

// plan --detailed-exitcode's statuses beside erpctl's 0, 1 and 2.
const (
	exitPending  = 3
	exitRefusals = 4
)

// ---- reconcile ----

// ReconcileOptions are the inputs of reconcile.
type ReconcileOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Slug             ident.Slug
	All              bool
	AllowDestructive bool
	Workers          int
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	Rollout          rolloutFlags
	Resume           bool
	Publish          bool
	Message          string
	ModulesDir       string // module files were given: they must be the latest generation, or published
	Selector         string
	targets          targets
}

// NewCmdReconcile parses reconcile; runF replaces the run in tests.
func NewCmdReconcile(f *Factory, runF func(*ReconcileOptions) error) *cobra.Command {
	opts := &ReconcileOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "reconcile [SLUG | --all | -l SELECTOR]",
		Short: "Bring tenants to the latest module generation, once, then exit",
		Long: `Bring a tenant, or every tenant, to the tables of its modules in the latest published module
generation: one pass, then exit. Each tenant changes in one transaction or not at all.
Destructive changes (dropped tables or columns, narrowing types) are applied only with
--allow-destructive; without it such a tenant becomes Blocked.

Module files are not what reconcile applies: with --publish it first publishes them as the next
generation (as erpctl module publish does, with its preview and its destructive check); without
it, a --modules-dir that differs from the latest generation is refused (exit 2), so that nobody
thinks they applied files nobody published. Without --modules-dir, reconcile applies the latest
generation and says so when this erpctl's built-in modules differ from it.

With --all, tenants that need the same change roll out in stages: --canary tenants first, then
waves that double the tenants done. When --max-failures of them have failed, the rollout halts:
the rest keep their schema (reason RolloutHalted) until the module changes or --resume.
Exits 1 when a tenant failed, is blocked or is held by a halted rollout.`,
		Example: "  erpctl reconcile acme\n  erpctl --modules-dir ./modules reconcile --all --publish -m \"crm: phone numbers\"\n" +
			"  erpctl reconcile --all --workers 8\n  erpctl reconcile --all --canary 10 --max-failures 1\n  erpctl reconcile --all --resume",
		Args: maxArgs("SLUG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseTargets(cmd, args, opts.All, opts.Selector)
			if err != nil {
				return err
			}
			opts.targets, opts.Slug = t, t.Slug
			if err := validateTuning(opts.Workers, opts.LockTimeout, opts.StatementTimeout); err != nil {
				return err
			}
			if err := opts.Rollout.validate(); err != nil {
				return err
			}
			if opts.Resume && !t.many() {
				return usageErrorf("--resume continues halted rollouts of reconcile --all; reconcile SLUG applies to that tenant regardless")
			}
			if opts.Message != "" && !opts.Publish {
				return usageErrorf("--message goes with --publish: it is the new generation's message")
			}
			opts.Format, opts.ModulesDir = f.Format(), f.ModulesDir
			if runF != nil {
				return runF(opts)
			}
			return reconcileRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.All, "all", false, "reconcile every tenant")
	addSelectorFlag(cmd, &opts.Selector)
	fl.BoolVar(&opts.AllowDestructive, "allow-destructive", false, "also apply drops and narrowing type changes")
	addTuningFlags(cmd, &opts.Workers, &opts.LockTimeout, &opts.StatementTimeout)
	opts.Rollout.add(cmd)
	fl.BoolVar(&opts.Resume, "resume", false, "continue rollouts that halted at --max-failures")
	fl.BoolVar(&opts.Publish, "publish", false, "publish the module files as the next generation first (see erpctl module publish)")
	fl.StringVarP(&opts.Message, "message", "m", "", "with --publish: why this generation")
	return cmd
}

func addTuningFlags(cmd *cobra.Command, workers *int, lock, stmt *time.Duration) {
	fl := cmd.Flags()
	fl.IntVar(workers, "workers", 4, "tenants reconciled at once")
	fl.DurationVar(lock, "lock-timeout", 5*time.Second, "how long a statement waits for a table lock")
	fl.DurationVar(stmt, "statement-timeout", 5*time.Minute, "how long one statement may run")
}

func validateTuning(workers int, lock, stmt time.Duration) error {
	switch {
	case workers < 1:
		return usageErrorf("--workers must be at least 1, got %d", workers)
	case lock <= 0:
		return usageErrorf("--lock-timeout must be greater than 0, got %s", lock)
	case stmt <= 0:
		return usageErrorf("--statement-timeout must be greater than 0, got %s", stmt)
	}
	return nil
}

func reconcileRun(ctx context.Context, opts *ReconcileOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := publishOrRefuse(ctx, opts, p); err != nil {
		return err
	}
	ro := controlplane.ReconcileOptions{
		AllowDestructive: opts.AllowDestructive,
		Workers:          opts.Workers,
		LockTimeout:      opts.LockTimeout,
		StatementTimeout: opts.StatementTimeout,
		IgnoreBackoff:    true, // asked for now, so now
		Canary:           opts.Rollout.Canary,
		MaxFailures:      opts.Rollout.MaxFailures,
		Resume:           opts.Resume,
		Selector:         opts.targets.Selector,
	}
	var pass *controlplane.Pass
	var passErr error // the pass was interrupted
	if opts.targets.many() {
		var bar *term.Progress
		if opts.Format == term.FormatTable {
			if tenants, err := p.ListTenants(ctx); err == nil {
				bar = opts.IO.NewProgress("reconcile", len(tenants))
				// At 100,000 tenants the read before the first tenant takes half a minute.
				bar.Note("reading and planning the tenants' schemas")
			}
		}
		ro.OnResult = func(r controlplane.Result) {
			bar.Step(r.Action == controlplane.ActionFailed || r.Action == controlplane.ActionBlocked)
		}
		pass, passErr = p.ReconcileAll(ctx, ro)
		bar.Done()
		if pass == nil {
			return passErr
		}
	} else {
		start := time.Now()
		r, err := p.Reconcile(ctx, opts.Slug, ro)
		if err != nil {
			return err
		}
		pass = &controlplane.Pass{Results: []controlplane.Result{*r}, Duration: time.Since(start),
			Counts: map[string]int{r.Action: 1}}
	}
	slices.SortFunc(pass.Results, func(a, b controlplane.Result) int { return strings.Compare(a.Tenant, b.Tenant) })
	if pass.Results == nil {
		pass.Results = []controlplane.Result{}
	}
	if len(pass.Results) == 0 && opts.Selector != "" {
		return noneSelected(opts.Selector)
	}
	var data any = pass
	if !opts.targets.many() {
		data = pass.Results[0]
	}
	if err := opts.IO.Render(opts.Format, data, func() error { return printPass(opts.IO, pass, !opts.targets.many()) }); err != nil {
		return err
	}
	if passErr != nil {
		return fmt.Errorf("reconcile interrupted after %s: %w", plural(len(pass.Results), "tenant", "tenants"), passErr)
	}
	var failed, blocked []string
	for _, r := range pass.Results {
		switch {
		case r.Action == controlplane.ActionFailed:
			failed = append(failed, r.Tenant)
		case r.Action == controlplane.ActionBlocked, stillBlocked(r):
			blocked = append(blocked, r.Tenant)
		}
	}
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%s failed (%s)", plural(len(failed), "tenant", "tenants"), listNames(failed, 10)))
	}
	if len(blocked) > 0 {
		parts = append(parts, fmt.Sprintf("%s blocked (%s; see erpctl tenant show SLUG: a destructive change needs --allow-destructive, rows that fail a data check need fixing)",
			plural(len(blocked), "tenant is", "tenants are"), listNames(blocked, 10)))
	}
	for _, r := range pass.Rollouts {
		if r.State == controlplane.RolloutHalted {
			parts = append(parts, r.Message)
		}
	}
	if len(parts) > 0 {
		return failedf("%s", strings.Join(parts, " and "))
	}
	return nil
}

// publishOrRefuse publishes the module files first (--publish), or refuses files that differ from
// the latest generation: reconcile applies generations, never a process's own files.
func publishOrRefuse(ctx context.Context, opts *ReconcileOptions, p *controlplane.Plane) error {
	if !opts.Publish {
		differ, gen, err := p.FilesDiffer(ctx)
		switch {
		case err != nil:
			return err
		case differ && opts.ModulesDir != "":
			return badInput(fmt.Errorf("these module files differ from module generation %d, the latest published, which is what reconcile applies: "+
				"publish them first (erpctl reconcile --publish, or erpctl module publish), or see how they differ with erpctl module diff", gen))
		case differ:
			// No module files given: the operator applies the catalog. Built-ins of another
			// erpctl version are worth a word, not a refusal.
			if b, _, err := p.BuiltinsDiffer(ctx); err == nil && b {
				fmt.Fprintf(opts.IO.ErrOut, "note: the modules built into this erpctl differ from those of module generation %d, which is what reconcile applies "+
					"(erpctl module diff shows how; erpctl module publish publishes them)\n", gen)
			}
		}
		return nil
	}
	res, err := publishChecked(ctx, p, opts.Message, opts.AllowDestructive, opts.Workers)
	if err != nil {
		if res != nil && res.Preview != nil && opts.Format == term.FormatTable {
			_ = printPublish(opts.IO, res, groupPlans(res.Preview.Results), err)
		}
		return err
	}
	if opts.Format == term.FormatTable {
		st := opts.IO.Styles()
		if res.Changed {
			fmt.Fprintf(opts.IO.Out, "%s Published module generation %d (%s)\n", st.Success.Render("✓"), res.Generation, shortHash(res.Hash))
		} else {
			fmt.Fprintf(opts.IO.Out, "Nothing to publish: the module files are generation %d.\n", res.Generation)
		}
	}
	return nil
}

// printPass prints the tenants a pass changed or could not change, then the counts. With
// every set, every tenant is listed, unchanged ones too.
func printPass(io *term.IOStreams, pass *controlplane.Pass, every bool) error {
	st := io.Styles()
	tbl := io.NewTable("tenant", "action", "status", "statements", "duration", "details")
	for _, r := range pass.Results {
		if r.Action == controlplane.ActionUnchanged && !every && !stillBlocked(r) {
			continue
		}
		details := r.Error
		switch {
		case stillBlocked(r):
			details = "still blocked: nothing changed since (erpctl tenant show " + r.Tenant + " says why)"
		case len(r.DataChecks) > 0:
			details = "data check failed: " + r.DataChecks[0].Message
		case r.Action == controlplane.ActionBlocked:
			details = fmt.Sprintf("needs %s; rerun with --allow-destructive", plural(len(r.Destructive), "destructive statement", "destructive statements"))
		}
		action := r.Action
		if stillBlocked(r) {
			action = "still blocked"
		}
		tbl.Row(r.Tenant, st.Status(action), st.Status(orDash(r.Status)), fmt.Sprint(len(r.SQL)), humanDuration(r.Duration), term.Safe(firstLine(details)))
	}
	if tbl.Len() > 0 {
		if err := tbl.Render(); err != nil {
			return err
		}
	}
	if every && len(pass.Results) == 1 {
		printSQL(io, pass.Results[0])
		return nil
	}
	var counts []string
	still := 0
	for _, r := range pass.Results {
		if stillBlocked(r) {
			still++
		}
	}
	for _, a := range []string{controlplane.ActionUnchanged, controlplane.ActionApplied, controlplane.ActionBlocked,
		controlplane.ActionFailed, controlplane.ActionSkipped, controlplane.ActionHeld, controlplane.ActionWaiting} {
		n := countAction(pass.Results, a)
		if a == controlplane.ActionUnchanged {
			n -= still
		}
		if n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st.Status(a)))
		}
		if a == controlplane.ActionBlocked && still > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", still, st.Status("still blocked")))
		}
	}
	summary := plural(len(pass.Results), "tenant", "tenants") + " in " + humanDuration(pass.Duration)
	if pass.Generation > 0 {
		summary += fmt.Sprintf(" to module generation %d", pass.Generation)
	}
	if len(counts) > 0 {
		summary += ": " + strings.Join(counts, ", ")
	}
	fmt.Fprintln(io.Out, summary)
	for _, r := range pass.Rollouts {
		line := fmt.Sprintf("rollout %d: %s, %d of %d tenants applied, %d failed, %d held, %s", r.ID, st.Status(r.State),
			r.Applied, r.Tenants, r.Failed, r.Held, plural(r.Waves, "wave", "waves"))
		if r.Waiting > 0 {
			line += fmt.Sprintf(", %d waiting", r.Waiting)
		}
		if r.Stage != "" {
			line += " (stage " + r.Stage + ")"
		}
		fmt.Fprintln(io.Out, line)
		if why := waitingWhy(pass); why != "" && (r.State == controlplane.RolloutWaiting || r.State == controlplane.RolloutPaused) {
			fmt.Fprintf(io.Out, "  %s\n", why)
		}
	}
	return nil
}

// stillBlocked reports whether a pass found a tenant Blocked as it was: nothing to do, and not
// at its desired state either.
func stillBlocked(r controlplane.Result) bool {
	return r.Action == controlplane.ActionUnchanged && r.Status == controlplane.StatusBlocked
}

// waitingWhy is what the pass's waiting tenants wait for.
func waitingWhy(pass *controlplane.Pass) string {
	for _, r := range pass.Results {
		if r.Action == controlplane.ActionWaiting {
			return r.Error
		}
	}
	return ""
}

func countAction(results []controlplane.Result, action string) int {
	n := 0
	for _, r := range results {
		if r.Action == action {
			n++
		}
	}
	return n
}

// printSQL prints what a reconcile applied to one tenant, or what it would need.
func printSQL(io *term.IOStreams, r controlplane.Result) {
	st := io.Styles()
	if len(r.SQL) > 0 && r.Action == controlplane.ActionApplied {
		fmt.Fprintf(io.Out, "\n%s\n", st.Bold.Render("Applied"))
		for _, s := range r.SQL {
			fmt.Fprintln(io.Out, indent(s+";", "  "))
		}
	}
	if len(r.Steps) > 0 && r.Action == controlplane.ActionApplied {
		fmt.Fprintf(io.Out, "\n%s\n", st.Bold.Render("Migration steps run"))
		for _, s := range r.Steps {
			fmt.Fprintln(io.Out, indent(s, "  "))
		}
	}
	if len(r.DataChecks) > 0 {
		fmt.Fprintf(io.Out, "\n%s\n", st.Error.Render("Refused: the rows fail these data checks; nothing was applied"))
		for _, f := range r.DataChecks {
			fmt.Fprintln(io.Out, indent(f.Message, "  "))
		}
	}
	if len(r.Destructive) > 0 && r.Action == controlplane.ActionBlocked {
		fmt.Fprintf(io.Out, "\n%s\n", st.Error.Render("Blocked: only these destructive statements would make the schema match"))
		for _, s := range r.Destructive {
			fmt.Fprintln(io.Out, indent(s+";", "  "))
		}
	}
}

// rolloutFlags are the staged-rollout settings reconcile --all and the daemon share.
type rolloutFlags struct {
	Canary      int
	MaxFailures int
}

func (r *rolloutFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&r.Canary, "canary", 3, "tenants of a change that go first, before waves that double (0: all at once)")
	fl.IntVar(&r.MaxFailures, "max-failures", 3, "failed tenants that halt a change's rollout (0: never halt)")
}

func (r *rolloutFlags) validate() error {
	switch {
	case r.Canary < 0:
		return usageErrorf("--canary must be 0 or more, got %d", r.Canary)
	case r.MaxFailures < 0:
		return usageErrorf("--max-failures must be 0 or more, got %d", r.MaxFailures)
	}
	return nil
}
