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
	stopSampling := b.sampleBackends(ctx)
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
	maxRSS, maxAnon, sampled := stopSampling()
	r := result{Name: "no-op ReconcileAll", Tenants: n}
	r.setTimes(times, "s")
	limit := noopTarget(n)
	r.addNote("median of %d passes, 4 workers", len(times))
	if sampled {
		r.Extra = map[string]float64{"backend_max_rss_mb": maxRSS, "backend_max_rss_anon_mb": maxAnon}
		r.addNote("the largest PostgreSQL backend of the bench database during the passes: VmRSS %.0f MB, of which private (RssAnon) %.0f MB", maxRSS, maxAnon)
		// A backend's own memory is its RssAnon: VmRSS also counts the pages of shared_buffers it
		// touched, which are the cluster's (a backend that read the catalog through 4GB of
		// shared_buffers showed 4.3 GB of VmRSS, 85 MB of its own).
		r.setPass(fmt.Sprintf("< %g s, no backend above 1 GB of its own", limit), *r.Median < limit && maxAnon < 1024)
	} else {
		r.setPass(fmt.Sprintf("< %g s", limit), *r.Median < limit)
	}

	daemon, err := b.reusingNoop(ctx, n, limit, *r.Median, false)
	if err != nil {
		return nil, err
	}
	restarted, err := b.reusingNoop(ctx, n, limit, *r.Median, true)
	if err != nil {
		return nil, err
	}

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
	return []result{r, daemon, restarted}, nil
}

// reusingNoop times full passes that may reuse the fleet's fingerprints over the same unchanged
// fleet, while the server counts no catalog write since the passes by hand before them read
// every schema (read, their median) and recorded it in the catalog: the daemon's periodic kind,
// on the bench's control plane; or with fresh each the first of a new control plane, as of a
// daemon that has just started. The timed passes must reuse, or the row says how many did not.
func (b *bench) reusingNoop(ctx context.Context, n int, limit, read float64, fresh bool) (result, error) {
	name, kind := "no-op full pass, daemon", "the daemon's periodic passes (ReuseFingerprints) took the fingerprints from the read recorded in the catalog"
	if fresh {
		name, kind = "no-op full pass, a daemon's first after it starts", "each the first of a new control plane (ReuseFingerprints), took the fingerprints from the read recorded in the catalog"
	}
	var times []time.Duration
	reused := 0
	for i := 1; i <= noopPasses; i++ {
		p := b.p
		if fresh {
			var err error
			if p, err = controlplane.Open(ctx, controlplane.Config{DatabaseURL: b.url, ModulesDir: b.modulesDir}); err != nil {
				return result{}, err
			}
		}
		pass, err := p.ReconcileAll(ctx, controlplane.ReconcileOptions{ReuseFingerprints: true})
		if fresh {
			p.Close()
		}
		if err != nil {
			return result{}, err
		}
		if u := pass.Counts[controlplane.ActionUnchanged]; u != n || len(pass.Results) != n {
			return result{}, fmt.Errorf("%s %d: %d of %d tenants unchanged: %v", name, i, u, len(pass.Results), pass.Counts)
		}
		if pass.FingerprintsReused {
			reused++
		}
		times = append(times, pass.Duration)
	}
	r := result{Name: name, Tenants: n}
	r.setTimes(times, "s")
	r.setBaseline(read, "the passes by hand above, which read every schema's catalog", false)
	r.setPass(fmt.Sprintf("< %g s", limit), *r.Median < limit)
	r.addNote("median of %d passes; %d of them, %s: no catalog write was counted since the passes by hand, which read every time", len(times), reused, kind)
	b.logf("%s: %.3f s, %d of %d reused", name, *r.Median, reused, len(times))
	return r, nil
}

// noopTarget is the no-op pass target: 1 s up to 1,000 tenants, 5 s up to 50,000, and 10 s at
// 100,000.
func noopTarget(n int) float64 {
	switch {
	case n <= 1000:
		return 1
	case n <= 50000:
		return 5
	}
	return 10 * float64(n) / 100000
}

// sampleBackends samples, every 100 ms until the returned function is called, the memory of every
// client backend of the bench database (where the server runs on this machine), and returns the
// largest VmRSS and RssAnon seen, in MB; ok is false when none could be read.
func (b *bench) sampleBackends(ctx context.Context) func() (maxRSS, maxAnon float64, ok bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var rss, anon float64
	var seen bool
	go func() {
		defer close(done)
		for {
			rows, err := b.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
			if err == nil {
				for rows.Next() {
					var pid int
					if rows.Scan(&pid) != nil {
						continue
					}
					r, ok1 := procStatusKB(pid, "VmRSS")
					a, ok2 := procStatusKB(pid, "RssAnon")
					if ok1 && ok2 {
						seen = true
						rss, anon = max(rss, r/1024), max(anon, a/1024)
					}
				}
				rows.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() (float64, float64, bool) {
		cancel()
		<-done
		return rss, anon, seen
	}
}
