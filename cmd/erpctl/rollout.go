package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/internal/term"
)

func newCmdRollout(f *Factory) *cobra.Command {
	return newGroupCmd("rollout", "List and show the rollouts of module generations; approve, pause, resume or abort one",
		NewCmdRolloutList(f, nil),
		NewCmdRolloutShow(f, nil),
		NewCmdRolloutAction(f, "approve", nil),
		NewCmdRolloutAction(f, "pause", nil),
		NewCmdRolloutAction(f, "resume", nil),
		NewCmdRolloutAction(f, "abort", nil),
	)
}

// ---- rollout list ----

// RolloutListOptions are the inputs of rollout list.
type RolloutListOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	Limit int
}

// NewCmdRolloutList parses rollout list; runF replaces the run in tests.
func NewCmdRolloutList(f *Factory, runF func(*RolloutListOptions) error) *cobra.Command {
	opts := &RolloutListOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the rollouts of module generations, newest first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 0 {
				return usageErrorf("--limit must be 0 (all) or more, got %d", opts.Limit)
			}
			opts.Format = f.Format()
			if runF != nil {
				return runF(opts)
			}
			return rolloutListRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "the newest rollouts to list (0: all)")
	return cmd
}

func rolloutListRun(ctx context.Context, opts *RolloutListOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	rs, err := p.Rollouts().List(ctx, opts.Limit)
	if err != nil {
		return err
	}
	return opts.IO.Render(opts.Format, rs, func() error {
		if len(rs) == 0 {
			fmt.Fprintln(opts.IO.ErrOut, "No rollouts yet: one starts when a published generation changes a tenant (erpctl module publish).")
			return nil
		}
		st := opts.IO.Styles()
		now := opts.Now()
		tbl := opts.IO.NewTable("id", "generation", "state", "stage", "tenants", "applied", "failed", "held", "updated")
		for _, r := range rs {
			var tenants, applied, failed, held int
			for _, s := range r.Stages {
				tenants, applied, failed, held = tenants+s.Tenants, applied+s.Applied, failed+s.Failed, held+s.Held
			}
			tbl.Row(strconv.FormatInt(r.ID, 10), strconv.FormatInt(r.Generation, 10), st.Status(r.State), orDash(r.Stage),
				strconv.Itoa(tenants), strconv.Itoa(applied), strconv.Itoa(failed), strconv.Itoa(held), ago(now, &r.UpdatedAt))
		}
		return tbl.Render()
	})
}

// ---- rollout show ----

// RolloutShowOptions are the inputs of rollout show.
type RolloutShowOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format
	Now    func() time.Time

	ID int64
}

// rolloutDetail is what rollout show prints: the rollout and its last events.
type rolloutDetail struct {
	*rollouts.Rollout
	Events []rollouts.Event `json:"events"`
}

// NewCmdRolloutShow parses rollout show; runF replaces the run in tests.
func NewCmdRolloutShow(f *Factory, runF func(*RolloutShowOptions) error) *cobra.Command {
	opts := &RolloutShowOptions{IO: f.IO, Plane: f.Plane, Now: time.Now}
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a rollout: each stage's selector, state, tenants, applied, failed, held, and its events",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRolloutID(args[0])
			if err != nil {
				return err
			}
			opts.ID, opts.Format = id, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return rolloutShowRun(cmd.Context(), opts)
		},
	}
}

func parseRolloutID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, usageErrorf("%q is not a rollout id (a number; see erpctl rollout list)", s)
	}
	return id, nil
}

func rolloutShowRun(ctx context.Context, opts *RolloutShowOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	r, err := p.Rollouts().Get(ctx, opts.ID)
	if err != nil {
		return rolloutError(err)
	}
	evs, err := p.Rollouts().Events(ctx, opts.ID, 20)
	if err != nil {
		return err
	}
	d := rolloutDetail{Rollout: r, Events: evs}
	return opts.IO.Render(opts.Format, d, func() error { return printRollout(opts.IO, opts.Now(), d) })
}

func printRollout(io *term.IOStreams, now time.Time, d rolloutDetail) error {
	st := io.Styles()
	r := d.Rollout
	fields := []term.Field{
		{Label: "Rollout", Value: strconv.FormatInt(r.ID, 10)},
		{Label: "Generation", Value: strconv.FormatInt(r.Generation, 10)},
		{Label: "State", Value: st.Status(r.State)},
		{Label: "Started", Value: stamp(now, &r.StartedAt)},
	}
	if r.Stage != "" {
		fields = append(fields, term.Field{Label: "Stage", Value: r.Stage})
	}
	if r.Message != "" {
		fields = append(fields, term.Field{Label: "Message", Value: term.Safe(r.Message)})
	}
	if err := io.PrintFields(fields...); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "\n%s\n", st.Bold.Render("Stages"))
	tbl := io.NewTable("stage", "selector", "state", "tenants", "applied", "failed", "held", "budget", "gate", "since")
	for _, s := range r.Stages {
		var gate []string
		if s.Approve {
			g := "approve"
			if s.ApprovedBy != "" {
				g += " (by " + s.ApprovedBy + ")"
			}
			gate = append(gate, g)
		}
		if s.Wait != "" {
			gate = append(gate, "wait "+s.Wait)
		}
		since := "-"
		switch {
		case s.WaitingSince != nil:
			since = "waiting " + ago(now, s.WaitingSince)
		case s.DoneAt != nil:
			since = "done " + ago(now, s.DoneAt)
		case s.StartedAt != nil:
			since = "started " + ago(now, s.StartedAt)
		}
		tbl.Row(s.Name, orDash(s.Selector), st.Status(s.State), strconv.Itoa(s.Tenants), strconv.Itoa(s.Applied),
			strconv.Itoa(s.Failed), strconv.Itoa(s.Held), s.MaxFailures, orDash(strings.Join(gate, ", ")), since)
	}
	if err := tbl.Render(); err != nil {
		return err
	}
	fmt.Fprintf(io.Out, "\n%s\n", st.Bold.Render("Events"))
	if len(d.Events) == 0 {
		fmt.Fprintln(io.Out, "  none")
		return nil
	}
	ev := io.NewTable("at", "action", "stage", "by", "message")
	for _, e := range d.Events {
		at := e.At
		ev.Row(ago(now, &at), e.Action, orDash(e.Stage), orDash(e.Actor), term.Safe(firstLine(e.Message)))
	}
	return ev.Render()
}

// rolloutError makes a missing rollout bad input and a refused action a failure.
func rolloutError(err error) error {
	switch {
	case errors.Is(err, rollouts.ErrNotFound):
		return badInput(fmt.Errorf("%w (erpctl rollout list shows them)", err))
	case errors.Is(err, rollouts.ErrState):
		return badInput(err)
	}
	return err
}

// ---- rollout approve | pause | resume | abort ----

// RolloutActionOptions are the inputs of rollout approve, pause, resume and abort.
type RolloutActionOptions struct {
	IO     *term.IOStreams
	Plane  openPlane
	Format term.Format

	Action string
	ID     int64
}

var rolloutActions = map[string]struct{ short, long string }{
	"approve": {"Let the stage that waits for an approval start", `Let the stage of rollout ID that waits for an approval (approve = true in its deployment) start: every daemon
carries the rollout on at once, and erpctl reconcile --all does here.`},
	"pause": {"Stop a rollout from reaching more tenants until it is resumed", `Stop rollout ID from reaching more tenants, from any process: what is under way ends, and nothing
more is applied until erpctl rollout resume ID.`},
	"resume": {"Carry a paused or halted rollout on", `Carry rollout ID on: a paused one from where it stopped; a halted one with its stage's failures
forgotten, its held tenants first, then those that failed tried again. Publish a fix instead when
the change itself is wrong.`},
	"abort": {"Stop a rollout for good; the tenants it has not reached stay at their generation", `Stop rollout ID for good: the tenants it has not reached stay at the generation they have (held)
until a newer generation is published. Nothing applied is undone.`},
}

// NewCmdRolloutAction parses rollout approve, pause, resume or abort; runF replaces the run in tests.
func NewCmdRolloutAction(f *Factory, action string, runF func(*RolloutActionOptions) error) *cobra.Command {
	opts := &RolloutActionOptions{IO: f.IO, Plane: f.Plane, Action: action}
	return &cobra.Command{
		Use:     action + " ID",
		Short:   rolloutActions[action].short,
		Long:    rolloutActions[action].long,
		Example: "  erpctl rollout " + action + " 7",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRolloutID(args[0])
			if err != nil {
				return err
			}
			opts.ID, opts.Format = id, f.Format()
			if runF != nil {
				return runF(opts)
			}
			return rolloutActionRun(cmd.Context(), opts)
		},
	}
}

func rolloutActionRun(ctx context.Context, opts *RolloutActionOptions) error {
	p, err := opts.Plane(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	store, actor := p.Rollouts(), p.Actor()
	act := map[string]func(context.Context, int64, string) (*rollouts.Rollout, error){
		"approve": store.Approve, "pause": store.Pause, "resume": store.Resume, "abort": store.Abort,
	}[opts.Action]
	r, err := act(ctx, opts.ID, actor)
	if err != nil {
		return rolloutError(err)
	}
	return opts.IO.Render(opts.Format, r, func() error {
		past := map[string]string{"approve": "Approved", "pause": "Paused", "resume": "Resumed", "abort": "Aborted"}[opts.Action]
		fmt.Fprintf(opts.IO.Out, "%s %s rollout %d (generation %d): now %s\n", opts.IO.Styles().Success.Render("✓"), past, r.ID, r.Generation,
			opts.IO.Styles().Status(r.State))
		if opts.Action != "pause" && opts.Action != "abort" {
			fmt.Fprintln(opts.IO.Out, "Running daemons carry it on now; erpctl reconcile --all does here.")
		}
		return nil
	})
}
