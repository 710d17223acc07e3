package main

import (
	"context"
	"fmt"
	"time"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/internal/ident"
)

// The naive baseline checks tenants one at a time with the Atlas library, as its documentation
// shows. It is sampled on up to naiveSample tenants spread over the fleet, stopping when its time
// budget is spent, and extrapolated to the fleet: median time per tenant × tenants (the median,
// not the mean, so that a burst of other work on the machine does not inflate the baseline).
const naiveSample = 100

// naiveRun is the outcome of sampling the naive baseline.
type naiveRun struct {
	times   []time.Duration
	changed int // tenants whose diff was not empty
}

// extrapolate is the naive time for n tenants, in seconds.
func (r naiveRun) extrapolate(n int) float64 { return median(r.times).Seconds() * float64(n) }

func (r naiveRun) note(n int) string {
	return fmt.Sprintf("naive baseline sampled on %d of %d tenants one at a time (median %.0f ms, mean %.0f ms a tenant), extrapolated to %d tenants from the median",
		len(r.times), n, inUnit(median(r.times), "ms"), inUnit(mean(r.times), "ms"), n)
}

// sampleNaive runs check on tenants spread over the fleet, one at a time, within budget.
// check returns how many changes the tenant's diff had.
func (b *bench) sampleNaive(ctx context.Context, label string, budget time.Duration, check func(ctx context.Context, schemaName string) (int, error)) (naiveRun, error) {
	var run naiveRun
	start := time.Now()
	sample := spread(b.slugs, naiveSample)
	for i, slug := range sample {
		if time.Since(start) > budget {
			b.logf("%s: time budget spent after %d tenants", label, i)
			break
		}
		t := time.Now()
		changes, err := check(ctx, ident.SchemaName(slug))
		if err != nil {
			return run, fmt.Errorf("%s, tenant %s: %w", label, slug, err)
		}
		run.times = append(run.times, time.Since(t))
		if changes > 0 {
			run.changed++
		}
		if (i+1)%25 == 0 {
			b.logf("%s: %d/%d tenants, mean %.0f ms", label, i+1, len(sample), inUnit(mean(run.times), "ms"))
		}
	}
	return run, nil
}

// naiveDesired is the desired state of a tenant schema, evaluated once and renamed per tenant
// (outside the timed part, which flatters the baseline).
func (b *bench) naiveDesired() (func(schemaName string) *schema.Schema, error) {
	reg := b.p.LocalModules()
	desired, err := reg.Desired(reg.Names(), "tenant")
	if err != nil {
		return nil, err
	}
	return func(name string) *schema.Schema {
		desired.Name = name
		return desired
	}, nil
}

// naiveNoopCheck is Atlas inspect + diff of one tenant against the desired state.
func (b *bench) naiveNoopCheck() (func(ctx context.Context, schemaName string) (int, error), error) {
	desired, err := b.naiveDesired()
	if err != nil {
		return nil, err
	}
	drv, err := postgres.Open(b.db)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, name string) (int, error) {
		current, err := drv.InspectSchema(ctx, name, nil)
		if err != nil {
			return 0, err
		}
		changes, err := drv.SchemaDiff(current, desired(name))
		return len(changes), err
	}, nil
}

// naiveApplyCheck is Atlas inspect + diff + plan + apply of one tenant in a transaction, which
// is rolled back so that the fleet stays as it was (its commit is not counted).
func (b *bench) naiveApplyCheck() (func(ctx context.Context, schemaName string) (int, error), error) {
	desired, err := b.naiveDesired()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, name string) (int, error) {
		tx, err := b.db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback()
		drv, err := postgres.Open(tx)
		if err != nil {
			return 0, err
		}
		current, err := drv.InspectSchema(ctx, name, nil)
		if err != nil {
			return 0, err
		}
		changes, err := drv.SchemaDiff(current, desired(name))
		if err != nil || len(changes) == 0 {
			return 0, err
		}
		plan, err := drv.PlanChanges(ctx, "rollout", changes)
		if err != nil {
			return 0, err
		}
		for _, c := range plan.Changes {
			if _, err := tx.ExecContext(ctx, c.Cmd, c.Args...); err != nil {
				return 0, fmt.Errorf("apply %q: %w", c.Cmd, err)
			}
		}
		return len(changes), tx.Rollback()
	}, nil
}
