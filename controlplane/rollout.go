package controlplane

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/schema"
)

// A pass brings tenants to the latest generation in two ways. Tenants whose desired state does
// not change (drift to repair at their generation, a failure to retry, nothing to do) are
// reconciled at once. Tenants that move to the new generation go through its rollout
// (package rollouts): the stages of the generation's deployment, in order, each reaching its
// tenants in batches within its failure budget, with a wait after it and an approval before it
// where the deployment says so. The rollout is a catalog row, so that every process rolls out
// the same way and any process can approve, pause, resume or abort it.

// Rollout states, as rollouts records them.
const (
	RolloutRunning    = rollouts.Running
	RolloutWaiting    = rollouts.Waiting
	RolloutPaused     = rollouts.Paused
	RolloutHalted     = rollouts.Halted
	RolloutAborted    = rollouts.Aborted
	RolloutDone       = rollouts.Done
	RolloutSuperseded = rollouts.Superseded
)

// ActionWaiting: the tenant's stage has not started (an earlier stage, a wait, an approval or a
// pause comes first); nothing was applied.
const ActionWaiting = "waiting"

// RolloutReport is where a generation's rollout stands after a pass.
type RolloutReport struct {
	ID         int64  `json:"id"`
	Generation int64  `json:"generation"`
	State      string `json:"state"`
	Stage      string `json:"stage,omitempty"` // the stage it stands at, while open
	Tenants    int    `json:"tenants"`         // that move to the generation, in every stage
	Applied    int    `json:"applied"`
	Failed     int    `json:"failed"`
	Held       int    `json:"held"`
	Waiting    int    `json:"waiting"`
	Waves      int    `json:"waves"` // batches run in this pass
	Message    string `json:"message,omitempty"`
	// NextAt is when a waiting rollout may go on by itself (its wait ends); nil otherwise.
	NextAt *time.Time `json:"next_at,omitempty"`
}

// Rollouts is the catalog's rollouts: list, show, approve, pause, resume, abort.
func (p *Plane) Rollouts() *rollouts.Store { return p.rolls }

// groupRun reaches tenants the way a pass always has: the first tenant of each group (same
// desired state, fingerprint and last applied state) is inspected and planned with Atlas; the
// rest of its group apply its plan, each in its own transaction.
type groupRun struct {
	p      *Plane
	o      ReconcileOptions
	record func(Result)
	mu     sync.Mutex
	groups map[string]*groupState
}

type groupState struct {
	mu      sync.Mutex
	planned bool
	gp      *groupPlan // nil when the first tenant failed: the others inspect themselves
}

func (g *groupRun) state(key string) *groupState {
	g.mu.Lock()
	defer g.mu.Unlock()
	gs, ok := g.groups[key]
	if !ok {
		gs = &groupState{}
		g.groups[key] = gs
	}
	return gs
}

// reach reconciles one tenant: the first of its group plans, the others wait for that plan.
func (g *groupRun) reach(ctx context.Context, t *tenantRef) Result {
	gs := g.state(t.groupKey())
	gs.mu.Lock()
	if !gs.planned {
		if t.trusted {
			// The tenant whose plan the group takes must be in the group's state, not only
			// recorded in it: one changed behind change tracking's back is planned alone.
			fp, err := schema.Fingerprint(ctx, g.p.db, t.schema)
			if err != nil || fp != t.currentFP {
				gs.mu.Unlock()
				t.currentFP, t.trusted = fp, false
				r, _ := g.p.reconcileSlow(ctx, t, g.o, false)
				return r
			}
		}
		r, gp := g.p.reconcileSlow(ctx, t, g.o, false)
		if r.Action != ActionSkipped {
			gs.planned, gs.gp = true, gp
		}
		gs.mu.Unlock()
		return r
	}
	gp := gs.gp
	gs.mu.Unlock()
	return g.p.reconcileMember(ctx, t, gp, g.o)
}

// batch reaches ts on the pass's workers and records each result.
func (g *groupRun) batch(ctx context.Context, ts []*tenantRef) []Result {
	results := make([]Result, len(ts))
	g.p.parallel(ctx, g.o.Workers, len(ts), func(i int) {
		results[i] = g.reach(ctx, ts[i])
		g.record(results[i])
	})
	return results
}

// planGroups plans each group of ts: its first tenant, or when another process holds that one
// (skipped), the next, and so on, the groups side by side. It returns the results and the tenants
// it did not reach, in order.
func (g *groupRun) planGroups(ctx context.Context, ts []*tenantRef) ([]Result, []*tenantRef) {
	var keys []string
	byKey := map[string][]*tenantRef{}
	for _, t := range ts {
		k := t.groupKey()
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], t)
	}
	var mu sync.Mutex
	var results []Result
	used := map[*tenantRef]bool{}
	g.p.parallel(ctx, g.o.Workers, len(keys), func(i int) {
		for _, t := range byKey[keys[i]] {
			r := g.reach(ctx, t)
			g.record(r)
			mu.Lock()
			results, used[t] = append(results, r), true
			mu.Unlock()
			if r.Action != ActionSkipped {
				return
			}
		}
	})
	rest := make([]*tenantRef, 0, len(ts))
	for _, t := range ts {
		if !used[t] {
			rest = append(rest, t)
		}
	}
	return results, rest
}

// groupKey is the group a tenant is planned with.
func (t *tenantRef) groupKey() string {
	if t.enabledErr != nil {
		return "error|" + t.slug.String()
	}
	return t.hash + "|" + t.currentFP + "|" + t.desiredHash
}

// firstOfEachGroup orders ts so that one tenant of each group comes first: their plans are made
// side by side, then the rest apply them.
func firstOfEachGroup(ts []*tenantRef) []*tenantRef {
	seen := map[string]bool{}
	firsts, rest := make([]*tenantRef, 0, len(ts)), make([]*tenantRef, 0, len(ts))
	for _, t := range ts {
		if k := t.groupKey(); !seen[k] {
			seen[k] = true
			firsts = append(firsts, t)
		} else {
			rest = append(rest, t)
		}
	}
	return append(firsts, rest...)
}

// stagedRun is one pass's part of a generation's rollout.
type stagedRun struct {
	*groupRun
	r      *rollouts.Rollout
	was    string // the rollout's state when the pass read it
	stages []rollouts.Stage
	full   bool // the pass sees every tenant: it may start and finish stages
	report RolloutReport
}

// rollOutGeneration takes the tenants that move to the pass's generation (staged) through its
// rollout, as far as the rollout's stages, gates and budget let this pass go. totals counts
// every tenant of each stage (all of the fleet in a full pass).
func (p *Plane) rollOutGeneration(ctx context.Context, g *groupRun, staged []*tenantRef, all []*tenantRef, full bool) (*RolloutReport, error) {
	o := g.o
	r, err := p.rolls.ForGeneration(ctx, nil, o.pass.gen)
	if err != nil {
		return nil, err
	}
	if r == nil {
		dep, err := p.deploymentOf(o.pass, o)
		if err != nil {
			return nil, err
		}
		var started bool
		if r, started, err = p.rolls.Start(ctx, o.pass.gen, dep.WithRest(o.MaxFailures)); err != nil {
			return nil, err
		}
		if started {
			_ = p.rolls.Record(ctx, nil, r.ID, p.actor, "start", "", fmt.Sprintf("generation %d, %s to move", o.pass.gen, pluralize(len(staged), "tenant", "tenants")))
		}
	}
	if o.Resume && (r.State == RolloutHalted || r.State == RolloutPaused) {
		if r, err = p.rolls.Resume(ctx, r.ID, p.actor); err != nil {
			return nil, err
		}
	}
	stages, err := rollouts.StagesOf(r.Stages)
	if err != nil {
		return nil, fmt.Errorf("rollout %d: %w", r.ID, err)
	}
	run := &stagedRun{groupRun: g, r: r, was: r.State, stages: stages, full: full,
		report: RolloutReport{ID: r.ID, Generation: r.Generation, Tenants: len(staged)}}
	byStage := make([][]*tenantRef, len(stages))
	for _, t := range staged {
		i := assignStage(stages, t)
		byStage[i] = append(byStage[i], t)
	}
	totals := make([]int, len(stages))
	for _, t := range all {
		totals[assignStage(stages, t)]++
	}
	if err := run.run(ctx, byStage, totals); err != nil {
		return nil, err
	}
	return &run.report, nil
}

// deploymentOf is the generation's deployment, or the default: a canary, then waves.
func (p *Plane) deploymentOf(d desired, o ReconcileOptions) (*rollouts.Deployment, error) {
	dep, err := rollouts.Parse(d.reg.Deployment())
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", d.gen, err)
	}
	if dep == nil {
		dep = rollouts.Default(o.Canary, o.MaxFailures)
	}
	return dep, nil
}

// assignStage is the index of the stage tenant t belongs to: the first whose selector matches its
// labels; the last stage takes the rest.
func assignStage(stages []rollouts.Stage, t *tenantRef) int {
	for i, s := range stages[:len(stages)-1] {
		if s.Selector.Matches(t.labels) {
			return i
		}
	}
	return len(stages) - 1
}

// run goes through the stages in order, as far as this pass may, and records where the rollout
// stands.
func (run *stagedRun) run(ctx context.Context, byStage [][]*tenantRef, totals []int) error {
	r, now := run.r, time.Now()
	stop := -1            // the first stage this pass does not reach
	var left []*tenantRef // tenants of the stage before stop it did not reach (it halted)
	for i := range run.stages {
		st, stage := &r.Stages[i], run.stages[i]
		members := retriesLast(byStage[i])
		if run.full {
			st.Tenants = totals[i]
		}
		if r.State == RolloutHalted || r.State == RolloutAborted || r.State == RolloutPaused {
			stop = i
			break
		}
		switch st.State {
		case rollouts.StageDone:
			// Its tenants that failed within its budget are tried again as their backoff ends.
			run.retry(ctx, members)
			continue
		case rollouts.StageWaiting:
			run.retry(ctx, members) // its failed tenants, tried again
			until := st.DoneAt.Add(stage.Wait)
			if now.Before(until) || !run.full {
				r.State, stop = RolloutWaiting, i+1
				if now.Before(until) {
					run.report.NextAt = &until
				}
				break
			}
			st.State, st.WaitingSince = rollouts.StageDone, nil
			continue
		case rollouts.StagePending, rollouts.StageApproval:
			// Any pass may start a stage; only a full pass, which sees every tenant, ends one.
			if stage.Approve && st.ApprovedAt == nil {
				if st.State != rollouts.StageApproval {
					st.State, st.WaitingSince = rollouts.StageApproval, &now
					_ = run.p.rolls.Record(ctx, nil, r.ID, run.p.actor, "awaiting approval", st.Name, "")
				}
				r.State, stop = RolloutWaiting, i
				break
			}
			st.State, st.StartedAt, st.WaitingSince = rollouts.StageRunning, &now, nil
			_ = run.p.rolls.Record(ctx, nil, r.ID, run.p.actor, "stage started", st.Name, pluralize(len(members), "tenant", "tenants")+" to move")
			fallthrough
		case rollouts.StageRunning:
			r.State = RolloutRunning
			later := 0
			for _, ts := range byStage[i+1:] {
				later += len(ts)
			}
			done, rest, err := run.runStage(ctx, i, members, later)
			if err != nil {
				return err
			}
			if r.State == RolloutHalted {
				stop, left = i+1, rest
				break
			}
			if !done || !run.full || ctx.Err() != nil {
				stop = i + 1
				break
			}
			t := time.Now()
			st.DoneAt = &t
			_ = run.p.rolls.Record(ctx, nil, r.ID, run.p.actor, "stage done", st.Name, "")
			if stage.Wait > 0 && i < len(run.stages)-1 {
				until := t.Add(stage.Wait)
				st.State, st.WaitingSince = rollouts.StageWaiting, &t
				r.State, run.report.NextAt, stop = RolloutWaiting, &until, i+1
				break
			}
			st.State = rollouts.StageDone
			continue
		case rollouts.StageHalted:
			r.State, stop = RolloutHalted, i
		}
		if stop >= 0 {
			break
		}
	}
	if stop < 0 && run.full && r.State != RolloutHalted && r.State != RolloutAborted && r.State != RolloutPaused {
		r.State, r.Message = RolloutDone, ""
	}
	if stop >= 0 {
		rest := left
		for _, ts := range byStage[stop:] {
			rest = append(rest, ts...)
		}
		if err := run.notReached(ctx, rest); err != nil {
			return err
		}
	}
	return run.save(ctx)
}

// retry tries again the tenants of a stage already reached that failed, and counts them in the
// pass's report, which would otherwise say none of its tenants was applied.
func (run *stagedRun) retry(ctx context.Context, members []*tenantRef) {
	for _, res := range run.batch(ctx, members) {
		switch res.Action {
		case ActionFailed:
			run.report.Failed++
		case ActionApplied, ActionUnchanged:
			run.report.Applied++
		}
	}
}

// runStage reaches a stage's tenants in batches, within its failure budget: done reports whether
// every one was reached (none skipped, nothing left); left are those a halt kept it from. When the
// failures reach the budget with tenants left, in this stage or the later ones, it halts.
func (run *stagedRun) runStage(ctx context.Context, i int, members []*tenantRef, later int) (done bool, left []*tenantRef, err error) {
	r, st, stage := run.r, &run.r.Stages[i], run.stages[i]
	budget := stage.Budget(max(st.Tenants, len(members)))
	reached := st.Applied + st.Failures // tenants of the stage already reached, for the waves' sizes
	over := func() bool { return budget > 0 && st.Failures >= budget }
	var mu sync.Mutex
	count := func(res Result) {
		mu.Lock()
		defer mu.Unlock()
		switch res.Action {
		case ActionFailed:
			st.Failures++
			run.report.Failed++
		case ActionApplied, ActionUnchanged:
			run.report.Applied++
		case ActionSkipped:
			done = false
		}
		if res.Action != "" {
			reached++
		}
	}
	halt := func() (bool, []*tenantRef, error) {
		st.State, r.State = rollouts.StageHalted, RolloutHalted
		r.Message = haltMessage(r.ID, st.Name, st.Failures, stage.BudgetText())
		run.p.log.Warn("rollout halted", "rollout", r.ID, "stage", st.Name, "failed", st.Failures, "held", len(members))
		_ = run.p.rolls.Record(ctx, nil, r.ID, run.p.actor, "halted", st.Name, r.Message)
		return false, members, nil
	}
	// The first wave plans each group with one of its tenants: a change that fails everywhere
	// halts at one failure per group, not at a batch of them.
	done = true
	if len(members) > 0 && ctx.Err() == nil {
		var results []Result
		results, members = run.planGroups(ctx, members)
		for _, res := range results {
			count(res)
		}
		run.report.Waves++
		if over() && len(members)+later > 0 {
			return halt()
		}
	}
	for stage.Canary > 0 && len(members) > 0 && ctx.Err() == nil {
		n := batchSize(stage, run.o.Workers, reached, len(members))
		for _, res := range run.batch(ctx, members[:n]) {
			count(res)
		}
		members = members[n:]
		run.report.Waves++
		if over() && len(members)+later > 0 {
			return halt()
		}
	}
	if len(members) > 0 && ctx.Err() == nil {
		// A declared stage: at most parallel tenants at once, each next one started as one ends,
		// none started once the failures reach the budget.
		conc := cmpOr(stage.Parallel, run.o.Workers)
		n := run.p.parallelUntil(ctx, conc, len(members), func(k int) {
			res := run.reach(ctx, members[k])
			run.record(res)
			count(res)
		}, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return over()
		})
		members = members[n:]
		run.report.Waves++
		if over() && len(members)+later > 0 {
			return halt()
		}
	}
	return done && len(members) == 0, nil, nil
}

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// batchSize is how many of a stage's remaining tenants go next: with a canary (the default
// deployment), the canary first, then as many as are done already; otherwise parallel at once.
func batchSize(stage rollouts.Stage, workers, reached, left int) int {
	switch {
	case stage.Canary > 0 && reached < stage.Canary:
		return min(left, stage.Canary-reached)
	case stage.Canary > 0:
		return min(left, max(1, reached))
	case stage.Parallel > 0:
		return min(left, stage.Parallel)
	}
	return min(left, workers)
}

// retriesLast orders a stage's tenants: those its rollout has not tried first, those that failed
// (and are tried again) last, so that resuming a halted rollout reaches the held tenants before
// it retries the ones that halted it.
func retriesLast(ts []*tenantRef) []*tenantRef {
	out := slices.Clone(ts)
	slices.SortStableFunc(out, func(a, b *tenantRef) int { return cmpBool(a.status == StatusFailed, b.status == StatusFailed) })
	return firstOfEachGroup(out)
}

// notReached records the tenants the rollout did not reach in this pass: held, when it is halted
// or aborted (nothing applied to them, and they say why); waiting otherwise. Those whose schema
// was changed by hand are repaired toward their own generation first.
func (run *stagedRun) notReached(ctx context.Context, rest []*tenantRef) error {
	rest = run.p.repairNotReached(ctx, run.groupRun, rest)
	held := run.r.State == RolloutHalted || run.r.State == RolloutAborted
	action, msg := ActionWaiting, ""
	if held {
		action, msg = ActionHeld, run.r.Message
		if err := run.p.holdTenants(ctx, rest, msg); err != nil {
			return err
		}
		run.report.Held += len(rest)
	} else {
		run.report.Waiting += len(rest)
		msg = run.waitingFor()
	}
	for _, t := range rest {
		run.record(Result{Tenant: t.slug.String(), Action: action, Status: t.status, SQL: []string{}, Error: msg, Generation: run.o.pass.gen})
	}
	return nil
}

// waitingFor says what a waiting tenant waits for.
func (run *stagedRun) waitingFor() string {
	r := run.r
	switch r.State {
	case RolloutPaused:
		return fmt.Sprintf("rollout %d is paused (erpctl rollout resume %d)", r.ID, r.ID)
	case RolloutWaiting:
		for _, st := range r.Stages {
			switch st.State {
			case rollouts.StageApproval:
				return fmt.Sprintf("rollout %d waits for an approval of stage %s (erpctl rollout approve %d)", r.ID, st.Name, r.ID)
			case rollouts.StageWaiting:
				return fmt.Sprintf("rollout %d waits %s after stage %s", r.ID, st.Wait, st.Name)
			}
		}
	}
	return fmt.Sprintf("rollout %d has not reached its stage yet", r.ID)
}

// save records the rollout, unless an operator changed its state meanwhile: their state stands.
func (run *stagedRun) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	state, err := run.p.rolls.Save(ctx, run.r, run.was)
	if err != nil {
		return err
	}
	run.report.State, run.report.Message = state, run.r.Message
	for _, st := range run.r.Stages {
		if rollouts.Open(state) && st.State != rollouts.StageDone {
			run.report.Stage = st.Name
			break
		}
	}
	if state == RolloutDone && run.was != RolloutDone {
		_ = run.p.rolls.Record(ctx, nil, run.r.ID, run.p.actor, "done", "", "")
	}
	return nil
}

func haltMessage(id int64, stage string, failed int, budget string) string {
	return fmt.Sprintf("rollout %d halted in stage %s after %s (its budget: %s); the tenants it has not reached are held at their generation. "+
		"Publish a fix (the next generation starts a new rollout), or resume it with erpctl rollout resume %d (or erpctl reconcile --all --resume): "+
		"the held tenants go first, then the failed ones are tried again",
		id, stage, pluralize(failed, "failed tenant", "failed tenants"), budget, id)
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// holdTenants gives the Ready tenants of a halted rollout the reason RolloutHalted and an event,
// once; Failed ones keep their failure. Nothing is applied to any of them.
func (p *Plane) holdTenants(ctx context.Context, ts []*tenantRef, msg string) error {
	if len(ts) == 0 {
		return nil
	}
	slugs := make([]string, len(ts))
	for i, t := range ts {
		slugs[i] = t.slug.String()
	}
	// A held Failed tenant's retry waits for the rollout, not for its backoff, lest the daemon
	// schedule a pass for a retry that only holds it again.
	_, err := p.db.ExecContext(ctx, `WITH held AS (
			UPDATE erpctl.tenants SET status_reason = $2, last_error = $3, updated_at = now(), status_changed_at = now()
			WHERE slug = ANY($1) AND status = 'Ready' AND status_reason <> $2 RETURNING slug
		), parked AS (
			UPDATE erpctl.tenants SET next_attempt_at = NULL WHERE slug = ANY($1) AND status = 'Failed' AND next_attempt_at IS NOT NULL)
		INSERT INTO erpctl.events (tenant, kind, outcome, error) SELECT slug, 'rollout', 'held', $3 FROM held`,
		slugs, ReasonRolloutHalted, msg)
	if err != nil {
		return fmt.Errorf("hold tenants of a halted rollout: %w", err)
	}
	return nil
}

// repairNotReached repairs, toward the generation each has applied, the tenants a rollout has not
// reached whose schema was changed by hand since their last reconcile; the others are left as
// they are. It returns those it left.
func (p *Plane) repairNotReached(ctx context.Context, g *groupRun, ts []*tenantRef) []*tenantRef {
	var drifted, rest []*tenantRef
	for _, t := range ts {
		if t.gen.Valid && t.currentFP != "" && t.fp != "" && t.currentFP != t.fp {
			drifted = append(drifted, t)
		} else {
			rest = append(rest, t)
		}
	}
	o := g.o
	o.pass, o.Target = desired{}, TargetApplied
	p.parallel(ctx, o.Workers, len(drifted), func(i int) {
		r, _ := p.reconcileSlow(ctx, drifted[i], o, false)
		g.record(r)
	})
	return rest
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
