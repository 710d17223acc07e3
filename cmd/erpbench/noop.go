package main

import (
	"context"
	"fmt"
	"time"

	"github.com/erpctl/erpctl/controlplane"
)

const noopPasses = 5

// noop times ReconcileAll over a fleet that is already as desired, beside the naive Atlas
// inspect + diff of every tenant.
func (b *bench) noop(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	var times []time.Duration
	for i := 1; i <= noopPasses; i++ {
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
		if err != nil {
			return nil, err
		}
		if u := pass.Counts[controlplane.ActionUnchanged]; u != n || len(pass.Results) != n {
			return nil, fmt.Errorf("no-op pass %d: %d of %d tenants unchanged: %v", i, u, len(pass.Results), pass.Counts)
		}
		times = append(times, pass.Duration)
		b.logf("no-op pass %d: %d tenants unchanged in %s", i, n, pass.Duration.Round(time.Millisecond))
	}
	r := result{Name: "no-op ReconcileAll", Tenants: n}
	r.setTimes(times, "s")
	limit := noopTarget(n)
	r.setPass(fmt.Sprintf("< %g s", limit), *r.Median < limit)
	r.addNote("median of %d passes, 4 workers", len(times))

	check, err := b.naiveNoopCheck()
	if err != nil {
		return nil, err
	}
	naive, err := b.sampleNaive(ctx, "naive no-op inspect+diff", 60*time.Second, check)
	if err != nil {
		return nil, err
	}
	b.naiveNoop = median(naive.times)
	r.setBaseline(naive.extrapolate(n), "Atlas InspectSchema + SchemaDiff of each tenant, one at a time", false)
	r.addNote("%s", naive.note(n))
	if naive.changed > 0 {
		r.addNote("the naive diff was not empty for %d sampled tenants", naive.changed)
	}
	b.logf("no-op: erpctl %.3f s, naive %.0f s (extrapolated)", *r.Median, *r.Baseline)
	return []result{r}, nil
}

// noopTarget is the no-op pass target: 1 s up to 1,000 tenants, 5 s up to 10,000, and 5 s per
// 10,000 beyond.
func noopTarget(n int) float64 {
	switch {
	case n <= 1000:
		return 1
	case n <= 10000:
		return 5
	}
	return 5 * float64(n) / 10000
}
