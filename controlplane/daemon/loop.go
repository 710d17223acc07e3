package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/console"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// LoopConfig tunes the reconcile loop.
type LoopConfig struct {
	Interval         time.Duration // between passes; 0: 30s
	Workers          int           // tenants reconciled at once; 0: 4
	LockTimeout      time.Duration // 0: the reconciler's default
	StatementTimeout time.Duration // 0: the reconciler's default
	// Canary and MaxFailures stage the rollout of a change (controlplane.ReconcileOptions);
	// 0 turns either off. erpctl daemon's flags default to 3 and 3.
	Canary, MaxFailures int
	// Settle is how long a wake-up waits for a burst of changes to end; 0: 50ms.
	Settle time.Duration
	// TrackChanges installs change tracking (event triggers, where the role may create them):
	// DDL made outside erpctl then wakes an incremental pass over the tenants it touched, each
	// Interval runs an incremental pass too, and every tenant is checked each FullCheck.
	TrackChanges bool
	FullCheck    time.Duration // between full passes while changes are tracked; 0: 5m
	// PublishModules publishes the daemon's module files as a new generation whenever their
	// content changes (development: edit a file, and every tenant has it a moment later). Without
	// it the daemon never publishes: it follows the catalog's latest generation whatever its
	// files say, and says once when they differ.
	PublishModules bool
	// OnPass is a test signal: called after every pass that completed.
	OnPass func(*controlplane.Pass)
}

func (c LoopConfig) withDefaults() LoopConfig {
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Settle <= 0 {
		c.Settle = 50 * time.Millisecond
	}
	if c.FullCheck <= 0 {
		c.FullCheck = 5 * time.Minute
	}
	return c
}

// minRetryWait keeps a Failed tenant whose backoff has already ended (another process holds it)
// from turning the loop into a busy one.
const minRetryWait = time.Second

// Loop reconciles every tenant on an interval, at once when woken, and when the first Failed
// tenant's backoff ends if that comes before the interval.
type Loop struct {
	runner
	p    *controlplane.Plane
	cfg  LoopConfig
	log  *slog.Logger
	m    *metrics
	wake chan struct{}

	started atomic.Bool            // the database answered and the first pass has begun
	dbErr   atomic.Pointer[string] // why the last pass failed, nil after a good one
	passes  atomic.Int64           // passes completed, for the console
	last    atomic.Pointer[passStat]

	pending pendingChanges // what woke the loop since its last pass

	files    *modules.Registry // the module files as the last pass saw them
	filesGen int64             // and the latest generation then
	lastGen  int64             // the generation the last pass brought tenants to
	// rolloutShown: /metrics shows an open rollout's stages, to be read again after each full pass
	rolloutShown bool
}

// NewLoop returns the loop over p; m may be nil.
func NewLoop(p *controlplane.Plane, cfg LoopConfig, log *slog.Logger, m *metrics) *Loop {
	if m == nil {
		m = newMetrics()
	}
	return &Loop{p: p, cfg: cfg.withDefaults(), log: log, m: m, wake: make(chan struct{}, 1)}
}

// Wake asks for a full pass now; wake-ups that come while one is pending are one.
func (l *Loop) Wake() {
	l.pending.addFull()
	l.signal()
}

// WakeFor asks for an incremental pass over tenant slug now: change tracking saw its schema change.
func (l *Loop) WakeFor(slug string) {
	l.pending.add(slug)
	l.signal()
}

// Retry asks for a pass now over what earlier passes left to do: a pass that failed, and the
// tenants whose change the database refused. It adds nothing to do.
func (l *Loop) Retry() { l.signal() }

func (l *Loop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Start starts the loop; its first pass begins at once.
func (l *Loop) Start(ctx context.Context) error {
	l.run(ctx, l.loop)
	return nil
}

func (l *Loop) loop(ctx context.Context) error {
	fullEvery := l.cfg.Interval
	if l.startTracking(ctx) {
		fullEvery = l.cfg.FullCheck
	}
	// Ready once the database answers: the data API serves each tenant at the desired state it
	// has applied and reconciles on demand one that is behind, so it need not wait for the
	// first full pass (26 s at 100,000 tenants).
	if err := l.p.Pool().Ping(ctx); err != nil {
		msg := "the database does not answer"
		l.dbErr.Store(&msg)
		l.log.Error("database ping failed", "err", err)
	}
	l.started.Store(true)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nextFull time.Time // the first pass is a full one
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-l.wake:
			select {
			case <-time.After(l.cfg.Settle):
			case <-ctx.Done():
				return nil
			}
		}
		asked, slugs := l.pending.take()
		due := !time.Now().Before(nextFull)
		full := asked || due
		// Only the safety net's own passes may reuse the fleet's fingerprints: DDL by hand is
		// counted by the server seconds after its commit, and a pass asked for now (a tenant
		// changed, notifications were lost) must see it.
		pass := l.pass(ctx, full, due && !asked, slugs)
		if full {
			// From the end of the pass: a full pass longer than fullEvery must not run back to back.
			nextFull = time.Now().Add(fullEvery)
		}
		wait := min(l.cfg.Interval, time.Until(nextFull))
		if pass != nil && pass.NextRetryAt != nil {
			wait = min(wait, max(time.Until(*pass.NextRetryAt), minRetryWait))
		}
		if pass != nil && rolling(pass) {
			// A rollout in progress: stages start and end in full passes, so the next pass is one,
			// at the interval or when a stage's wait ends.
			nextFull = time.Now()
			if pass.NextRolloutAt != nil {
				wait = min(l.cfg.Interval, max(time.Until(*pass.NextRolloutAt), minRetryWait))
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(wait)
	}
}

// pass runs one reconcile of every tenant, or in an incremental pass of those that changed
// (slugs, and what change tracking recorded), to the latest generation; nil when it failed. A
// pass after a new generation was published is a full one. With reuse, a full pass may take the
// fleet's fingerprints from the last one (ReconcileOptions.ReuseFingerprints).
func (l *Loop) pass(ctx context.Context, full, reuse bool, slugs []string) *controlplane.Pass {
	l.followFiles(ctx)
	o := controlplane.ReconcileOptions{Workers: l.cfg.Workers,
		LockTimeout: l.cfg.LockTimeout, StatementTimeout: l.cfg.StatementTimeout,
		Canary: l.cfg.Canary, MaxFailures: l.cfg.MaxFailures, ReuseFingerprints: reuse}
	latest, _, err := l.p.Generations().Latest(ctx, nil)
	// A new generation changes the desired state of every tenant that has its changed modules.
	full = full || latest != l.lastGen
	// A full pass claims what change tracking recorded too: it covers those tenants.
	var changed []ident.Slug
	if err == nil {
		changed, err = l.p.ChangedTenants(ctx)
	}
	// Fingerprints read before, or counts of catalog writes, may not show what change tracking or
	// a tenant's wake-up just told of: the server counts a write seconds after its commit.
	o.ReuseFingerprints = reuse && len(changed) == 0 && len(slugs) == 0
	if err == nil && !full {
		o.Only = incrementalSet(slugs, changed)
		// What these tenants get is a repair of DDL made outside erpctl: their events say so.
		o.Causes = make(map[ident.Slug]string, len(o.Only))
		for _, s := range o.Only {
			o.Causes[s] = changeTrackingCause
		}
	}
	var pass *controlplane.Pass
	if err == nil {
		pass, err = l.p.ReconcileAll(ctx, o)
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		// Nothing the pass was for is known to be done: the next one does it again, and comes
		// as soon as the database takes writes again when it refused them (writewatch.go).
		l.pending.restore(full, slugs, changed)
		l.p.NoteWrite(err)
		msg := "the last reconcile pass failed (see the daemon's log)"
		if reason, ok := controlplane.WriteRefusal(err); ok {
			msg = reason
		}
		// /readyz is public: it says what is wrong in a few words; the log has the details.
		l.dbErr.Store(&msg)
		l.log.Error("reconcile pass failed", "err", err)
		return nil
	}
	l.dbErr.Store(nil)
	l.lastGen = pass.Generation
	if full {
		if byGen, err := l.p.Generations().TenantsByGeneration(ctx); err == nil {
			l.m.observeGenerations(pass.Generation, byGen)
		}
		if len(pass.Rollouts) > 0 || l.rolloutShown {
			if rs, err := l.p.Rollouts().List(ctx, 1); err == nil {
				var latest *rollouts.Rollout
				if len(rs) > 0 {
					latest = &rs[0]
				}
				l.m.observeStages(latest)
				l.rolloutShown = latest != nil && latest.State != controlplane.RolloutDone
			}
		}
	}
	l.passes.Add(1)
	l.last.Store(&passStat{at: time.Now(), took: pass.Duration})
	l.m.observe(pass, full)
	level := slog.LevelDebug
	if len(pass.Results) != pass.Counts[controlplane.ActionUnchanged] {
		level = slog.LevelInfo
	}
	l.log.Log(ctx, level, "reconcile pass", "generation", pass.Generation, "full", full, "tenants", len(pass.Results), "unchanged", pass.Counts[controlplane.ActionUnchanged],
		"applied", pass.Counts[controlplane.ActionApplied], "blocked", pass.Counts[controlplane.ActionBlocked],
		"failed", pass.Counts[controlplane.ActionFailed], "skipped", pass.Counts[controlplane.ActionSkipped],
		"held", pass.Counts[controlplane.ActionHeld], "waiting", pass.Counts[controlplane.ActionWaiting],
		"duration", pass.Duration.Round(time.Millisecond), "fingerprints_reused", pass.FingerprintsReused)
	for _, r := range pass.Results {
		if r.Action == controlplane.ActionFailed || r.Action == controlplane.ActionBlocked {
			l.log.Warn("tenant not reconciled", "tenant", r.Tenant, "action", r.Action, "err", r.Error)
		}
	}
	if l.cfg.OnPass != nil {
		l.cfg.OnPass(pass)
	}
	return pass
}

// passStat is when the last pass ended and how long it took.
type passStat struct {
	at   time.Time
	took time.Duration
}

// consoleHealth is the daemon's state as the console's fleet page shows it: its passes, and
// whether the database answers and takes writes.
func (l *Loop) consoleHealth(p *controlplane.Plane) func(context.Context) console.Health {
	problems := l.health(p)
	return func(ctx context.Context) console.Health {
		h := console.Health{Passes: l.passes.Load(), DatabaseWritable: p.WritesRefused() == "", Problems: problems()}
		if h.Problems == nil {
			h.Problems = []string{}
		}
		if s := l.last.Load(); s != nil {
			at := s.at
			h.LastPassAt, h.LastPassDurationMS = &at, float64(s.took.Microseconds())/1000
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h.DatabaseReachable = p.Pool().Ping(pctx) == nil
		return h
	}
}

// health returns what /readyz reports: the problems that make the daemon not ready, none when it is.
func (l *Loop) health(p *controlplane.Plane) func() []string {
	return func() []string {
		var problems []string
		if !l.started.Load() {
			problems = append(problems, "starting")
		}
		if err := p.ModulesError(); err != nil && l.cfg.PublishModules {
			problems = append(problems, "modules: "+err.Error()+" (not published; tenants stay at the latest generation)")
		}
		if s := l.dbErr.Load(); s != nil {
			problems = append(problems, "database: "+*s)
		} else if s := p.WritesRefused(); s != "" {
			problems = append(problems, "database: "+s)
		}
		return problems
	}
}

// followFiles reads the daemon's module files again and, when they or the latest generation
// changed since the last pass, publishes them (PublishModules) or says once that the daemon
// follows the generation, not them. A publish goes through the same check as erpctl module
// publish: modules that would drop or narrow anything, or cannot be planned, are not published.
func (l *Loop) followFiles(ctx context.Context) {
	if err := l.p.ReloadModules(); err != nil {
		l.m.modules.Set(0)
		l.log.Error("module files are invalid; nothing of them is published", "err", err)
		return
	}
	l.m.modules.Set(1)
	files := l.p.LocalModules()
	differ, gen, err := l.p.FilesDiffer(ctx)
	if err != nil || (files == l.files && gen == l.filesGen) {
		return
	}
	first, filesChanged := l.files == nil, files != l.files
	l.files, l.filesGen = files, gen
	if !differ {
		return
	}
	// Files that did not change are not published again over what another process published
	// since: that generation stands until these files change.
	if !l.cfg.PublishModules || (!first && !filesChanged) {
		l.log.Warn("this daemon's module files differ from the latest published generation; it follows the generation, not its files "+
			"(erpctl module diff shows how they differ; erpctl module publish publishes them)", "generation", gen)
		return
	}
	res, err := l.p.PublishChecked(ctx, "published by erpctl daemon --publish-modules", controlplane.ReconcileOptions{Workers: l.cfg.Workers})
	if err != nil {
		l.log.Error("module files not published", "err", err)
		return
	}
	if res.Changed {
		l.files, l.filesGen = files, res.Generation
		l.log.Info("published the module files", "generation", res.Generation, "hash", res.Hash)
	}
}

// rolling reports whether a pass left a rollout that goes on by itself: running, or waiting for a
// stage's time (not for an approval, which wakes the daemon when given).
func rolling(pass *controlplane.Pass) bool {
	for _, r := range pass.Rollouts {
		if r.State == controlplane.RolloutRunning || (r.State == controlplane.RolloutWaiting && r.NextAt != nil) {
			return true
		}
	}
	return false
}

// changeTrackingCause is the reason of the repairs of an incremental pass.
const changeTrackingCause = "change tracking: DDL on the tenant's schema outside erpctl"
