package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	builtin "github.com/erpctl/erpctl/hcl"
	"github.com/erpctl/erpctl/internal/ident"
)

// crmModule is the new module of the table rollout.
const crmModule = `schema "tenant" {}

table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
    null = false
  }
  column "product_id" {
    type = bigint
    null = true
  }
  foreign_key "contacts_product_id_fkey" {
    columns     = [column.product_id]
    ref_columns = [table.products.column.id]
    on_delete   = SET_NULL
  }
}
`

// change is one rollout: a module file to write and how to take its change off a tenant by
// hand, so that raw SQL can put it back.
type change struct {
	name string // "new nullable column"
	file string // module file name in the modules dir
	src  string
	undo func(schemaName string) string
	// The target: within maxRaw times the raw SQL, and when limit > 0 under limit seconds per
	// 1,000 tenants (never less than limit).
	limit, maxRaw float64
}

// rollout rolls a new nullable column, then a new table, out to the fleet, each beside the
// naive per-tenant Atlas loop and beside raw SQL.
func (b *bench) rollout(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	product, err := builtin.FS.ReadFile("product.hcl")
	if err != nil {
		return nil, err
	}
	withBarcode := strings.Replace(string(product), `  column "category_id" {`, `  column "barcode" {
    type = text
    null = true
  }
  column "category_id" {`, 1)
	if withBarcode == string(product) {
		return nil, fmt.Errorf("product.hcl has no category_id column to add barcode before")
	}
	changes := []change{
		{
			name: "new nullable column", file: "product.hcl", src: withBarcode,
			undo:  func(s string) string { return "ALTER TABLE " + ident.Quote(s, "products") + " DROP COLUMN barcode" },
			limit: 3, maxRaw: 1.5,
		},
		{
			name: "new table", file: "crm.hcl", src: crmModule,
			undo:   func(s string) string { return "DROP TABLE " + ident.Quote(s, "contacts") },
			maxRaw: 1.5,
		},
	}
	var out []result
	for _, c := range changes {
		rs, err := b.rolloutOne(ctx, c)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	// Raw SQL put back exactly what erpctl had applied: the next pass has nothing to do.
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
	if err != nil {
		return out, err
	}
	if u := pass.Counts[controlplane.ActionUnchanged]; u != len(b.slugs) {
		return out, fmt.Errorf("pass after the rollouts: %d of %d tenants unchanged: %v", u, len(b.slugs), pass.Counts)
	}
	b.logf("after the rollouts: a pass leaves all %d tenants unchanged", len(b.slugs))
	return out, nil
}

func (b *bench) rolloutOne(ctx context.Context, c change) ([]result, error) {
	n := len(b.slugs)
	if err := b.settleChanges(ctx); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(b.modulesDir, c.file), []byte(c.src), 0o644); err != nil {
		return nil, err
	}
	if err := publishModules(ctx, b.p); err != nil {
		return nil, err
	}

	check, err := b.naiveApplyCheck()
	if err != nil {
		return nil, err
	}
	naive, err := b.sampleNaive(ctx, "naive rollout, "+c.name, 30*time.Second, check)
	if err != nil {
		return nil, err
	}
	if naive.changed != len(naive.times) {
		return nil, fmt.Errorf("naive rollout of the %s: only %d of %d sampled tenants had changes", c.name, naive.changed, len(naive.times))
	}

	if err := b.settleServer(ctx); err != nil {
		return nil, err
	}
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 4})
	if err != nil {
		return nil, err
	}
	if a := pass.Counts[controlplane.ActionApplied]; a != n {
		return nil, fmt.Errorf("rollout of the %s: %d of %d tenants applied: %v", c.name, a, n, pass.Counts)
	}
	var stmts []string
	for _, r := range pass.Results {
		if len(r.SQL) > 0 {
			stmts = r.SQL
			break
		}
	}
	b.logf("rollout of the %s: erpctl %s for %d tenants", c.name, pass.Duration.Round(time.Millisecond), n)

	raw, err := b.rawDDL(ctx, c, stmts)
	if err != nil {
		return nil, err
	}
	b.logf("rollout of the %s: raw SQL %s", c.name, raw.Round(time.Millisecond))

	r := result{Name: "rollout " + c.name + ", erpctl", Tenants: n}
	r.setTimes([]time.Duration{pass.Duration}, "s")
	r.P95 = nil
	r.setBaseline(naive.extrapolate(n), "Atlas inspect + diff + plan + apply of each tenant, one at a time", false)
	r.Extra = map[string]float64{"raw_sql_s": raw.Seconds(), "times_raw_sql": pass.Duration.Seconds() / raw.Seconds()}
	switch {
	case c.limit > 0:
		limit := c.limit * max(1, float64(n)/1000)
		r.setPass(fmt.Sprintf("< %g s and ≤ %gx raw SQL", limit, c.maxRaw),
			pass.Duration.Seconds() < limit && pass.Duration <= time.Duration(c.maxRaw*float64(raw)))
	case c.maxRaw > 0:
		r.setPass(fmt.Sprintf("≤ %gx raw SQL", c.maxRaw), pass.Duration <= time.Duration(c.maxRaw*float64(raw)))
	}
	r.addNote("one ReconcileAll, 4 workers; %.1fx the raw SQL floor", pass.Duration.Seconds()/raw.Seconds())
	r.addNote("%s; each naive apply ran in a transaction rolled back afterwards", naive.note(n))

	floor := result{Name: "rollout " + c.name + ", raw SQL floor", Tenants: n}
	floor.setTimes([]time.Duration{raw}, "s")
	floor.P95 = nil
	floor.addNote("the DDL erpctl applied (%s), for %s, one implicit transaction each, nothing recorded",
		abbrev(strings.Join(stmts, "; "), 80), rawFloorHow(n))
	return []result{r, floor}, nil
}

// rawDDL takes the change off every tenant by hand (not timed), then times putting it back with
// stmts, the SQL erpctl applied (see rawSQL).
func (b *bench) rawDDL(ctx context.Context, c change, stmts []string) (time.Duration, error) {
	if len(stmts) == 0 {
		return 0, fmt.Errorf("raw SQL of the %s: erpctl applied no SQL", c.name)
	}
	body := strings.Join(stmts, ";\n")
	return b.rawSQL(ctx, "the "+c.name, c.undo,
		func(s string) string { return "SET search_path TO " + ident.Quote(s) + ";\n" + body })
}

// rawSQL runs undo on every tenant's schema (not timed), then times do on every tenant's schema
// in new sessions, one implicit transaction each: one session, or above rawOneSessionUpTo
// tenants as many as erpctl's workers, each a share of the tenants (rawSessions). The timed
// sessions are new, as erpctl's connections are to most of the tenants a rollout reaches: a
// backend that has just run the undo on every tenant has the tenants' catalog rows cached, and
// the raw SQL would then be timed warm against erpctl cold.
func (b *bench) rawSQL(ctx context.Context, what string, undo, do func(schemaName string) string) (time.Duration, error) {
	sessions := rawSessions(len(b.slugs))
	each := func(f func(string) string, verb string) (time.Duration, error) {
		conns := make([]*pgx.Conn, sessions)
		defer func() {
			for _, c := range conns {
				if c != nil {
					c.Close(context.WithoutCancel(ctx))
				}
			}
		}()
		for i := range conns {
			c, err := pgx.Connect(ctx, b.url)
			if err != nil {
				return 0, err
			}
			conns[i] = c
			if err := c.Ping(ctx); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		errs := make([]error, sessions)
		var wg sync.WaitGroup
		for w, conn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(b.slugs); i += sessions {
					if _, err := conn.Exec(ctx, f(ident.SchemaName(b.slugs[i]))); err != nil {
						errs[w] = fmt.Errorf("%s of %s in %s: %w", verb, what, b.slugs[i], err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start), errors.Join(errs...)
	}
	if _, err := each(undo, "undo"); err != nil {
		return 0, err
	}
	if err := b.settleServer(ctx); err != nil {
		return 0, err
	}
	return each(do, "raw SQL")
}

// rawOneSessionUpTo is the fleet size up to which the raw SQL floor runs in one session. One
// backend that goes through every tenant gets slower as it goes at 100,000 tenants (a backfill
// step: 14.6 s at 9,930 tenants, 25.5 minutes at 99,930, the backend at 4.6 GB), which erpctl,
// whose connections are closed every 5 minutes, is not; past this size the floor runs in as many
// sessions as erpctl has workers, which is also faster than one.
const rawOneSessionUpTo = 10000

// rawSessions is how many sessions the raw SQL floor of a fleet of n tenants runs in.
func rawSessions(n int) int {
	if n <= rawOneSessionUpTo {
		return 1
	}
	return 4
}

// rawFloorHow says how the raw SQL floor of a fleet of n tenants ran.
func rawFloorHow(n int) string {
	if k := rawSessions(n); k > 1 {
		return fmt.Sprintf("every tenant, in %d new sessions at once as erpctl's 4 workers (the undo ran in others)", k)
	}
	return "every tenant in one new session (the undo ran in another)"
}
