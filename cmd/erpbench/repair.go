package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

const (
	repairRounds = 3
	// The database of the bar: one tenant beside 2,000 schemas of 12 tables that are not
	// tenants at all.
	noiseSchemas = 2000
	noiseTables  = 12
)

// repair times the repair of one tenant whose table was dropped by hand, as `erpctl debug tables
// SLUG --fix` does it (report, reconcile, report again, on a control plane opened for it), in
// three databases: the fleet's, one that holds only that tenant, and one where the tenant has
// 24,000 other tables beside it. Work on one tenant must cost the same in all three. It then
// times a data API request that meets a table dropped in a tenant of the fleet: the API repairs
// the tenant on demand and answers within its wait.
func (b *bench) repair(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	slug := b.slugs[len(b.slugs)/2]
	fleet, err := b.repairRounds(ctx, b.url, slug)
	if err != nil {
		return nil, fmt.Errorf("repair in the fleet: %w", err)
	}

	aloneURL, dropAlone, err := b.createDatabase(ctx, "erpbench_repair_alone")
	if err != nil {
		return nil, err
	}
	defer dropAlone()
	alone, err := b.repairElsewhere(ctx, aloneURL, 0)
	if err != nil {
		return nil, fmt.Errorf("repair alone: %w", err)
	}
	noiseURL, dropNoise, err := b.createDatabase(ctx, "erpbench_repair_noise")
	if err != nil {
		return nil, err
	}
	defer dropNoise()
	noisy, err := b.repairElsewhere(ctx, noiseURL, noiseSchemas)
	if err != nil {
		return nil, fmt.Errorf("repair beside %d other tables: %w", noiseSchemas*noiseTables, err)
	}

	aloneMed := median(alone).Seconds()
	r := result{Name: "repair of one tenant (debug tables --fix)", Tenants: n}
	r.setTimes(fleet, "s")
	r.setBaseline(aloneMed, "the same repair in a database that holds only that tenant", false)
	r.Extra = map[string]float64{"times_alone": median(fleet).Seconds() / aloneMed}
	r.setPass("< 1 s, ≤ 1.5x alone", median(fleet) < time.Second && median(fleet).Seconds() <= 1.5*aloneMed)
	r.addNote("stock_items dropped by hand in %s; DebugTables, Reconcile, DebugTables on a control plane opened for it, as the CLI does; median of %d; %.2fx the repair alone (%.3f s)",
		slug, repairRounds, median(fleet).Seconds()/aloneMed, aloneMed)

	nr := result{Name: fmt.Sprintf("repair of one tenant beside %d other tables", noiseSchemas*noiseTables), Tenants: 1}
	nr.setTimes(noisy, "s")
	nr.setBaseline(aloneMed, "the same repair in a database that holds only that tenant", false)
	nr.setPass("≤ 1.5x alone", median(noisy).Seconds() <= 1.5*aloneMed)
	nr.addNote("one tenant beside %d schemas of %d tables that are not tenants; median of %d; %.2fx alone",
		noiseSchemas, noiseTables, repairRounds, median(noisy).Seconds()/aloneMed)

	out := []result{r, nr}
	ar, err := b.apiRepair(ctx)
	if err != nil {
		return out, err
	}
	return append(out, ar), nil
}

// repairRounds drops stock_items of slug and repairs it repairRounds times, on a control plane
// opened on url for each round.
func (b *bench) repairRounds(ctx context.Context, url, slug string) ([]time.Duration, error) {
	s := ident.MustParseSlug(slug)
	var times []time.Duration
	for round := range repairRounds {
		if err := execOn(ctx, url, "DROP TABLE "+ident.Quote(s.Schema(), "stock_items")); err != nil {
			return nil, err
		}
		p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: b.modulesDir})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		before, err := p.DebugTables(ctx, s)
		if err == nil && before.Healthy {
			err = fmt.Errorf("%s reported healthy with a table dropped", slug)
		}
		var res *controlplane.Result
		if err == nil {
			res, err = p.Reconcile(ctx, s, controlplane.ReconcileOptions{})
		}
		var after *controlplane.TablesReport
		if err == nil {
			after, err = p.DebugTables(ctx, s)
		}
		d := time.Since(start)
		p.Close()
		if err != nil {
			return nil, err
		}
		if res.Action != controlplane.ActionApplied || !after.Healthy {
			return nil, fmt.Errorf("round %d: the repair of %s: %s, healthy afterwards %v", round+1, slug, res.Action, after.Healthy)
		}
		b.logf("repair of %s: %s", slug, d.Round(time.Millisecond))
		times = append(times, d)
	}
	return times, nil
}

// repairElsewhere makes tenant acme in the database at url, beside schemas other schemas of
// noiseTables tables each, and times its repairs.
func (b *bench) repairElsewhere(ctx context.Context, url string, schemas int) ([]time.Duration, error) {
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: b.modulesDir})
	if err != nil {
		return nil, err
	}
	_, err = p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("acme")})
	p.Close()
	if err != nil {
		return nil, err
	}
	if schemas > 0 {
		start := time.Now()
		// 50 schemas a transaction: one transaction's locks must fit the server's lock table.
		for from := 1; from <= schemas; from += 50 {
			if err := execOn(ctx, url, fmt.Sprintf(`DO $$
BEGIN
	FOR i IN %d..%d LOOP
		EXECUTE format('CREATE SCHEMA %%I', 'other_' || i);
		FOR j IN 1..%d LOOP
			EXECUTE format('CREATE TABLE %%I.%%I (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL, qty integer NOT NULL DEFAULT 0, at timestamptz NOT NULL DEFAULT now())',
				'other_' || i, 't' || j);
		END LOOP;
	END LOOP;
END $$`, from, min(from+49, schemas), noiseTables)); err != nil {
				return nil, fmt.Errorf("make %d other schemas: %w", schemas, err)
			}
		}
		// Vacuumed now, so that autovacuum does not work through the new catalog rows (for
		// minutes) while the repairs are timed.
		if err := execOn(ctx, url, "VACUUM (ANALYZE)"); err != nil {
			return nil, err
		}
		b.logf("%d schemas of %d tables made beside the tenant in %s", schemas, noiseTables, time.Since(start).Round(time.Second))
	}
	return b.repairRounds(ctx, url, "acme")
}

// apiRepair drops a table of a tenant of the fleet and times the data API request that meets it:
// the API repairs the tenant on demand and answers 200 within its wait (10 s), not 503.
func (b *bench) apiRepair(ctx context.Context) (result, error) {
	slug := b.slugs[len(b.slugs)/3]
	r := result{Name: "data API request meeting a dropped table", Tenants: len(b.slugs), Unit: "s", Samples: 1}
	_, token, err := b.p.CreateToken(ctx, ident.MustParseSlug(slug), "erpbench-repair")
	if err != nil {
		return r, err
	}
	base, stop, err := serveHandler(b.p)
	if err != nil {
		return r, err
	}
	defer stop()
	url := base + "/api/" + slug + "/inventory/stock-items/"
	if err := probe(ctx, url, token); err != nil {
		return r, err
	}
	if _, err := b.db.ExecContext(ctx, "DROP TABLE "+ident.Quote(ident.SchemaName(slug), "stock_items")); err != nil {
		return r, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return r, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	d := time.Since(start)
	if err != nil {
		return r, err
	}
	resp.Body.Close()
	r.Median = ptr(d.Seconds())
	r.Extra = map[string]float64{"status": float64(resp.StatusCode)}
	r.setPass("200 within the API's 10 s wait", resp.StatusCode == http.StatusOK && d < 10*time.Second)
	r.addNote("GET %s/inventory/stock-items/ right after stock_items was dropped by hand: %d after %.3f s (the API reconciled the tenant on demand)",
		slug, resp.StatusCode, d.Seconds())
	b.logf("API request meeting a dropped table: %d after %s", resp.StatusCode, d.Round(time.Millisecond))
	return r, nil
}
