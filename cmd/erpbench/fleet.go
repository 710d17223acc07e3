package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const fleetWorkers = 4

// The tenants scenario 1 creates one at a time, on top of the fleet; the fleet is sized so that
// the database then holds BENCH_TENANTS tenants.
func (b *bench) inProcessCreates() int { return min(50, b.n/4) }
func (b *bench) cliCreates() int {
	if b.erpctl == "" {
		return 0
	}
	return min(20, b.n/10)
}

// fleet creates the fleet with fleetWorkers goroutines calling CreateTenant, and reports the rate.
func (b *bench) fleet(ctx context.Context) ([]result, error) {
	n := b.n - b.inProcessCreates() - b.cliCreates()
	if b.soakOnly {
		n = b.n // no tenant-creation scenario runs to make up the rest
	}
	mode, err := b.fleetMode()
	if err != nil {
		return nil, err
	}
	if mode == "raw" {
		elapsed, err := b.rawFleet(ctx, n)
		if err != nil {
			return nil, err
		}
		return b.fleetResult(ctx, n, elapsed, "fleet creation, raw SQL", fmt.Sprintf(
			"raw SQL, %d connections: CreateTenant made the first tenant, the rest are copies of its DDL and catalog rows (%d tenants in %.1f s, one run)",
			fleetWorkers, n, elapsed.Seconds()))
	}
	start := time.Now()
	err = inWorkers(ctx, 1, n, 1, max(1, n/10), func(i, _ int) error {
		_, err := b.p.CreateTenant(ctx, controlplane.CreateOptions{Slug: benchSlug(i)})
		return err
	}, func(done int) {
		b.logf("created %d/%d tenants (%.0f/s)", done, n, float64(done)/time.Since(start).Seconds())
	})
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	return b.fleetResult(ctx, n, elapsed, fmt.Sprintf("fleet creation, %d goroutines", fleetWorkers), fmt.Sprintf("CreateTenant in-process: %d tenants in %.1f s, one run", n, elapsed.Seconds()))
}

// benchSlug is the slug of the bench's i-th tenant.
func benchSlug(i int) ident.Slug { return ident.MustParseSlug(fmt.Sprintf("bench-%06d", i)) }

// inWorkers calls do(i, j) for the ranges [i, j) of at most per tenants that cover first..last,
// on fleetWorkers goroutines. It hands out no more ranges after the first error, which it
// returns, and calls report with the count done each time that count passes a multiple of every.
func inWorkers(ctx context.Context, first, last, per, every int, do func(i, j int) error, report func(done int)) error {
	next := make(chan int)
	var (
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for range fleetWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := min(i+per, last+1)
				if err := do(i, j); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					continue
				}
				if d := int(done.Add(int64(j - i))); d/every != (d-(j-i))/every {
					report(d)
				}
			}
		}()
	}
	for i := first; i <= last && ctx.Err() == nil && !failed(); i += per {
		next <- i
	}
	close(next)
	wg.Wait()
	return cmp.Or(firstErr, ctx.Err())
}

func (b *bench) fleetResult(ctx context.Context, n int, elapsed time.Duration, name, note string) ([]result, error) {
	// Fresh planner statistics for the catalog, which just grew by n schemas: without them the
	// naive baseline's inspection queries swing by 10x from run to run, depending on when
	// autovacuum gets there.
	if _, err := b.db.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, fmt.Errorf("analyze after creating the fleet: %w", err)
	}
	r := result{Name: name, Tenants: n, Unit: "tenants/s", Samples: 1,
		Median: ptr(float64(n) / elapsed.Seconds())}
	r.addNote("%s", note)
	return []result{r}, nil
}

// loadSlugs sets b.slugs to every tenant in the catalog.
func (b *bench) loadSlugs(ctx context.Context) error {
	ts, err := b.p.ListTenants(ctx)
	if err != nil {
		return err
	}
	b.slugs = b.slugs[:0]
	for _, t := range ts {
		b.slugs = append(b.slugs, t.Slug)
	}
	slices.Sort(b.slugs)
	return nil
}

// spread picks up to k slugs spread evenly over slugs.
func spread(slugs []string, k int) []string {
	if k >= len(slugs) {
		return slices.Clone(slugs)
	}
	out := make([]string, k)
	for i := range k {
		out[i] = slugs[i*len(slugs)/k]
	}
	return out
}
