package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	atlas "ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// ReconcileOptions tune a reconcile.
type ReconcileOptions struct {
	AllowDestructive bool          // apply drops and narrowing changes too
	Workers          int           // tenants reconciled at once; 0: 4
	LockTimeout      time.Duration // per statement wait for a table lock; 0: 5s
	StatementTimeout time.Duration // per statement; 0: 5m
	IgnoreBackoff    bool          // retry Failed tenants now, not when their backoff ends
	DryRun           bool          // plan, apply nothing (erpctl plan)
	OnResult         func(Result)  // called as each tenant finishes, from several goroutines
	// Cause says why this reconcile runs when something other than a pass asked for it (the data
	// API's repair of a statement that met drift): what it applies is recorded as a "repair"
	// event with the cause as its reason. "" for a pass.
	Cause string
	// Causes are the causes of single tenants of a pass (change tracking saw DDL on their
	// schema): their applies are recorded as repairs with that reason.
	Causes map[ident.Slug]string
	// Only, when not nil, limits ReconcileAll to these tenants (an incremental pass over the
	// schemas change tracking saw change); the rest are neither read nor fingerprinted.
	Only []ident.Slug
	// Selector limits ReconcileAll to the tenants whose labels it selects (-l); the zero
	// Selector selects every tenant.
	Selector labels.Selector
	// Staged rollouts (rollout.go): a change group goes to Canary tenants first, then in waves
	// that double what is done; MaxFailures failures in a group halt it and hold the rest.
	// 0 turns either off. Resume continues halted rollouts.
	Canary      int
	MaxFailures int
	Resume      bool
	// Target says which generation each tenant is brought to (desired.go): the latest, or the
	// one it has applied (a repair). A pass always brings tenants to the latest.
	Target Target
	// Modules, in a dry run only, stand for the latest generation: erpctl plan and the preview of
	// a publish show what publishing these modules would do.
	Modules *modules.Registry
	// ReuseFingerprints lets a full pass take every schema's fingerprint from the last full
	// pass that read them, by any process, as recorded in the catalog (fleetRead), while the
	// server has counted no write to the catalogs since: the daemon's
	// passes, which otherwise read the whole catalog every few minutes, and at every start, to
	// find nothing changed.
	ReuseFingerprints bool

	pass desired // the generation a pass brings every tenant to; zero outside a pass

	enumValuesAdded bool // this reconcile has committed the enum values its plan adds (enum.go)
}

func (o ReconcileOptions) withDefaults() ReconcileOptions {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 5 * time.Second
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Minute
	}
	return o
}

// What a reconcile did to a tenant.
const (
	ActionUnchanged = "unchanged" // already as desired; nothing inspected or applied
	ActionApplied   = "applied"   // changes applied
	ActionPlanned   = "planned"   // dry run: changes needed, nothing applied
	ActionBlocked   = "blocked"   // only a destructive change would make it match; nothing applied
	ActionFailed    = "failed"    // apply errored; rolled back
	ActionSkipped   = "skipped"   // another process holds the tenant, or its backoff has not ended
	ActionHeld      = "held"      // its change group's rollout is halted; nothing applied
)

// Result is the outcome of reconciling one tenant.
type Result struct {
	Tenant      string   `json:"tenant"`
	Action      string   `json:"action"`
	Status      string   `json:"status"`
	SQL         []string `json:"sql"`
	Destructive []string `json:"destructive_sql,omitempty"`
	Unmanaged   []string `json:"unmanaged,omitempty"`
	Steps       []string `json:"steps,omitempty"` // migration steps run (planned, in a dry run), as module/name
	Seeds       []string `json:"seeds,omitempty"` // seed rows inserted (to insert, in a dry run): "TABLE: N rows"
	// DataDependent marks each data-dependent change of the plan ("MF104: Modifying nullable
	// column ..."), checked against the tenant's rows before the apply; DataChecks are those its
	// rows fail, with counts, and then nothing is applied.
	DataDependent []string              `json:"data_dependent,omitempty"`
	DataChecks    []schema.CheckFailure `json:"data_checks,omitempty"`
	Inspected     bool                  `json:"inspected"` // Atlas inspected the schema (the slow path)
	// Generation is the module generation the tenant was reconciled to (0 in a preview of files).
	Generation int64         `json:"generation,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	Error      string        `json:"error,omitempty"`
}

// Pass is the outcome of one reconcile of every tenant.
type Pass struct {
	// Generation is the module generation the pass brought tenants to; 0 in a preview of files.
	Generation int64          `json:"generation"`
	Results    []Result       `json:"results"`
	Duration   time.Duration  `json:"duration_ns"`
	Counts     map[string]int `json:"counts"`
	// NextRetryAt is when the first Failed tenant's backoff ends, nil when none is Failed: the
	// daemon's next pass is due then if that comes before its interval.
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
	// NextRolloutAt is when a rollout that waits after a stage may go on, nil when none waits.
	NextRolloutAt *time.Time `json:"next_rollout_at,omitempty"`
	// Rollouts are the staged rollouts of change groups this pass ran or held (rollout.go).
	Rollouts []RolloutReport `json:"rollouts,omitempty"`
	// FingerprintsReused: the pass took every schema's fingerprint from the last full pass
	// instead of reading the catalog (ReconcileOptions.ReuseFingerprints).
	FingerprintsReused bool `json:"fingerprints_reused,omitempty"`
}

// Result is the outcome for tenant slug; the zero Result when the pass did not reach it.
func (p *Pass) Result(slug string) Result {
	for _, r := range p.Results {
		if r.Tenant == slug {
			return r
		}
	}
	return Result{}
}

// Failed reports whether any tenant failed.
func (p *Pass) Failed() bool { return p.Counts[ActionFailed] > 0 }

// tenantRef is what a pass reads of each tenant from the catalog.
type tenantRef struct {
	slug            ident.Slug
	schema          string
	followAll       bool
	chosen          []string
	status, reason  string
	desiredHash, fp string
	gen             sql.NullInt64 // the generation it has applied
	labels          labels.Labels
	nextAttempt     *time.Time
	enabled         []string
	hash, currentFP string
	enabledErr      error
	trusted         bool // currentFP is the recorded fingerprint, not read (trustedFingerprints)
}

// groupPlan is what reconciling one tenant of a group taught, for the rest of the group: in a
// dry run its plan; when it was Blocked, the destructive changes; otherwise the SQL that brought
// it from the group's fingerprint to the desired state, and the fingerprint that results.
type groupPlan struct {
	ev      *evolution
	managed []byte
	dryRun  *Result // in a dry run, the plan of the group's first tenant

	fpMu    sync.Mutex
	fpAfter string // "" until a tenant of the group has applied the plan

	d desired // the generation the plan brings the group to

	// The group's first tenant is Blocked: these changes would be destructive.
	blocked        []atlas.Change
	destructiveSQL []string

	// Enum values the group's first tenant committed before stmts, which use them (enum.go).
	enumFirst []string
}

// ReconcileAll reconciles every tenant once. Tenants whose desired state and schema fingerprint
// match what was last applied are skipped without an inspection. The others are grouped by
// (desired state, fingerprint, last applied state): one tenant of each group is inspected and
// planned with Atlas, and its SQL is applied to the rest of its group, each in its own
// transaction, after checking under the tenant's lock that it is still as the pass read it.
func (p *Plane) ReconcileAll(ctx context.Context, o ReconcileOptions) (*Pass, error) {
	o = o.withDefaults()
	start := time.Now()
	d, err := p.passDesired(ctx, o)
	if err != nil {
		return nil, err
	}
	o.pass = d
	// The tenants that refused writes stopped are retried by every pass, incremental or not,
	// until one has handled them (writes.go).
	var retry map[ident.Slug]bool
	if !o.DryRun {
		retry = p.toRetry()
		o.Only = withRetries(o.Only, retry)
	}
	desiredAt := time.Now()
	refs, reused, err := p.loadRefs(ctx, d.reg, o.Only, o.Selector, !o.DryRun, o.ReuseFingerprints)
	if err != nil {
		return nil, err
	}
	refsAt := time.Now()
	pass := &Pass{Generation: d.gen, Counts: map[string]int{}, FingerprintsReused: reused}
	var mu sync.Mutex
	record := func(r Result) {
		mu.Lock()
		pass.Results = append(pass.Results, r)
		pass.Counts[r.Action]++
		mu.Unlock()
		if o.OnResult != nil {
			o.OnResult(r)
		}
	}
	var pending, staged []*tenantRef
	var caughtUp []string // unchanged, and recorded at an older generation
	now := time.Now()
	for _, t := range refs {
		switch {
		case t.enabledErr != nil:
			// Falls through to the slow path, which records the failure.
		case t.hash == t.desiredHash && t.currentFP == t.fp && t.currentFP != "" &&
			((t.status == StatusReady && t.reason != ReasonRolloutHalted) || (t.status == StatusBlocked && !o.AllowDestructive && !o.DryRun)):
			// A Blocked tenant stays Blocked until asked otherwise; a plan shows what it needs.
			// One held by a halted rollout whose change was taken back is recorded up to date.
			record(Result{Tenant: t.slug.String(), Action: ActionUnchanged, Status: t.status, SQL: []string{}, Generation: d.gen})
			if t.status == StatusReady && d.gen > 0 && t.gen.Int64 < d.gen {
				// Nothing of its modules changed since the generation it applied.
				caughtUp = append(caughtUp, t.slug.String())
			}
			continue
		case t.status == StatusFailed && !o.IgnoreBackoff && t.nextAttempt != nil && t.nextAttempt.After(now) &&
			!(retry[t.slug] && p.WritesRefused() == ""):
			// A tenant that failed because writes were refused is retried as soon as they are not.
			record(Result{Tenant: t.slug.String(), Action: ActionSkipped, Status: t.status, SQL: []string{},
				Error: fmt.Sprintf("backing off until %s", t.nextAttempt.Format(time.RFC3339))})
			continue
		}
		// A tenant whose desired state changes moves to the new generation: through its
		// rollout. The others (drift to repair, a failure to retry) go at once.
		if !o.DryRun && t.enabledErr == nil && t.hash != t.desiredHash {
			staged = append(staged, t)
		} else {
			pending = append(pending, t)
		}
	}

	if err := p.recordCaughtUp(ctx, caughtUp, d); err != nil {
		return nil, err
	}
	unrecordedFirst(pending, retry)
	unrecordedFirst(staged, retry)
	sortedAt := time.Now()
	g := &groupRun{p: p, o: o, record: record, groups: map[string]*groupState{}}
	_, rest := g.planGroups(ctx, pending)
	g.batch(ctx, rest)
	pendingAt := time.Now()
	full := o.Only == nil && o.Selector.Empty()
	if full && !o.DryRun && d.gen > 0 {
		if err := p.rolls.SupersedeOlder(ctx, d.gen); err != nil {
			p.NoteWrite(err)
			if _, refused := WriteRefusal(err); !refused {
				return nil, err
			}
		}
	}
	if len(staged) > 0 {
		report, err := p.rollOutGeneration(ctx, g, staged, refs, full)
		if _, refused := WriteRefusal(err); refused {
			// The catalog refuses writes, the rollout's row too: its tenants are tried as any
			// other, each failure kept to retry once writes return (writes.go).
			p.NoteWrite(err)
			g.batch(ctx, staged)
			report, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if report != nil {
			pass.Rollouts = append(pass.Rollouts, *report)
			pass.NextRolloutAt = report.NextAt
		}
	}
	if !o.DryRun && o.Only == nil {
		// One row for the pass, not one per unchanged tenant: rewriting 10,000 tenant rows took
		// 0.36 s of a 4.5 s pass. ListTenants reads it as the last reconcile of the tenants the
		// pass found as desired.
		_, err := p.db.ExecContext(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ('last_pass_at', now()::text)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`)
		p.NoteWrite(err)
		if _, refused := WriteRefusal(err); err != nil && !refused {
			return nil, fmt.Errorf("record reconcile pass: %w", err)
		}
	}
	if err := p.db.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM erpctl.tenants WHERE status = 'Failed'`).
		Scan(&pass.NextRetryAt); err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("read next retry: %w", err)
	}

	pass.Duration = time.Since(start)
	// Where a slow pass spends its time, for whoever runs with debug logs.
	p.log.Debug("pass phases", "tenants", len(refs), "pending", len(pending), "staged", len(staged),
		"desired", desiredAt.Sub(start), "read_and_fingerprint", refsAt.Sub(desiredAt), "sort", sortedAt.Sub(refsAt),
		"pending_work", pendingAt.Sub(sortedAt), "rollout_and_records", time.Since(pendingAt), "total", pass.Duration)
	if !o.DryRun {
		p.retried(retry, refs, pass, start)
	}
	return pass, ctx.Err()
}

// withRetries is an incremental pass's tenants and the tenants to retry; nil (every tenant)
// stays nil.
func withRetries(only []ident.Slug, retry map[ident.Slug]bool) []ident.Slug {
	if only == nil || len(retry) == 0 {
		return only
	}
	seen := make(map[ident.Slug]bool, len(only))
	for _, s := range only {
		seen[s] = true
	}
	out := slices.Clone(only)
	for s := range retry {
		if !seen[s] {
			out = append(out, s)
		}
	}
	return out
}

// unrecordedFirst moves the tenants whose failure could not be recorded to the front, so that
// their status is put right before anything else once the catalog takes writes again.
func unrecordedFirst(ts []*tenantRef, unrecorded map[ident.Slug]bool) {
	if len(unrecorded) == 0 {
		return
	}
	slices.SortStableFunc(ts, func(a, b *tenantRef) int { return cmpBool(unrecorded[b.slug], unrecorded[a.slug]) })
}

// reconcileMember reconciles one more tenant of a group from the group's plan gp (nil when the
// group's first tenant failed), inspecting it itself when the plan does not fit.
func (p *Plane) reconcileMember(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions) Result {
	if gp != nil && gp.dryRun != nil {
		return p.dryRunGroupMember(ctx, t, gp, o)
	}
	if gp != nil && gp.blocked != nil {
		if r, ok := p.blockGroupMember(ctx, t, gp, o); ok {
			return r
		}
	}
	if gp != nil && gp.dryRun == nil && gp.blocked == nil {
		if r, ok := p.applyGroupPlanAfterEnums(ctx, t, gp, o); ok {
			return r
		}
	}
	r, _ := p.reconcileSlow(ctx, t, o, false)
	return r
}

// parallelUntil runs fn(0..n-1) on up to workers goroutines, starting each next index once a
// goroutine is free, and stops starting them when ctx ends or stop (asked then) reports true. It
// returns how many indexes it started, which are 0..k-1.
func (p *Plane) parallelUntil(ctx context.Context, workers, n int, fn func(i int), stop func() bool) int {
	slots := make(chan struct{}, max(1, workers))
	var wg sync.WaitGroup
	i := 0
	for ; i < n; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || stop() {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			fn(i)
		}(i)
	}
	wg.Wait()
	return i
}

// parallel runs fn(0..n-1) on up to workers goroutines and stops handing out work when ctx ends.
func (p *Plane) parallel(ctx context.Context, workers, n int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// loadRefs reads every tenant and fingerprints every tenant schema, in two queries. With
// trustRecorded, a Ready tenant whose desired state changes (a rollout moves it) is grouped by
// the fingerprint its last apply recorded when change tracking vouches for it (see
// trustedFingerprints), and only the other schemas are fingerprinted.
func (p *Plane) loadRefs(ctx context.Context, reg *modules.Registry, only []ident.Slug, sel labels.Selector, trustRecorded, reuse bool) (refs []*tenantRef, reused bool, err error) {
	start := time.Now()
	rows, err := p.queryTenantRefs(ctx, only, sel)
	if err != nil {
		return nil, false, fmt.Errorf("read tenants: %w", err)
	}
	defer rows.Close()
	type enabledSet struct {
		mods []string
		hash string
		err  error
	}
	sets := map[string]enabledSet{}
	for rows.Next() {
		t := &tenantRef{}
		var slug string
		if err := rows.Scan(&slug, &t.schema, &t.followAll, &stringArray{&t.chosen}, &t.status, &t.reason, &t.desiredHash, &t.fp, &t.nextAttempt, &t.gen, &jsonLabels{&t.labels}); err != nil {
			return nil, false, fmt.Errorf("read tenants: %w", err)
		}
		if t.slug, err = ident.ParseSlug(slug); err != nil {
			return nil, false, fmt.Errorf("read tenants: %w", err)
		}
		key := fmt.Sprint(t.followAll, t.chosen)
		s, ok := sets[key]
		if !ok {
			s.mods, s.err = enabledModules(reg, t.followAll, t.chosen)
			if s.err == nil {
				s.hash = reg.Hash(s.mods)
			}
			sets[key] = s
		}
		t.enabled, t.hash, t.enabledErr = s.mods, s.hash, s.err
		refs = append(refs, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read tenants: %w", err)
	}
	readAt := time.Now()
	verify, trusted := refs, 0
	if trustRecorded {
		if verify, err = p.trustedFingerprints(ctx, refs); err != nil {
			return nil, false, err
		}
		trusted = len(refs) - len(verify)
	}
	// The whole fleet's catalog in one scan, unless only a few schemas need reading.
	incremental := only != nil || !sel.Empty() || (trusted > 0 && len(verify) <= len(refs)/4)
	fps, reused, err := p.fingerprintRefs(ctx, refs, verify, incremental, reuse, trustRecorded)
	if err != nil {
		return nil, false, err
	}
	p.log.Debug("tenants read", "tenants", len(refs), "trusted", trusted, "read", readAt.Sub(start), "fingerprint", time.Since(readAt),
		"fingerprints_reused", reused)
	for _, t := range verify {
		t.currentFP = fps[t.schema]
	}
	return refs, reused, nil
}

// trustedFingerprints gives the tenants a rollout moves the fingerprint their last apply
// recorded, where it can be trusted, and returns the others, whose schemas must be read.
//
// A rollout's pass needs the fingerprint of a tenant it moves only to group it with the tenants
// in the same state; fingerprinting the whole fleet's catalog for that cost more than the DDL
// itself (29 s a pass at 100,000 tenants). The recorded fingerprint is trusted for a Ready
// tenant (whose last apply recorded the state it left, in the same transaction) while change
// tracking is on and has recorded no DDL on its schema since: DDL by anyone but erpctl lands in
// erpctl.changed_schemas. Were a trusted tenant not as recorded after all (DDL with the event
// triggers bypassed), its group's SQL fails on it and it is inspected on its own, or the next
// pass that does not move it reads its schema, finds the difference and repairs it. The tenant
// whose inspection plans a group is read first all the same (groupRun.reach): its plan is the
// whole group's.
func (p *Plane) trustedFingerprints(ctx context.Context, refs []*tenantRef) (verify []*tenantRef, err error) {
	candidate := func(t *tenantRef) bool {
		return t.enabledErr == nil && t.hash != t.desiredHash && t.status == StatusReady && t.fp != ""
	}
	if !slices.ContainsFunc(refs, candidate) {
		return refs, nil
	}
	var on bool
	var changed []string
	if err := p.pool.QueryRow(ctx, `SELECT `+trackingOnSQL+`, ARRAY(SELECT schema_name FROM erpctl.changed_schemas)`,
		changeTriggerNames).Scan(&on, &changed); err != nil {
		return nil, fmt.Errorf("read change tracking: %w", err)
	}
	if !on {
		return refs, nil
	}
	dirty := make(map[string]bool, len(changed))
	for _, s := range changed {
		dirty[s] = true
	}
	verify = make([]*tenantRef, 0, len(refs))
	for _, t := range refs {
		if candidate(t) && !dirty[t.schema] {
			t.currentFP, t.trusted = t.fp, true
			continue
		}
		verify = append(verify, t)
	}
	return verify, nil
}

// Reconcile brings one tenant to its desired state with a full Atlas inspection, waiting for
// any other process that holds the tenant. It is what tenant create, debug tables --fix and
// reconcile SLUG use.
func (p *Plane) Reconcile(ctx context.Context, slug ident.Slug, o ReconcileOptions) (*Result, error) {
	o = o.withDefaults()
	if _, err := p.GetTenant(ctx, slug); err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	r, _ := p.reconcileSlow(ctx, &tenantRef{slug: slug}, o, true)
	if o.OnResult != nil {
		o.OnResult(r)
	}
	return &r, nil
}

// lockTx begins a tenant's transaction: timeouts, then the tenant's advisory lock. With wait
// false it gives up at once (ok false) when another process holds the tenant.
func (p *Plane) lockTx(ctx context.Context, slug ident.Slug, o ReconcileOptions, wait bool) (tx *schema.Tx, ok bool, err error) {
	tx, ok, _, err = p.lockTxThen(ctx, slug, o, wait)
	return tx, ok, err
}

// lockTxThen is lockTx that runs then after the lock, in the same round trip as the BEGIN, the
// settings and the lock, and returns their first rows (see schema.Tx.BatchRows).
func (p *Plane) lockTxThen(ctx context.Context, slug ident.Slug, o ReconcileOptions, wait bool, then ...schema.Stmt) (tx *schema.Tx, ok bool, rows [][]string, err error) {
	batch := p.txSettings(o)
	lock := `SELECT pg_try_advisory_xact_lock($1)`
	if wait {
		lock = `SELECT true FROM pg_advisory_xact_lock($1)`
	}
	batch = append(batch, schema.Stmt{SQL: lock, Args: []any{tenantLockKey(slug)}, Prepare: true})
	at := len(batch) - 1
	tx, got, err := schema.BeginBatch(ctx, p.db, p.prepare, append(batch, then...)...)
	if err != nil {
		return nil, false, nil, err
	}
	if len(got[at]) == 0 || got[at][0] != "t" {
		tx.Rollback()
		return nil, false, nil, nil
	}
	return tx, true, got[at+1:], nil
}

// txSettings are the statements that open a tenant's transaction: its timeouts, and the mark
// that tells change tracking the DDL is erpctl's own.
func (p *Plane) txSettings(o ReconcileOptions) []schema.Stmt {
	stmts := []schema.Stmt{{SQL: fmt.Sprintf("SET LOCAL lock_timeout = %d", o.LockTimeout.Milliseconds())},
		{SQL: fmt.Sprintf("SET LOCAL statement_timeout = %d", o.StatementTimeout.Milliseconds())}, {SQL: markOwnDDL}}
	if p.citus {
		stmts = append(stmts, schema.Stmt{SQL: citusLocal})
	}
	return stmts
}

// guardedTx begins t's transaction for a group's plan without a round trip of its own: the
// settings, the tenant's lock and the check that its row is as the pass read it go in the round
// trip of the plan's first batch (schema.BeginLead), so that a tenant of a rollout costs one
// round trip, as raw SQL does. open says the data API's role must have its grants on the
// schema already. When the lock is held elsewhere or the row changed, PostgreSQL raises an
// error there (division by zero: there is no RAISE outside PL/pgSQL), nothing after it runs,
// and the batch's error is a *schema.LeadError.
func (p *Plane) guardedTx(ctx context.Context, t *tenantRef, o ReconcileOptions, open bool) (*schema.Tx, error) {
	check := `SELECT 1 / count(*) FROM erpctl.tenants t WHERE slug = $1 AND desired_hash = $2 AND fingerprint = $3 AND status = $4`
	args := []any{t.slug.String(), t.desiredHash, t.fp, t.status}
	if o.pass.gen != 0 {
		check += ` AND (SELECT coalesce(max(generation), 0) FROM erpctl.generations) = $5`
		args = append(args, o.pass.gen)
	}
	if open {
		check += ` AND ` + apiOpenSQL
	}
	lead := append(p.txSettings(o),
		schema.Stmt{SQL: `SELECT 1 / pg_try_advisory_xact_lock($1)::int`, Args: []any{tenantLockKey(t.slug)}, Prepare: true},
		schema.Stmt{SQL: check, Args: args, Prepare: true})
	return schema.BeginLead(ctx, p.db, p.prepare, lead...)
}

// reconcileSlow inspects, diffs and applies one tenant in one transaction. The plan it returns
// serves the rest of the tenant's group.
func (p *Plane) reconcileSlow(ctx context.Context, ref *tenantRef, o ReconcileOptions, wait bool) (Result, *groupPlan) {
	start := time.Now()
	res := Result{Tenant: ref.slug.String(), SQL: []string{}}
	tx, ok, err := p.lockTx(ctx, ref.slug, o, wait)
	if err != nil {
		res.Action, res.Error = ActionFailed, err.Error()
		res.Duration = time.Since(start)
		return res, nil
	}
	if !ok {
		// The status the pass read stands (a reconcile of one tenant knows none: "").
		res.Action, res.Status, res.Error = ActionSkipped, ref.status, "another process is reconciling this tenant"
		res.Duration = time.Since(start)
		return res, nil
	}
	defer tx.Rollback()
	o.Cause = o.causeFor(ref.slug)
	gp, err := p.reconcileInTx(ctx, tx, ref.slug, o, &res)
	if err == nil && !o.DryRun {
		err = tx.Commit()
		p.NoteWrite(err)
		if err == nil && res.Action != ActionUnchanged {
			p.applied.notify(ref.slug)
		}
	}
	res.Duration = time.Since(start)
	if err != nil && !o.DryRun && !o.enumValuesAdded && isUnsafeNewEnumValue(err) {
		// The plan uses an enum value it adds: commit the values first, then plan again (enum.go).
		tx.Rollback()
		if aerr := p.addEnumValues(ctx, ref.slug, o, res.SQL); aerr == nil {
			o.enumValuesAdded = true
			r, gp := p.reconcileSlow(ctx, ref, o, wait)
			adds := enumValueStatements(res.SQL)
			if gp != nil {
				gp.enumFirst = adds
			}
			// The values went in a transaction of their own, before the rest: the tenant got both.
			r.SQL = append(slices.Clone(adds), r.SQL...)
			if r.Action == ActionUnchanged {
				r.Action = ActionApplied
			}
			return r, gp
		}
	}
	if err != nil {
		tx.Rollback()
		p.NoteWrite(err)
		res.Action, res.Status, res.Error = ActionFailed, StatusFailed, err.Error()
		var moved *errGenerationMoved
		if errors.As(err, &moved) {
			res.Action, res.Status, res.Error = ActionSkipped, "", moved.Error()
			return res, nil
		}
		if !errors.Is(err, errTenantGone) && !o.DryRun {
			ferr := p.recordFailure(ctx, ref.slug, res.Generation, o.eventKind(), o.Cause, strings.Join(res.SQL, ";\n"), res.Duration, err)
			p.NoteWrite(ferr)
			_, refused := WriteRefusal(err)
			if ferr != nil || refused {
				// The catalog may still say Ready, or the tenant waits out a backoff for a
				// refusal that is not its own: the next passes retry it first.
				p.markRetry(ref.slug)
			}
			if ferr != nil {
				res.Error += "; " + ferr.Error()
			}
		}
		if errors.Is(err, errTenantGone) {
			res.Action, res.Status, res.Error = ActionSkipped, "", "tenant was deleted"
		}
		return res, nil
	}
	return res, gp
}

var errTenantGone = errors.New("tenant no longer exists")

// errGenerationMoved is why a tenant was left alone: the generation a pass was bringing tenants to
// is no longer the latest, or reaching it would take the tenant back.
type errGenerationMoved struct{ pass, latest, applied int64 }

func (e *errGenerationMoved) Error() string {
	if e.applied > e.pass {
		return fmt.Sprintf("the tenant is at generation %d, newer than %d: a generation never goes backwards", e.applied, e.pass)
	}
	return fmt.Sprintf("generation %d was published during this pass, which brings tenants to %d; the next pass applies it", e.latest, e.pass)
}

// desiredInTx chooses, inside the tenant's transaction, the generation it is brought to: the
// latest, or the one it has applied (o.Target), or the modules of a preview. A pass that read an
// older latest leaves the tenant alone, as it does any move backwards.
func (p *Plane) desiredInTx(ctx context.Context, tx *schema.Tx, o ReconcileOptions, applied sql.NullInt64, latest int64) (desired, error) {
	if o.Modules != nil {
		return desired{reg: o.Modules}, nil
	}
	n := latest
	if o.Target == TargetApplied && applied.Valid {
		n = applied.Int64
	}
	switch {
	case n == 0:
		return desired{}, errNoGeneration
	case o.pass.gen != 0 && n != o.pass.gen:
		return desired{}, &errGenerationMoved{pass: o.pass.gen, latest: n, applied: applied.Int64}
	case applied.Valid && n < applied.Int64:
		return desired{}, &errGenerationMoved{pass: n, latest: latest, applied: applied.Int64}
	case o.pass.gen == n:
		return o.pass, nil
	}
	return p.desiredAt(ctx, tx, n)
}

func (p *Plane) reconcileInTx(ctx context.Context, tx *schema.Tx, slug ident.Slug, o ReconcileOptions, res *Result) (*groupPlan, error) {
	var (
		schemaName, status string
		followAll          bool
		chosen             []string
		managedJSON        []byte
		applied            sql.NullInt64
		latest             int64
	)
	var open bool
	var reason string
	err := tx.QueryRowContext(ctx, `SELECT schema_name, follow_all, modules, status, status_reason, `+managedSQL+`, generation,
		(SELECT coalesce(max(generation), 0) FROM erpctl.generations), `+apiOpenSQL+` FROM erpctl.tenants t WHERE slug = $1`, slug.String()).
		Scan(&schemaName, &followAll, &stringArray{&chosen}, &status, &reason, &managedJSON, &applied, &latest, &open)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errTenantGone
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	d, err := p.desiredInTx(ctx, tx, o, applied, latest)
	if err != nil {
		return nil, err
	}
	res.Generation = d.gen
	reg := d.reg
	enabled, err := enabledModules(reg, followAll, chosen)
	if err != nil {
		return nil, err
	}
	var prev schema.Managed
	if err := json.Unmarshal(managedJSON, &prev); err != nil {
		return nil, fmt.Errorf("read managed objects: %w", err)
	}
	desired, err := reg.Desired(enabled, schemaName)
	if err != nil {
		return nil, err
	}
	current, err := p.planner.Inspect(ctx, tx, schemaName)
	if err != nil {
		return nil, err
	}
	res.Inspected = true
	hash := reg.Hash(enabled)
	diff, err := p.diffTenant(ctx, tx, current, desired, hash, prev, reg.Renames(enabled))
	if err != nil {
		return nil, err
	}
	res.Unmanaged = diff.Unmanaged
	changes := diff.Apply
	if len(diff.Destructive) > 0 {
		// Unqualified, like SQL, so that tenants in the same state show the same plan.
		if res.Destructive, err = p.planner.Plan(ctx, diff.Destructive, ""); err != nil {
			return nil, err
		}
		if o.AllowDestructive {
			changes = append(changes, diff.Destructive...)
		}
	}
	stmts, err := p.planner.Plan(ctx, changes, "")
	if err != nil {
		return nil, err
	}
	ev, err := p.evolutionOf(ctx, tx, reg, enabled, slug, current, changes, stmts)
	if err != nil {
		return nil, err
	}
	if diff.Missing {
		ev.stmts = append([]string{"CREATE SCHEMA " + ident.Quote(schemaName)}, ev.stmts...)
		ev.renames = 0
	}
	if o.DryRun {
		if len(diff.Destructive) > 0 && !o.AllowDestructive && current != nil {
			// A plan also counts the rows a destructive conversion would not convert, which
			// --allow-destructive would meet.
			extra, err := schema.DataChecks(ctx, diff.Destructive)
			if err != nil {
				return nil, err
			}
			c := *ev
			c.checks = append(slices.Clone(ev.checks), extra...)
			ev = &c
		}
		return p.dryRunInTx(ctx, tx, d, slug, schemaName, status, ev, o, res, diff.Missing)
	}
	if len(diff.Destructive) > 0 && !o.AllowDestructive {
		res.Action, res.Status = ActionBlocked, StatusBlocked
		// Recorded so that the fast path keeps the tenant Blocked while nothing changes.
		fp, err := schema.Fingerprint(ctx, tx, schemaName)
		if err != nil {
			return nil, err
		}
		if err := p.recordBlocked(ctx, tx, slug, d.gen, status, schemaName, hash, fp, diff.Destructive, o.Cause); err != nil {
			return nil, err
		}
		return &groupPlan{d: d, blocked: diff.Destructive, destructiveSQL: res.Destructive}, nil
	}
	managed, err := json.Marshal(schema.ManagedOf(desired))
	if err != nil {
		return nil, err
	}
	gp := &groupPlan{d: d, ev: ev, managed: managed}
	if err := p.applyInTx(ctx, tx, slug, schemaName, status, reason, hash, o.eventKind(), o.Cause, open && !diff.Missing, ev, gp, res, false); err != nil {
		return nil, err
	}
	if diff.Missing {
		gp.ev = ev.withoutCreateSchema()
	}
	return gp, nil
}

// dryRunInTx fills a dry run's result: the plan, the pending migration steps, and the data
// checks the tenant's rows fail.
func (p *Plane) dryRunInTx(ctx context.Context, tx *schema.Tx, d desired, slug ident.Slug, schemaName, status string, ev *evolution, o ReconcileOptions, res *Result, missing bool) (*groupPlan, error) {
	res.SQL, res.Steps, res.DataDependent = ev.stmts, ev.pendingNames(), ev.marks()
	res.Action, res.Status = ActionPlanned, status
	if !missing {
		seeds, err := p.pendingSeeds(ctx, tx, slug, d.reg)
		if err != nil {
			return nil, err
		}
		res.Seeds = seeds
	}
	if len(ev.stmts) == 0 && len(res.Steps) == 0 && len(res.Seeds) == 0 {
		res.Action = ActionUnchanged
	}
	failures, _, err := p.applyEvolution(ctx, tx, schemaName, ev, true, nil)
	if err != nil {
		return nil, err
	}
	res.DataChecks = failures
	if (len(res.Destructive) > 0 && !o.AllowDestructive) || len(failures) > 0 {
		res.Action = ActionBlocked
	}
	if missing {
		return nil, nil // CREATE SCHEMA names the tenant
	}
	r := *res
	return &groupPlan{d: d, dryRun: &r, ev: ev}, nil
}

// applyInTx applies a plan to one tenant in tx and records the outcome: Ready with the
// fingerprint that results (the group's, or computed and taught to the group when it has none
// yet), or Blocked with reason DataCheckFailed and nothing applied when its rows fail a data
// check. The record of a Ready tenant goes in the plan's last round trip. open says whether the
// data API's role has its grants on the schema already.
//
// The result is applied when anything of the tenant changed (statements, steps, seed rows, or its
// status or reason), unchanged otherwise.
//
// With commit, the batch that records the apply commits too (schema.CommitStmt): the caller's
// Commit then only gives the connection back. A refused data check is recorded uncommitted.
func (p *Plane) applyInTx(ctx context.Context, tx *schema.Tx, slug ident.Slug, schemaName, status, reason, hash, kind, why string, open bool, ev *evolution, gp *groupPlan, res *Result, commit bool) error {
	fpAfter := gp.fingerprint()
	res.SQL, res.Steps, res.DataDependent = ev.stmts, ev.pendingNames(), ev.marks()
	seeds, err := p.pendingSeeds(ctx, tx, slug, gp.d.reg)
	if err != nil {
		return err
	}
	res.Seeds = seeds
	// A schema made now, or one made before the database had Citus, is distributed first.
	record, fpAt, err := p.readyStatements(ctx, tx, readyRecord{slug: slug, schemaName: schemaName, want: gp.d, hash: hash, fp: fpAfter,
		managed: gp.managed, kind: kind, why: why, stmts: ev.stmts, ev: ev, open: open, distributeSelf: true})
	if err != nil {
		return err
	}
	if commit {
		record = append(record, schema.CommitStmt)
	}
	failures, recorded, err := p.applyEvolution(ctx, tx, schemaName, ev, false, record)
	if err != nil {
		return err
	}
	if len(failures) > 0 {
		res.Action, res.Status, res.DataChecks = ActionBlocked, StatusBlocked, failures
		return p.recordRefused(ctx, tx, slug, gp.d.gen, status, schemaName, hash, ev.stmts, failures)
	}
	if fpAfter == "" {
		gp.learnFingerprint(recorded[fpAt])
	}
	res.Action, res.Status = ActionApplied, StatusReady
	if len(ev.stmts) == 0 && len(res.Steps) == 0 && len(res.Seeds) == 0 && status == StatusReady && reason == ReasonUpToDate {
		res.Action = ActionUnchanged
	}
	return nil
}

// diffTenant diffs a tenant schema against its desired state, whose hash is hash. An existing
// schema is compared with the desired state as PostgreSQL prints it back, so that a changed
// check expression is seen (Atlas's default mode matches checks by name only); that is computed
// once per desired state, not per tenant.
func (p *Plane) diffTenant(ctx context.Context, tx *schema.Tx, current, desired *atlas.Schema, hash string, prev schema.Managed, renames []modules.Rename) (*schema.Diff, error) {
	if current == nil {
		return p.planner.Diff(ctx, nil, desired, prev)
	}
	norm, err := p.planner.NormalizeOnce(ctx, tx, hash, desired)
	if err != nil {
		return nil, err
	}
	return p.planner.DiffNormalized(ctx, current, norm, prev, renames)
}

// recordBlocked marks a tenant Blocked with the destructive SQL it would need, qualified so that
// a human can run it as it is. Nothing is applied.
func (p *Plane) recordBlocked(ctx context.Context, tx *schema.Tx, slug ident.Slug, gen int64, prevStatus, schemaName, hash, fp string, destructive []atlas.Change, why string) error {
	qualified, err := p.planner.Plan(ctx, destructive, schemaName)
	if err != nil {
		return err
	}
	blocked := strings.Join(qualified, ";\n")
	msg := "only a destructive change would make the schema match; rerun with --allow-destructive to apply it"
	if why != "" {
		msg += " (found by " + why + ")"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET `+setStatus(StatusBlocked, ReasonDestructiveChange)+`,
		blocked_sql = $2, last_error = $3, desired_hash = $4, fingerprint = $5, last_reconciled_at = now(), updated_at = now()
		WHERE slug = $1`, slug.String(), blocked, msg, hash, fp); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if prevStatus == StatusBlocked && why == "" {
		return nil
	}
	return insertGenEvent(ctx, tx, slug, gen, "blocked", why, blocked, 0, "blocked", nil)
}

// passCheckSQL re-reads a tenant under its lock: what changedSincePass compares. It runs in the
// lock's round trip (lockTxThen, passCheckStmt).
const passCheckSQL = `SELECT desired_hash, fingerprint, status, (SELECT coalesce(max(generation), 0) FROM erpctl.generations),
		` + apiOpenSQL + ` FROM erpctl.tenants t WHERE slug = $1`

// passCheckStmt is passCheckSQL for lockTxThen, whose row changedSincePass reads.
func passCheckStmt(t *tenantRef) schema.Stmt {
	return schema.Stmt{SQL: passCheckSQL, Args: []any{t.slug.String()}, Prepare: true}
}

// changedSincePass reads the row of passCheckStmt and reports whether another process recorded
// a reconcile of the tenant since the pass read it; it returns the tenant's status too, and
// whether the data API's role has its grants on the schema. A generation published since the
// pass began is an error: the plan is of an older one, and so is a tenant gone (no row).
func changedSincePass(t *tenantRef, o ReconcileOptions, row []string) (status string, changed, open bool, err error) {
	if len(row) != 5 {
		return "", false, false, fmt.Errorf("read tenant %q: %w", t.slug, sql.ErrNoRows)
	}
	latest, err := strconv.ParseInt(row[3], 10, 64)
	if err != nil {
		return "", false, false, fmt.Errorf("read tenant %q: generation %q: %w", t.slug, row[3], err)
	}
	if o.pass.gen != 0 && latest != o.pass.gen {
		err = &errGenerationMoved{pass: o.pass.gen, latest: latest}
	}
	hash, fp, status, open := row[0], row[1], row[2], row[4] == "t"
	return status, hash != t.desiredHash || fp != t.fp, open, err
}

// applyGroupPlanGuarded is applyGroupPlan in one round trip (guardedTx) for a tenant whose row
// is as the pass read it; a *schema.LeadError says it was not, or that another process holds
// the tenant, and nothing was applied.
func (p *Plane) applyGroupPlanGuarded(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions, start time.Time) (Result, bool, error) {
	res := Result{Tenant: t.slug.String(), SQL: gp.ev.stmts, Generation: gp.d.gen}
	open := t.currentFP != "" && p.APIRole(ctx) != ""
	tx, err := p.guardedTx(ctx, t, o, open)
	if err != nil {
		return res, false, err
	}
	defer tx.Rollback()
	ev := gp.ev
	if t.currentFP == "" {
		ev = ev.withCreateSchema(t.schema)
	}
	kind, why := o.eventOf(t.slug)
	if err := p.applyInTx(ctx, tx, t.slug, t.schema, t.status, t.reason, t.hash, kind, why, open, ev, gp, &res, true); err != nil {
		return res, false, err
	}
	if err := tx.Commit(); err != nil {
		return res, false, err
	}
	p.applied.notify(t.slug)
	res.Duration = time.Since(start)
	return res, true, nil
}

// blockGroupMember marks one more tenant of a Blocked group Blocked without inspecting it: it is
// in the state the group's first tenant was inspected in. ok is false when it changed since the
// pass read it.
func (p *Plane) blockGroupMember(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions) (Result, bool) {
	start := time.Now()
	res := Result{Tenant: t.slug.String(), SQL: []string{}}
	tx, ok, rows, err := p.lockTxThen(ctx, t.slug, o, false, passCheckStmt(t))
	if err != nil || !ok {
		return res, false
	}
	defer tx.Rollback()
	status, changed, _, err := changedSincePass(t, o, rows[0])
	if err != nil || changed || t.currentFP == "" {
		return res, false
	}
	if err := p.recordBlocked(ctx, tx, t.slug, gp.d.gen, status, t.schema, t.hash, t.currentFP, gp.blocked, o.causeFor(t.slug)); err != nil {
		return res, false
	}
	if err := tx.Commit(); err != nil {
		return res, false
	}
	res.Action, res.Status, res.Destructive, res.Duration = ActionBlocked, StatusBlocked, gp.destructiveSQL, time.Since(start)
	res.Generation = gp.d.gen
	return res, true
}

// execPlan runs a plan's statements in schemaName, in one round trip and each as exactly one
// statement (see schema.Tx.ExecStatements): CREATE SCHEMA first when the plan starts with it,
// then the unqualified rest under the schema's search_path. Each statement is sent as the same
// text for every tenant, so that the expression positions PostgreSQL stores, which schema
// fingerprints hash, are the same in every tenant the plan brings to a state.
func (p *Plane) execPlan(ctx context.Context, tx *schema.Tx, schemaName string, stmts []string) error {
	return execBatch(ctx, tx, planBatch(schemaName, stmts))
}

// planBatch is a plan's statements as execPlan sends them.
func planBatch(schemaName string, stmts []string) []string {
	var batch []string
	if len(stmts) > 0 && strings.HasPrefix(stmts[0], "CREATE SCHEMA ") {
		batch, stmts = append(batch, stmts[0]), stmts[1:]
	}
	if len(stmts) > 0 {
		batch = append(batch, "SET LOCAL search_path TO "+ident.Quote(schemaName))
		batch = append(batch, stmts...)
		batch = append(batch, "RESET search_path")
	}
	return batch
}

// recordReady records a tenant Ready in one round trip (see records.go).
func (p *Plane) recordReady(ctx context.Context, tx *schema.Tx, r readyRecord) error {
	stmts, _, err := p.readyStatements(ctx, tx, r)
	if err != nil {
		return err
	}
	if _, err := tx.Batch(ctx, stmts...); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	return nil
}

// setStatus is the SET clause that gives a tenant a status and its reason; the transition time
// moves only when the status changes. Both are constants of this package, never input.
func setStatus(status, reason string) string {
	return fmt.Sprintf(`status = '%[1]s', status_reason = '%[2]s',
		status_changed_at = CASE WHEN status IS DISTINCT FROM '%[1]s' OR status_reason IS DISTINCT FROM '%[2]s' THEN now()
			ELSE coalesce(status_changed_at, now()) END`,
		status, reason)
}

// reconcileNew is the reconciler's path for a tenant whose catalog row tx has just inserted: it
// makes the schema from the cached create plan (no inspection) and records the tenant Ready.
func (p *Plane) reconcileNew(ctx context.Context, tx *schema.Tx, slug ident.Slug, want desired, pl *plan) error {
	if err := tx.ExecStatements(ctx, markOwnDDL, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, tenantLockKey(slug))); err != nil {
		return err
	}
	if err := p.keepLocal(ctx, tx); err != nil {
		return err
	}
	schemaName := slug.Schema()
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+ident.Quote(schemaName)); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P06" {
			return fmt.Errorf("schema %s already exists but no tenant owns it: drop it or choose another slug: %w", schemaName, ErrExists)
		}
		return err
	}
	if err := p.execPlan(ctx, tx, schemaName, pl.stmts); err != nil {
		return err
	}
	if err := p.distribute(ctx, tx, schemaName); err != nil {
		return err
	}
	fp, err := pl.fingerprint(ctx, tx, schemaName)
	if err != nil {
		return err
	}
	// A tenant made now gets the final tables: every migration step is already done.
	return p.recordReady(ctx, tx, readyRecord{slug: slug, schemaName: schemaName, want: want, hash: pl.hash, fp: fp, managed: pl.managed,
		kind: "create", stmts: pl.stmts, ev: &evolution{notNeeded: pl.steps}})
}

// backoff is how long a tenant that failed n times in a row waits before the daemon retries it.
func backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

func (p *Plane) recordFailure(ctx context.Context, slug ident.Slug, gen int64, kind, why, stmts string, d time.Duration, cause error) error {
	return p.inTx(ctx, func(tx *schema.Tx) error {
		var failures int
		err := tx.QueryRowContext(ctx, `UPDATE erpctl.tenants SET `+setStatus(StatusFailed, ReasonApplyFailed)+`,
			last_error = $2, failures = failures + 1, last_reconciled_at = now(), updated_at = now()
			WHERE slug = $1 RETURNING failures`, slug.String(), cause.Error()).Scan(&failures)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET next_attempt_at = now() + $2 * interval '1 millisecond' WHERE slug = $1`,
			slug.String(), backoff(failures).Milliseconds()); err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
		return insertGenEvent(ctx, tx, slug, gen, kind, why, stmts, d, "failed", cause)
	})
}

// applyGroupPlan applies a group's plan to one more tenant of the group, data checks first. ok
// is false when the tenant did not end where the plan should have taken it (it is rolled back
// untouched) and needs its own inspection.
func (p *Plane) applyGroupPlan(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions) (Result, bool) {
	start := time.Now()
	res, ok, err := p.applyGroupPlanGuarded(ctx, t, gp, o, start)
	var lead *schema.LeadError
	if err == nil || !errors.As(err, &lead) {
		if err != nil {
			p.log.Debug("group plan did not fit; inspecting the tenant itself", "tenant", t.slug, "why", "apply", "err", err)
		}
		return res, ok
	}
	// Locked by another process, or changed since the pass read it: what follows tells which,
	// and what to do, at the cost of a round trip more.
	p.log.Debug("tenant held or changed since the pass read it; reading its row under its lock", "tenant", t.slug, "err", err)
	res = Result{Tenant: t.slug.String(), SQL: gp.ev.stmts, Generation: gp.d.gen}
	// Another process may have reconciled the tenant since the pass read it: its row is read
	// under the lock, in the lock's round trip.
	tx, ok, rows, err := p.lockTxThen(ctx, t.slug, o, false, passCheckStmt(t))
	if err != nil || !ok {
		return res, false
	}
	defer tx.Rollback()
	ev := gp.ev
	if t.currentFP == "" {
		ev = ev.withCreateSchema(t.schema)
	}
	fallback := func(why string, err error) (Result, bool) {
		p.log.Debug("group plan did not fit; inspecting the tenant itself", "tenant", t.slug, "why", why, "err", err)
		return res, false
	}
	status, changed, open, err := changedSincePass(t, o, rows[0])
	var moved *errGenerationMoved
	if errors.As(err, &moved) {
		res.Action, res.SQL, res.Error = ActionSkipped, []string{}, moved.Error()
		return res, true
	}
	if err != nil {
		return fallback("read tenant", err)
	}
	if changed {
		res.Action, res.Status, res.SQL, res.Error = ActionSkipped, status, []string{}, "reconciled by another process during this pass"
		return res, true
	}
	// The tenant started from the group's fingerprint and ran the group's SQL without error, so
	// it ends at the group's fingerprint; computing it again would scan the catalog per tenant.
	// Were it wrong, the next pass would see the difference and inspect the tenant.
	kind, why := o.eventOf(t.slug)
	if err := p.applyInTx(ctx, tx, t.slug, t.schema, status, t.reason, t.hash, kind, why, open && t.currentFP != "", ev, gp, &res, true); err != nil {
		return fallback("apply", err)
	}
	if err := tx.Commit(); err != nil {
		return fallback("commit", err)
	}
	p.applied.notify(t.slug)
	res.Duration = time.Since(start)
	return res, true
}
