package main

import (
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
	slugs := make(chan string)
	var (
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	step := max(1, n/10)
	start := time.Now()
	for range fleetWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for slug := range slugs {
				if _, err := b.p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(slug)}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				if d := done.Add(1); d%int64(step) == 0 {
					b.logf("created %d/%d tenants (%.0f/s)", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	for i := 1; i <= n && ctx.Err() == nil; i++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		slugs <- fmt.Sprintf("bench-%06d", i)
	}
	close(slugs)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.fleetResult(ctx, n, elapsed, fmt.Sprintf("fleet creation, %d goroutines", fleetWorkers), fmt.Sprintf("CreateTenant in-process: %d tenants in %.1f s, one run", n, elapsed.Seconds()))
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
