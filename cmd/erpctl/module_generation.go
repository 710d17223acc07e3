package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/generations"
	"github.com/erpctl/erpctl/internal/term"
)

// ---- module publish ----

// ModulePublishOptions are the inputs of module publish.
type ModulePublishOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Message          string
	AllowDestructive bool
	Workers          int
}

// NewCmdModulePublish parses module publish; runF replaces the run in tests.
func NewCmdModulePublish(f *Factory, runF func(*ModulePublishOptions) error) *cobra.Command {
	opts := &ModulePublishOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "publish [-m MESSAGE]",
		Short: "Publish the module files as the next generation: the desired state of every tenant",
		Long: `Publish the modules this command loads (the built-ins and --modules-dir) as the next module
generation. The latest generation is the desired state of every tenant: daemons roll it out at
once, in stages, and every erpctl follows it whatever module files it has itself.

First it shows what the modules change, per group of tenants (as erpctl plan does), and it
refuses modules that would drop or narrow anything tenants have, unless --allow-destructive.
Publishing modules equal to the latest generation publishes nothing and says so. Publishing
the modules of an older generation again is a rollback: a new generation with the old content,
checked like any change.`,
		Example: "  erpctl --modules-dir ./modules module publish -m \"crm: add contacts.phone\"\n" +
			"  erpctl module publish --allow-destructive -m \"roll back generation 7\"",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Workers < 1 {
				return usageErrorf("--workers must be at least 1, got %d", opts.Workers)
			}
			if len(opts.Message) > 1000 || strings.ContainsAny(opts.Message, "\x00\r") {
				return usageErrorf("--message must be one line of at most 1000 characters")
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return modulePublishRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Message, "message", "m", "", "why this generation: shown by erpctl module history")
	fl.BoolVar(&opts.AllowDestructive, "allow-destructive", false, "publish modules that would drop or narrow what tenants have")
	fl.IntVar(&opts.Workers, "workers", 4, "tenants previewed at once")
	return cmd
}

// publishView is what module publish prints as JSON.
type publishView struct {
	Generation int64       `json:"generation"`
	Hash       string      `json:"hash"`
	Changed    bool        `json:"changed"`
	RollbackOf *int64      `json:"rollback_of,omitempty"`
	Preview    []planGroup `json:"preview"`
}

func modulePublishRun(ctx context.Context, opts *ModulePublishOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := publishChecked(ctx, p, opts.Message, opts.AllowDestructive, opts.Workers)
	if res == nil {
		return err
	}
	v := publishView{Generation: res.Generation, Hash: res.Hash, Changed: res.Changed, RollbackOf: res.RollbackOf, Preview: []planGroup{}}
	if res.Preview != nil {
		v.Preview = groupPlans(res.Preview.Results)
	}
	if rerr := opts.IO.Render(opts.Format, v, func() error { return printPublish(opts.IO, res, v.Preview, err) }); rerr != nil {
		return rerr
	}
	return err
}

// publishChecked publishes the module files with the preview and the destructive check, as module
// publish and reconcile --publish do. A refusal comes back with the preview, as a failure.
func publishChecked(ctx context.Context, p *controlplane.Plane, msg string, allowDestructive bool, workers int) (*controlplane.CheckedPublish, error) {
	res, err := p.PublishChecked(ctx, msg, controlplane.ReconcileOptions{AllowDestructive: allowDestructive, Workers: workers, IgnoreBackoff: true})
	if errors.Is(err, controlplane.ErrDestructive) || errors.Is(err, controlplane.ErrUnplannable) {
		return res, failedf("%s", strings.TrimPrefix(err.Error(), "publish modules: "))
	}
	return res, err
}

// printPublish says what a publish did, after what it changes.
func printPublish(io *term.IOStreams, res *controlplane.CheckedPublish, preview []planGroup, refused error) error {
	st := io.Styles()
	if !res.Changed && refused == nil {
		fmt.Fprintf(io.Out, "Nothing to publish: the module files are generation %d (%s).\n", res.Generation, shortHash(res.Hash))
		return nil
	}
	if len(preview) > 0 {
		fmt.Fprintf(io.Out, "%s\n", st.Bold.Render("What the modules change"))
		if err := printPlan(io, preview); err != nil {
			return err
		}
		fmt.Fprintln(io.Out)
	}
	if refused != nil {
		fmt.Fprintf(io.Out, "%s\n", st.Error.Render("Not published."))
		return nil
	}
	fmt.Fprintf(io.Out, "%s Published module generation %d (%s)", st.Success.Render("✓"), res.Generation, shortHash(res.Hash))
	if res.RollbackOf != nil {
		fmt.Fprintf(io.Out, ": a rollback to the modules of generation %d", *res.RollbackOf)
	}
	fmt.Fprintln(io.Out)
	fmt.Fprintln(io.Out, "Running daemons roll it out now; erpctl reconcile --all applies it here and now.")
	return nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ---- module history ----

// ModuleHistoryOptions are the inputs of module history.
type ModuleHistoryOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Limit int
}

// NewCmdModuleHistory parses module history; runF replaces the run in tests.
func NewCmdModuleHistory(f *Factory, runF func(*ModuleHistoryOptions) error) *cobra.Command {
	opts := &ModuleHistoryOptions{IO: f.IO, Plane: f.Plane}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the published module generations, newest first, with how many tenants are at each",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 0 {
				return usageErrorf("--limit must be 0 (all) or more, got %d", opts.Limit)
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return moduleHistoryRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "the newest generations to list (0: all)")
	return cmd
}

func moduleHistoryRun(ctx context.Context, opts *ModuleHistoryOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	gens, err := p.Generations().History(ctx, opts.Limit)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, gens, func() error {
		now := time.Now()
		tbl := opts.IO.NewTable("generation", "hash", "published", "by", "tenants", "message")
		for _, g := range gens {
			msg := g.Message
			if g.RollbackOf != nil {
				msg = strings.TrimSpace(fmt.Sprintf("(rollback to %d) %s", *g.RollbackOf, msg))
			}
			tbl.Row(strconv.FormatInt(g.Number, 10), shortHash(g.Hash), ago(now, &g.PublishedAt), orDash(g.PublishedBy),
				strconv.Itoa(g.Tenants), orDash(firstLine(msg)))
		}
		return tbl.Render()
	})
}

// ---- module diff ----

// ModuleDiffOptions are the inputs of module diff.
type ModuleDiffOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	From, To int64 // 0: the latest generation (From), the module files (To)
}

// NewCmdModuleDiff parses module diff; runF replaces the run in tests.
func NewCmdModuleDiff(f *Factory, runF func(*ModuleDiffOptions) error) *cobra.Command {
	opts := &ModuleDiffOptions{IO: f.IO, Plane: f.Plane}
	return &cobra.Command{
		Use:   "diff [N [M]]",
		Short: "Show how the HCL of two module generations differs (default: the latest and the module files)",
		Long: `Show how the HCL of module generation N differs from generation M, file by file, as unified
diffs. Without M, N is compared with the module files this command loads (the built-ins and
--modules-dir); without N either, the latest generation is.`,
		Example: "  erpctl --modules-dir ./modules module diff\n  erpctl module diff 6 7",
		Args:    maxArgs("N", "M"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for i, a := range args {
				n, err := strconv.ParseInt(a, 10, 64)
				if err != nil || n < 1 {
					return usageErrorf("%q is not a generation number (1, 2, ...; see erpctl module history)", a)
				}
				if i == 0 {
					opts.From = n
				} else {
					opts.To = n
				}
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return moduleDiffRun(cmd.Context(), opts)
		},
	}
}

// diffView is what module diff prints as JSON.
type diffView struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Identical bool   `json:"identical"`
	Diff      string `json:"diff"`
}

func moduleDiffRun(ctx context.Context, opts *ModuleDiffOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	from := opts.From
	if from == 0 {
		if from, _, err = p.Generations().Latest(ctx, nil); err != nil {
			return err
		}
	}
	a, err := p.Generations().Get(ctx, from)
	if errors.Is(err, generations.ErrNotFound) {
		return badInput(err)
	}
	if err != nil {
		return err
	}
	v := diffView{From: fmt.Sprintf("generation %d", from), To: "files"}
	bSrcs := p.LocalModules().Sources()
	if opts.To != 0 {
		b, err := p.Generations().Get(ctx, opts.To)
		if errors.Is(err, generations.ErrNotFound) {
			return badInput(err)
		}
		if err != nil {
			return err
		}
		v.To, bSrcs = fmt.Sprintf("generation %d", opts.To), b.Sources
	}
	v.Diff = generations.Diff(strings.ReplaceAll(v.From, " ", "-"), a.Sources, strings.ReplaceAll(v.To, " ", "-"), bSrcs)
	v.Identical = v.Diff == ""
	return opts.IO.Render(opts.Format, v, func() error {
		if v.Identical {
			fmt.Fprintf(opts.IO.Out, "No difference: %s and the %s declare the same modules.\n", v.From, v.To)
			return nil
		}
		st := opts.IO.Styles()
		for _, line := range strings.SplitAfter(v.Diff, "\n") {
			switch {
			case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
				fmt.Fprint(opts.IO.Out, st.Bold.Render(strings.TrimSuffix(line, "\n"))+"\n")
			case strings.HasPrefix(line, "+"):
				fmt.Fprint(opts.IO.Out, st.Success.Render(strings.TrimSuffix(line, "\n"))+"\n")
			case strings.HasPrefix(line, "-"):
				fmt.Fprint(opts.IO.Out, st.Error.Render(strings.TrimSuffix(line, "\n"))+"\n")
			default:
				fmt.Fprint(opts.IO.Out, line)
			}
		}
		return nil
	})
}

// noteFilesDiffer says on stderr, before a command makes or changes a tenant, that it follows the
// latest module generation and not the module files given (--modules-dir), when they differ.
func noteFilesDiffer(ctx context.Context, io *term.IOStreams, p *controlplane.Plane, modulesDir string) {
	if modulesDir == "" {
		return
	}
	if differ, gen, err := p.FilesDiffer(ctx); err == nil && differ {
		fmt.Fprintf(io.ErrOut, "note: this follows module generation %d, the latest published, not the module files in %s, which differ from it "+
			"(erpctl module diff shows how; erpctl module publish publishes them)\n", gen, modulesDir)
	}
}
