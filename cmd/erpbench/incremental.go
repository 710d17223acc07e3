package main

import (
	"context"
	"fmt"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const incrementalRounds = 5

// incremental times what the daemon does with change tracking on: an incremental pass (claim the
// changed tenants, reconcile those) over an unchanged fleet, and one after a table was dropped by
// hand in one tenant, beside the full no-op pass, alternating so that both see the same load.
func (b *bench) incremental(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	ok, err := b.p.EnableChangeTracking(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return []result{{Name: "incremental no-op pass", Tenants: len(b.slugs), Skipped: "change tracking needs a superuser"}}, nil
	}
	n := len(b.slugs)
	var noop, full, repair []time.Duration
	for i := range incrementalRounds {
		d, pass, err := b.incrementalPass(ctx)
		if err != nil {
			return nil, err
		}
		if len(pass.Results) != 0 {
			return nil, fmt.Errorf("incremental no-op pass %d looked at %d tenants", i+1, len(pass.Results))
		}
		noop = append(noop, d)
		fp, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
		if err != nil {
			return nil, err
		}
		if fp.Counts[controlplane.ActionUnchanged] != n {
			return nil, fmt.Errorf("full no-op pass %d: %v", i+1, fp.Counts)
		}
		full = append(full, fp.Duration)
		slug := b.slugs[(i*n)/incrementalRounds]
		if _, err := b.db.ExecContext(ctx, "DROP TABLE "+ident.Quote(ident.SchemaName(slug), "stock_items")); err != nil {
			return nil, fmt.Errorf("drop stock_items of %s: %w", slug, err)
		}
		d, pass, err = b.incrementalPass(ctx)
		if err != nil {
			return nil, err
		}
		if len(pass.Results) != 1 || pass.Result(slug).Action != controlplane.ActionApplied {
			return nil, fmt.Errorf("incremental pass after a drop in %s: %+v", slug, pass.Results)
		}
		repair = append(repair, d)
		b.logf("round %d: incremental no-op %s, full no-op %s, incremental repair of one tenant %s", i+1,
			noop[i].Round(time.Microsecond), full[i].Round(time.Millisecond), d.Round(time.Millisecond))
	}
	r := result{Name: "incremental no-op pass", Tenants: n}
	r.setTimes(noop, "ms")
	r.setBaseline(inUnit(median(full), "ms"), "the full no-op pass (fingerprint of every tenant), same run, alternating", false)
	limit := incrementalTarget(n)
	r.setPass(fmt.Sprintf("< %g s", limit), *r.Median < limit*1000)
	r.addNote("change tracking on; claim the changed tenants + ReconcileAll over them; median of %d", len(noop))
	rr := result{Name: "incremental repair of 1 tenant", Tenants: n}
	rr.setTimes(repair, "ms")
	rr.addNote("stock_items dropped by hand in one tenant, then one incremental pass; median of %d", len(repair))
	return []result{r, rr}, nil
}

// incrementalPass is one pass of the daemon's loop between full passes.
func (b *bench) incrementalPass(ctx context.Context) (time.Duration, *controlplane.Pass, error) {
	start := time.Now()
	changed, err := b.p.ChangedTenants(ctx)
	if err != nil {
		return 0, nil, err
	}
	if changed == nil {
		changed = []ident.Slug{}
	}
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Only: changed})
	if err != nil {
		return 0, nil, err
	}
	return time.Since(start), pass, nil
}

// incrementalTarget is the target of the pass the daemon runs between full passes, in seconds: it
// must cost what changed, not the size of the fleet. 1 s up to 10,000 tenants, 5 s up to 100,000.
func incrementalTarget(n int) float64 {
	if n <= 10000 {
		return 1
	}
	return 5 * max(1, float64(n)/100000)
}
