package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	builtin "github.com/erpctl/erpctl/hcl"
)

const (
	labelRuns = 5
	// benchSelector is what an operator types: free tenants in the EU, about a quarter of the fleet.
	benchSelector = "tier=free,region in (eu)"
)

// benchDeployment stages the fleet as the bench labels it: 10 canaries, the free tier, the rest;
// batches of 4, as the default rollout's workers.
const benchDeployment = `deployment {
  stage "canary" {
    selector     = "ring=canary"
    parallel     = 4
    max_failures = 1
  }
  stage "free" {
    selector     = "tier=free"
    parallel     = 4
    max_failures = "2%"
  }
}
`

// stages labels the fleet, times tenant list -l, and times a column's rollout through a
// deployment's stages beside the same kind of rollout without one (a canary, then waves).
func (b *bench) stages(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	// Half free, 30 % pro, the rest enterprise; half of each in the EU; 10 canaries.
	if _, err := b.db.ExecContext(ctx, `UPDATE erpctl.tenants SET labels = jsonb_build_object(
			'tier', CASE WHEN h < 50 THEN 'free' WHEN h < 80 THEN 'pro' ELSE 'enterprise' END,
			'region', CASE WHEN h % 2 = 0 THEN 'eu' ELSE 'us' END)
		FROM (SELECT slug AS s, abs(hashtext(slug)) % 100 AS h FROM erpctl.tenants) x WHERE slug = x.s`); err != nil {
		return nil, fmt.Errorf("label the fleet: %w", err)
	}
	if _, err := b.db.ExecContext(ctx, `UPDATE erpctl.tenants SET labels = labels || '{"ring": "canary"}'
		WHERE slug IN (SELECT slug FROM erpctl.tenants ORDER BY slug LIMIT 10)`); err != nil {
		return nil, fmt.Errorf("label the canaries: %w", err)
	}
	sel, err := labels.ParseSelector(benchSelector)
	if err != nil {
		return nil, err
	}
	// One list right after the fleet's relabelling, which left a dead row for each tenant, and
	// the timed ones after the VACUUM that autovacuum would have run by then (it starts within a
	// minute of so many dead rows).
	if _, err := b.db.ExecContext(ctx, `ANALYZE erpctl.tenants`); err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := b.p.ListTenantsSelected(ctx, sel); err != nil {
		return nil, err
	}
	justAfter := time.Since(start)
	if _, err := b.db.ExecContext(ctx, `VACUUM ANALYZE erpctl.tenants`); err != nil {
		return nil, err
	}
	waited, still := b.autovacuumQuiet(ctx, 10*time.Minute)
	var lists []time.Duration
	matched := 0
	for range labelRuns {
		start := time.Now()
		ts, err := b.p.ListTenantsSelected(ctx, sel)
		if err != nil {
			return nil, err
		}
		lists = append(lists, time.Since(start))
		matched = len(ts)
	}
	list := result{Name: "tenant list -l", Tenants: n}
	list.setTimes(lists, "ms")
	list.setPass("< 100 ms", inUnit(median(lists), "ms") < 100)
	list.addNote("%q: %d tenants matched; the control plane's query and scan, in-process, median of %d after a VACUUM; %s right after every tenant was relabelled",
		benchSelector, matched, labelRuns, justAfter.Round(time.Millisecond))
	if waited > time.Second || still > 0 {
		list.addNote("timed after %s waiting for autovacuum's workers to end, %d still at work", waited.Round(time.Second), still)
	}
	b.logf("tenant list -l %q: %d tenants in %s", benchSelector, matched, median(lists))

	// The product module as the fleet has it now (an earlier scenario may have changed it).
	productFile := filepath.Join(b.modulesDir, "product.hcl")
	product, err := os.ReadFile(productFile)
	hadFile := err == nil
	if !hadFile {
		if product, err = builtin.FS.ReadFile("product.hcl"); err != nil {
			return nil, err
		}
	}
	addColumn := func(cols ...string) string {
		var add string
		for _, c := range cols {
			add += "  column \"" + c + "\" {\n    type = text\n    null = true\n  }\n"
		}
		return strings.Replace(string(product), `  column "category_id" {`, add+`  column "category_id" {`, 1)
	}
	dep := filepath.Join(b.modulesDir, rollouts.FileName)
	defer os.Remove(dep)
	timed := func(src, deployment string) (*controlplane.Pass, error) {
		if err := os.WriteFile(productFile, []byte(src), 0o644); err != nil {
			return nil, err
		}
		os.Remove(dep)
		if deployment != "" {
			if err := os.WriteFile(dep, []byte(deployment), 0o644); err != nil {
				return nil, err
			}
		}
		if err := b.settleChanges(ctx); err != nil {
			return nil, err
		}
		if err := publishModules(ctx, b.p); err != nil {
			return nil, err
		}
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 4, Canary: 3, MaxFailures: 3})
		if err != nil {
			return nil, err
		}
		if a := pass.Counts[controlplane.ActionApplied]; a != n {
			return nil, fmt.Errorf("rollout: %d of %d tenants applied: %v", a, n, pass.Counts)
		}
		return pass, nil
	}
	// Rounds in turns, each adding a column of its own, so that the machine's drift falls on
	// both; one round each above 20,000 tenants, where a rollout takes minutes.
	rounds := 3
	if n > 20_000 {
		rounds = 1
	}
	if v := os.Getenv("BENCH_STAGE_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 0 {
			return nil, fmt.Errorf("BENCH_STAGE_ROUNDS=%q: want a count of rounds, 0 for tenant list -l alone", v)
		}
	}
	if rounds == 0 {
		return []result{list}, nil
	}
	var cols []string
	var stagedRuns, plainRuns []time.Duration
	var stagedWaves, plainWaves int
	for i := range rounds {
		cols = append(cols, fmt.Sprintf("stage_%d", i))
		staged, err := timed(addColumn(cols...), benchDeployment)
		if err != nil {
			return nil, fmt.Errorf("staged rollout: %w", err)
		}
		stagedRuns, stagedWaves = append(stagedRuns, staged.Duration), staged.Rollouts[0].Waves
		b.logf("round %d: staged rollout: %s for %d tenants", i+1, staged.Duration.Round(time.Millisecond), n)
		cols = append(cols, fmt.Sprintf("plain_%d", i))
		plain, err := timed(addColumn(cols...), "")
		if err != nil {
			return nil, fmt.Errorf("rollout without stages: %w", err)
		}
		plainRuns, plainWaves = append(plainRuns, plain.Duration), plain.Rollouts[0].Waves
		b.logf("round %d: rollout without stages: %s", i+1, plain.Duration.Round(time.Millisecond))
	}
	// Leave product as it was: the columns go, applied as a rollback.
	if hadFile {
		err = os.WriteFile(productFile, product, 0o644)
	} else {
		err = os.Remove(productFile)
	}
	if err != nil {
		return nil, err
	}
	if err := publishModules(ctx, b.p); err != nil {
		return nil, err
	}
	if _, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 4, AllowDestructive: true}); err != nil {
		return nil, err
	}

	r := result{Name: "staged rollout, 3 stages", Tenants: n}
	r.setTimes(stagedRuns, "s")
	r.P95 = nil
	r.setBaseline(median(plainRuns).Seconds(), "the same rollout without stages (a canary of 3, then waves that double)", false)
	extra := median(stagedRuns).Seconds()/median(plainRuns).Seconds() - 1
	r.setPass("stages add < 5 %", extra < 0.05)
	r.addNote("a nullable column to every tenant in one pass, 4 workers; stages add %.1f %% (medians of %d rounds in turns: staged %s, without %s; %d and %d waves)",
		100*extra, rounds, roundSeconds(stagedRuns), roundSeconds(plainRuns), stagedWaves, plainWaves)
	return []result{list, r}, nil
}

// roundSeconds prints durations as "[1.23 1.31 1.27] s".
func roundSeconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return "[" + strings.Join(parts, " ") + "] s"
}

// autovacuumQuiet waits, up to limit, until no autovacuum worker is at work: after a fleet's
// making autovacuum works through the catalog's new rows for many minutes (pg_attribute alone
// has millions at 100,000 tenants), and a query timed beside it measures the vacuum. It returns
// how long it waited and how many workers were still at work.
func (b *bench) autovacuumQuiet(ctx context.Context, limit time.Duration) (time.Duration, int) {
	start := time.Now()
	for {
		var n int
		if err := b.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`).Scan(&n); err != nil {
			return time.Since(start), 0
		}
		if n == 0 || time.Since(start) >= limit {
			if n > 0 || time.Since(start) > time.Second {
				b.logf("waited %s for autovacuum's workers; %d still at work", time.Since(start).Round(time.Second), n)
			}
			return time.Since(start), n
		}
		select {
		case <-ctx.Done():
			return time.Since(start), n
		case <-time.After(2 * time.Second):
		}
	}
}

// settleServer does, before a timed change of every tenant (erpctl's pass or its raw SQL floor)
// or the data API's loads, what autovacuum would otherwise start in the middle of it on its own
// schedule: it vacuums and analyzes the catalogs DDL writes and erpctl's tables, which the
// fleet's making or the change before left dead rows in, and takes a checkpoint. Without it each
// side paid for the other's leftovers: a perf profile of erpctl's rename pass at 9,930 tenants
// found a third of the server's CPU in autovacuum, started by the journal's rows and the raw
// undo written just before.
func (b *bench) settleServer(ctx context.Context) error {
	start := time.Now()
	b.autovacuumQuiet(ctx, 10*time.Minute)
	// The catalogs and CHECKPOINT need the superuser; as another role VACUUM skips them.
	super := cmp.Or(b.superURL, b.url)
	if err := execOn(ctx, super, `VACUUM (ANALYZE) pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_attrdef,
		pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_depend, pg_catalog.pg_type, pg_catalog.pg_statistic,
		erpctl.tenants, erpctl.events, erpctl.changed_schemas, erpctl.migration_steps`); err != nil {
		return fmt.Errorf("vacuum before a timed change: %w", err)
	}
	if err := execOn(ctx, super, `CHECKPOINT`); err != nil {
		return fmt.Errorf("checkpoint before a timed change: %w", err)
	}
	if d := time.Since(start); d > time.Second {
		b.logf("settled the server before a timed change in %s", d.Round(time.Millisecond))
	}
	return nil
}
