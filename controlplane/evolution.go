package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// evolution is a tenant's plan with what the module format adds to a diff: the renames that run
// first, the migration steps that run before and after the rest, and the data checks counted
// (after the renames and the before steps) ahead of anything that depends on the rows.
type evolution struct {
	stmts     []string // the plan: the renames, then the rest
	renames   int      // how many of stmts are renames
	checks    []schema.DataCheck
	before    []modules.Step // pending steps, by when they run
	after     []modules.Step
	notNeeded []modules.Step // steps a tenant that gets the final tables directly records as not needed
}

// plain reports whether the plan runs as one batch, with nothing between its statements.
func (ev *evolution) plain() bool {
	return len(ev.checks) == 0 && len(ev.before) == 0 && len(ev.after) == 0
}

// pendingNames lists the steps that will run, as module/name.
func (ev *evolution) pendingNames() []string {
	var out []string
	for _, s := range append(append([]modules.Step{}, ev.before...), ev.after...) {
		out = append(out, s.ID())
	}
	return out
}

// marks describes each data-dependent change, as CODE: text.
func (ev *evolution) marks() []string {
	var out []string
	for _, c := range ev.checks {
		out = append(out, c.Code+": "+c.Text)
	}
	return out
}

// withoutCreateSchema is ev for the rest of a group whose first tenant's plan began with
// CREATE SCHEMA (which names that tenant).
func (ev *evolution) withoutCreateSchema() *evolution {
	c := *ev
	if len(c.stmts) > 0 && strings.HasPrefix(c.stmts[0], "CREATE SCHEMA ") {
		c.stmts = c.stmts[1:]
	}
	return &c
}

// withCreateSchema is ev for a tenant whose schema does not exist yet.
func (ev *evolution) withCreateSchema(schemaName string) *evolution {
	c := *ev
	c.stmts = append([]string{"CREATE SCHEMA " + ident.Quote(schemaName)}, ev.stmts...)
	c.renames = 0
	return &c
}

// evolutionOf completes a tenant's plan: the data checks of the changes to apply, and the
// migration steps the tenant has not run. A tenant whose schema is made now (current nil) needs
// none of them.
func (p *Plane) evolutionOf(ctx context.Context, tx *schema.Tx, reg *modules.Registry, enabled []string, slug ident.Slug, current *atlas.Schema, changes []atlas.Change, stmts []string) (*evolution, error) {
	ev := &evolution{stmts: stmts, renames: schema.CountRenames(changes)}
	steps := reg.Steps(enabled)
	if current == nil {
		ev.notNeeded = steps
		return ev, nil
	}
	checks, err := schema.DataChecks(ctx, changes)
	if err != nil {
		return nil, err
	}
	ev.checks = checks
	if len(steps) == 0 {
		return ev, nil
	}
	done, err := recordedSteps(ctx, tx, slug)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		switch {
		case done[s.ID()]:
		case !hasModuleTables(reg, current, s.Module):
			// The module's tables are made now: they are already as the step would leave them.
			ev.notNeeded = append(ev.notNeeded, s)
		case s.Run == modules.StepBefore:
			ev.before = append(ev.before, s)
		default:
			ev.after = append(ev.after, s)
		}
	}
	return ev, nil
}

// hasModuleTables reports whether current holds any table of module m, by its name now or by
// a name a rename of m gives it.
func hasModuleTables(reg *modules.Registry, current *atlas.Schema, m string) bool {
	mod, ok := reg.Module(m)
	if !ok {
		return false
	}
	for _, t := range mod.Tables {
		if _, ok := current.Table(t); ok {
			return true
		}
	}
	for _, rn := range mod.Renames {
		if _, ok := current.Table(rn.From); ok && rn.Kind == modules.RenameTable {
			return true
		}
	}
	return false
}

// applyEvolution runs ev in schemaName: renames, before steps, data checks, the rest of the
// plan, after steps, and tail (what records the apply) in one round trip when the tenant's rows
// pass the checks; it returns tail's results (see schema.Tx.Batch). When a check fails (or in a
// dry run) it rolls back to where it started and returns the failures, and tail does not run;
// the caller records them. An error leaves tx to be rolled back.
func (p *Plane) applyEvolution(ctx context.Context, tx *schema.Tx, schemaName string, ev *evolution, dryRun bool, tail []schema.Stmt) ([]schema.CheckFailure, []string, error) {
	renames, rest := ev.stmts[:ev.renames], ev.stmts[ev.renames:]
	if len(ev.checks) == 0 {
		if dryRun {
			return nil, nil, nil // steps are shown, not run
		}
		batch := append(planBatch(schemaName, renames), stepsBatch(schemaName, ev.before)...)
		batch = append(append(batch, planBatch(schemaName, rest)...), stepsBatch(schemaName, ev.after)...)
		got, err := execBatchTail(ctx, tx, batch, tail)
		return nil, got, err
	}
	// What goes before the checks, and what after them; undo goes back to before both.
	start := append([]string{"SAVEPOINT erpctl_evolve"}, planBatch(schemaName, renames)...)
	start = append(append(start, stepsBatch(schemaName, ev.before)...), schema.CheckSetup(ev.checks)...)
	finish := append(schema.CheckTeardown(ev.checks), planBatch(schemaName, rest)...)
	finish = append(append(finish, stepsBatch(schemaName, ev.after)...), "RELEASE SAVEPOINT erpctl_evolve")
	undo := []string{"ROLLBACK TO SAVEPOINT erpctl_evolve", "RELEASE SAVEPOINT erpctl_evolve"}
	if !dryRun {
		// Rows nearly always pass: a guard that fails the batch when they do not lets the checks
		// travel with the change, so that a change with checks costs the round trips of one
		// without. Only a refusal pays for counting, below.
		batch := append(append(slices.Clip(start), schema.CheckGuardSQL(schemaName, ev.checks)), finish...)
		got, err := execBatchTail(ctx, tx, batch, tail)
		if !schema.ChecksRefused(err, len(start)) {
			return nil, got, err
		}
		if err := execBatch(ctx, tx, undo); err != nil {
			return nil, nil, err
		}
	}
	// The checks' count goes in the round trip of what comes before it.
	rows, err := tx.BatchRows(ctx, schema.Stmts(start, schema.CountChecksStmt(schemaName, ev.checks))...)
	if err != nil {
		return nil, nil, fmt.Errorf("apply: %w", err)
	}
	failures, err := schema.CheckCounts(schemaName, ev.checks, rows[len(rows)-1])
	if err != nil {
		return nil, nil, err
	}
	if len(failures) > 0 || dryRun {
		return failures, nil, execBatch(ctx, tx, undo)
	}
	got, err := execBatchTail(ctx, tx, finish, tail)
	return nil, got, err
}

// execBatchTail runs batch then tail in one round trip, and returns tail's results.
func execBatchTail(ctx context.Context, tx *schema.Tx, batch []string, tail []schema.Stmt) ([]string, error) {
	got, err := tx.Batch(ctx, schema.Stmts(batch, tail...)...)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return got[len(batch):], nil
}

func execBatch(ctx context.Context, tx *schema.Tx, batch []string) error {
	if err := tx.ExecStatements(ctx, batch...); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// stepsBatch is the statements of migration steps under the tenant's search_path, each
// statement of each step on its own (never split on ';'). A failing statement names its step.
func stepsBatch(schemaName string, steps []modules.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, "SET LOCAL search_path TO "+ident.Quote(schemaName))
		for _, q := range s.SQL {
			out = append(out, stepComment(s)+q)
		}
		out = append(out, "RESET search_path")
	}
	return out
}

// stepComment leads each statement of a step, so that an error (which quotes the statement's
// first line) names the step and the file and line that declare it. Step names are identifiers
// and module file names match the module name rule, so nothing in it can end the comment.
func stepComment(s modules.Step) string {
	return "/* migration step " + s.ID() + " at " + filepath.Base(s.Pos) + " */ "
}

// recordedSteps reads the steps a tenant has run or recorded as not needed.
func recordedSteps(ctx context.Context, tx *schema.Tx, slug ident.Slug) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT step FROM erpctl.migration_steps WHERE tenant = $1`, slug.String())
	if err != nil {
		return nil, fmt.Errorf("read migration steps of tenant %q: %w", slug, err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("read migration steps of tenant %q: %w", slug, err)
		}
		done[s] = true
	}
	return done, rows.Err()
}

// recordRefused marks a tenant Blocked with reason DataCheckFailed: its rows would make the
// plan fail, and nothing was applied. The message names each table, column and count. The
// recorded hash and fingerprint keep it Blocked on the fast path until the modules or the
// schema change, or a reconcile of the tenant alone finds its rows fixed.
func (p *Plane) recordRefused(ctx context.Context, tx *schema.Tx, slug ident.Slug, gen int64, prevStatus, schemaName, hash string, stmts []string, failures []schema.CheckFailure) error {
	fp, err := schema.Fingerprint(ctx, tx, schemaName)
	if err != nil {
		return err
	}
	var msgs []string
	for _, f := range failures {
		msgs = append(msgs, f.Message)
	}
	msg := "data check failed, nothing applied: " + strings.Join(msgs, "; ") +
		"; fix the rows (or a migration step), then run erpctl reconcile " + slug.String()
	sqlText := strings.Join(stmts, ";\n")
	if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET `+setStatus(StatusBlocked, ReasonDataCheckFailed)+`,
		blocked_sql = $2, last_error = $3, desired_hash = $4, fingerprint = $5, last_reconciled_at = now(), updated_at = now()
		WHERE slug = $1`, slug.String(), sqlText, msg, hash, fp); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if prevStatus == StatusBlocked {
		return nil
	}
	return insertGenEvent(ctx, tx, slug, gen, "refused", "", sqlText, 0, "blocked", fmt.Errorf("%s", msg))
}

// learnFingerprint records the fingerprint the group's plan leads to, once a tenant has shown it.
func (gp *groupPlan) learnFingerprint(fp string) {
	gp.fpMu.Lock()
	defer gp.fpMu.Unlock()
	if gp.fpAfter == "" {
		gp.fpAfter = fp
	}
}

func (gp *groupPlan) fingerprint() string {
	gp.fpMu.Lock()
	defer gp.fpMu.Unlock()
	return gp.fpAfter
}

// dryRunGroupMember is a dry run of one more tenant of a group: the group's plan, with the data
// checks counted in this tenant's own rows.
func (p *Plane) dryRunGroupMember(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions) Result {
	r := *gp.dryRun
	r.Tenant, r.Duration, r.DataChecks = t.slug.String(), 0, nil
	if len(gp.ev.checks) == 0 {
		return r
	}
	start := time.Now()
	tx, ok, err := p.lockTx(ctx, t.slug, o, false)
	if err != nil || !ok {
		r.Action, r.SQL, r.Error = ActionSkipped, []string{}, "another process is reconciling this tenant"
		if err != nil {
			r.Action, r.Error = ActionFailed, err.Error()
		}
		return r
	}
	defer tx.Rollback()
	failures, _, err := p.applyEvolution(ctx, tx, t.schema, gp.ev, true, nil)
	if err != nil {
		r.Action, r.Error = ActionFailed, err.Error()
		return r
	}
	r.DataChecks, r.Duration = failures, time.Since(start)
	switch {
	case len(failures) > 0 || (len(r.Destructive) > 0 && !o.AllowDestructive):
		r.Action = ActionBlocked
	case len(r.SQL) == 0 && len(r.Steps) == 0:
		r.Action = ActionUnchanged
	default:
		r.Action = ActionPlanned
	}
	return r
}
