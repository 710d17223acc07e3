package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rollout states, as erpctl.rollouts records them.
const (
	RolloutRunning    = "running"    // waves still to go (a pass that ended early leaves it so)
	RolloutHalted     = "halted"     // failures reached the limit; the rest of the group is held
	RolloutDone       = "done"       // every tenant of the group was reached
	RolloutSuperseded = "superseded" // no tenant is in its group any more (the module changed again)
)

// RolloutReport is where one change group's rollout stands after a pass.
type RolloutReport struct {
	ID          int64  `json:"id"`
	DesiredHash string `json:"desired_hash"`
	State       string `json:"state"`
	Tenants     int    `json:"tenants"` // in the group when the pass read it
	Applied     int    `json:"applied"`
	Failed      int    `json:"failed"`
	Held        int    `json:"held"`
	Waves       int    `json:"waves"`
	Message     string `json:"message,omitempty"`
}

// rollout is one change group's progress through a pass.
type rollout struct {
	RolloutReport
	key     string
	gp      *groupPlan
	rest    []*tenantRef // not reached yet
	staged  bool         // a change group under a canary and a failure limit
	done    int          // tenants reached, in earlier passes of the same rollout too
	failed  int          // failures since the rollout started or was resumed
	touched bool
}

// openRollout is a rollout row that is not finished.
type openRollout struct {
	id                     int64
	state                  string
	applied, failed, waves int
	canary, maxFailures    int
}

// readOpenRollouts reads the rollouts that are running or halted, by group key.
func (p *Plane) readOpenRollouts(ctx context.Context) (map[string]openRollout, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT DISTINCT ON (group_key) group_key, id, state, applied, failed, waves, canary, max_failures
		FROM erpctl.rollouts WHERE state IN ('running', 'halted') ORDER BY group_key, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("read rollouts: %w", err)
	}
	defer rows.Close()
	out := map[string]openRollout{}
	for rows.Next() {
		var key string
		var r openRollout
		if err := rows.Scan(&key, &r.id, &r.state, &r.applied, &r.failed, &r.waves, &r.canary, &r.maxFailures); err != nil {
			return nil, fmt.Errorf("read rollouts: %w", err)
		}
		out[key] = r
	}
	return out, rows.Err()
}

// holdHaltedGroups takes out of order the groups whose rollout is halted, unless o resumes
// them, records their tenants as held and returns the open rollouts for rollOut to continue.
// It also marks superseded the open rollouts whose group no tenant is in any more.
func (p *Plane) holdHaltedGroups(ctx context.Context, groups map[string][]*tenantRef, order *[]string, o ReconcileOptions,
	record func(Result), report func(RolloutReport)) (map[string]openRollout, error) {
	if o.DryRun {
		return nil, nil
	}
	open, err := p.readOpenRollouts(ctx)
	if err != nil || len(open) == 0 {
		return open, err
	}
	var gone []int64
	for key, r := range open {
		if _, ok := groups[key]; !ok {
			gone = append(gone, r.id)
		}
	}
	if len(gone) > 0 {
		if _, err := p.db.ExecContext(ctx, `UPDATE erpctl.rollouts SET state = $2, updated_at = now() WHERE id = ANY($1)`, gone, RolloutSuperseded); err != nil {
			return nil, fmt.Errorf("record superseded rollouts: %w", err)
		}
	}
	kept := (*order)[:0]
	for _, key := range *order {
		r, ok := open[key]
		if !ok || r.state != RolloutHalted || o.Resume {
			kept = append(kept, key)
			continue
		}
		msg := haltMessage(r.id, r.failed, r.maxFailures)
		if err := p.holdTenants(ctx, groups[key], msg); err != nil {
			return nil, err
		}
		for _, t := range groups[key] {
			record(Result{Tenant: t.slug.String(), Action: ActionHeld, Status: t.status, SQL: []string{}, Error: msg})
		}
		report(RolloutReport{ID: r.id, DesiredHash: key[:min(len(key), 32)], State: RolloutHalted, Tenants: r.applied + len(groups[key]),
			Applied: r.applied, Failed: r.failed, Held: len(groups[key]), Waves: r.waves, Message: msg})
	}
	*order = kept
	return open, nil
}

func haltMessage(id int64, failed, limit int) string {
	return fmt.Sprintf("rollout %d halted after %d failed tenants (limit %d); the rest of its tenants are held at their schema. "+
		"Fix the module (the next pass starts a new rollout) or resume it with: erpctl reconcile --all --resume", id, failed, limit)
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
			UPDATE erpctl.tenants SET status_reason = $2, last_error = $3, updated_at = now()
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

// rollOut reconciles the rest of every group. A change group (its first tenant was applied or
// failed) goes in waves: up to o.Canary tenants in all, then waves that double the tenants done;
// when its failures reach o.MaxFailures it halts and the rest are held. Other groups (nothing
// to apply, Blocked, a dry run) go in one wave. The waves of all groups run side by side.
func (p *Plane) rollOut(ctx context.Context, order []string, plans map[string]*groupPlan,
	remaining map[string][]*tenantRef, firsts map[string]Result, open map[string]openRollout, o ReconcileOptions, record func(Result)) ([]RolloutReport, error) {
	var rolls []*rollout
	for _, key := range order {
		first, ok := firsts[key]
		if !ok {
			continue // every member was skipped
		}
		r := &rollout{key: key, gp: plans[key], rest: remaining[key]}
		r.Tenants = 1 + len(r.rest)
		r.staged = !o.DryRun && (first.Action == ActionApplied || first.Action == ActionFailed)
		if prev, ok := open[key]; ok && r.staged {
			// A rollout an earlier pass began (and did not finish, or halted and is resumed)
			// goes on from where it was; the tenants it applied have left the group.
			r.ID, r.Waves = prev.id, prev.waves
			r.done, r.Applied, r.Tenants = prev.applied, prev.applied, r.Tenants+prev.applied
			if prev.state != RolloutHalted {
				r.done += prev.failed
				r.failed = prev.failed
			}
		}
		r.count(first)
		rolls = append(rolls, r)
		if r.staged {
			// The group's first tenant was the first of the canary.
			r.Waves++
			if err := p.endWave(ctx, r, o, record); err != nil {
				return nil, err
			}
		}
	}
	for ctx.Err() == nil {
		var batch []*tenantRef
		var owner []*rollout
		for _, r := range rolls {
			n := r.nextWave(o)
			for _, t := range r.rest[:n] {
				batch, owner = append(batch, t), append(owner, r)
			}
			r.rest, r.touched = r.rest[n:], n > 0
		}
		if len(batch) == 0 {
			break
		}
		results := make([]Result, len(batch))
		p.parallel(ctx, o.Workers, len(batch), func(i int) {
			results[i] = p.reconcileMember(ctx, batch[i], owner[i].gp, o)
			record(results[i])
		})
		for i, res := range results {
			owner[i].count(res)
		}
		for _, r := range rolls {
			if !r.touched || !r.staged {
				continue
			}
			r.Waves++
			if err := p.endWave(ctx, r, o, record); err != nil {
				return nil, err
			}
		}
	}
	var out []RolloutReport
	for _, r := range rolls {
		if !r.staged {
			continue
		}
		if err := p.finishRollout(ctx, r, o); err != nil {
			return nil, err
		}
		if r.Tenants < 2 {
			continue // a group of one has nothing to stage, and no rollout row (saveRollout)
		}
		out = append(out, r.RolloutReport)
	}
	return out, nil
}

// nextWave is how many of the group's remaining tenants go next: the canary first (counting
// the group's first tenant), then as many as are done already.
func (r *rollout) nextWave(o ReconcileOptions) int {
	n := len(r.rest)
	switch {
	case r.State == RolloutHalted:
		return 0
	case !r.staged || o.Canary <= 0:
		return n
	case r.done < o.Canary:
		return min(n, o.Canary-r.done)
	}
	return min(n, r.done)
}

// count adds one tenant's outcome to the rollout.
func (r *rollout) count(res Result) {
	switch res.Action {
	case ActionApplied, ActionUnchanged:
		r.Applied++
	case ActionFailed:
		r.failed++
	}
	r.Failed = r.failed
	if res.Action != "" {
		r.done++
	}
}

// endWave records a staged rollout after a wave and halts it when its failures reached the
// limit with tenants left: those are held, untouched.
func (p *Plane) endWave(ctx context.Context, r *rollout, o ReconcileOptions, record func(Result)) error {
	r.State = RolloutRunning
	if o.MaxFailures > 0 && r.failed >= o.MaxFailures && len(r.rest) > 0 {
		r.State = RolloutHalted
	}
	if err := p.saveRollout(ctx, r, o); err != nil {
		return err
	}
	if r.State != RolloutHalted {
		return nil
	}
	r.Message = haltMessage(r.ID, r.failed, o.MaxFailures)
	r.Held = len(r.rest)
	p.log.Warn("rollout halted", "rollout", r.ID, "failed", r.failed, "applied", r.Applied, "held", r.Held)
	if err := p.holdTenants(ctx, r.rest, r.Message); err != nil {
		return err
	}
	for _, t := range r.rest {
		record(Result{Tenant: t.slug.String(), Action: ActionHeld, Status: t.status, SQL: []string{}, Error: r.Message})
	}
	r.rest = nil
	return p.saveRollout(ctx, r, o)
}

// finishRollout records where a staged rollout ended the pass.
func (p *Plane) finishRollout(ctx context.Context, r *rollout, o ReconcileOptions) error {
	if r.State != RolloutHalted && ctx.Err() == nil {
		r.State = RolloutDone
	}
	if r.State == "" {
		r.State = RolloutRunning
	}
	return p.saveRollout(ctx, r, o)
}

// saveRollout writes a staged rollout's row; a group of one tenant has nothing to stage and is
// not recorded. A context that ended still gets its row written.
func (p *Plane) saveRollout(ctx context.Context, r *rollout, o ReconcileOptions) error {
	if r.Tenants < 2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r.DesiredHash = r.key[:min(len(r.key), 32)]
	if r.ID == 0 {
		// Finished rollouts are kept a month, for tenant show and erpctl rollouts.
		if _, err := p.db.ExecContext(ctx, `DELETE FROM erpctl.rollouts WHERE state IN ('done', 'superseded') AND updated_at < now() - interval '30 days'`); err != nil {
			return fmt.Errorf("prune rollouts: %w", err)
		}
		err := p.db.QueryRowContext(ctx, `INSERT INTO erpctl.rollouts (group_key, desired_hash, state, canary, max_failures, generation)
			VALUES ($1, $2, 'running', $3, $4, $5) RETURNING id`, r.key, r.DesiredHash, o.Canary, o.MaxFailures, nullGen(o.pass.gen)).Scan(&r.ID)
		if err != nil {
			return fmt.Errorf("record rollout: %w", err)
		}
	}
	res, err := p.db.ExecContext(ctx, `UPDATE erpctl.rollouts SET state = $2, tenants = $3, applied = $4, failed = $5, held = $6,
		waves = $7, message = $8, canary = $9, max_failures = $10, updated_at = now() WHERE id = $1`,
		r.ID, r.State, r.Tenants, r.Applied, r.failed, r.Held, r.Waves, r.Message, o.Canary, o.MaxFailures)
	if err != nil {
		return fmt.Errorf("record rollout %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errors.New("record rollout: its row is gone")
	}
	return nil
}
