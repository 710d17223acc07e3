package main

import (
	"context"
	"fmt"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const (
	driftRounds  = 3
	driftChecked = 3 // drifted tenants checked with DebugTables each round
)

// drift drops a table by hand in 1 % of the tenants and times the one ReconcileAll that repairs
// them, checking some of them with DebugTables; driftRounds rounds on different tenants.
func (b *bench) drift(ctx context.Context) ([]result, error) {
	n := len(b.slugs)
	k := max(1, n/100)
	picked := spread(b.slugs, min(n, k*driftRounds))
	var times []time.Duration
	for round := range driftRounds {
		var drifted []string
		for i := round; i < len(picked); i += driftRounds {
			drifted = append(drifted, picked[i])
		}
		for _, slug := range drifted {
			if _, err := b.db.ExecContext(ctx, "DROP TABLE "+ident.Quote(ident.SchemaName(slug), "stock_items")); err != nil {
				return nil, fmt.Errorf("drop stock_items of %s: %w", slug, err)
			}
		}
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
		if err != nil {
			return nil, err
		}
		if a := pass.Counts[controlplane.ActionApplied]; a != len(drifted) || pass.Counts[controlplane.ActionUnchanged] != n-len(drifted) {
			return nil, fmt.Errorf("drift round %d: %d tenants drifted, the pass did %v", round+1, len(drifted), pass.Counts)
		}
		for _, slug := range spread(drifted, driftChecked) {
			rep, err := b.p.DebugTables(ctx, ident.MustParseSlug(slug))
			if err != nil {
				return nil, err
			}
			if !rep.Healthy {
				return nil, fmt.Errorf("drift round %d: tenant %s is not healthy after the pass: %+v", round+1, slug, rep.Tables)
			}
		}
		times = append(times, pass.Duration)
		b.logf("drift round %d: %d tenants repaired in one pass of %s", round+1, len(drifted), pass.Duration.Round(time.Millisecond))
	}
	r := result{Name: "drift repair, 1% of tenants", Tenants: n}
	r.setTimes(times, "s")
	r.addNote("stock_items dropped by hand in %d tenants; one ReconcileAll repaired them all, DebugTables healthy on %d of them; median of %d rounds",
		k, min(k, driftChecked), driftRounds)
	if b.naiveNoop > 0 {
		r.setBaseline(b.naiveNoop.Seconds()*float64(n),
			"the naive no-op inspect+diff of every tenant (what finding the drift costs it), repairs not counted", false)
	}
	return []result{r}, nil
}
