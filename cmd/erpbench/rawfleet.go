package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

// rawFleetAbove is the fleet size past which the fleet is built by raw SQL unless BENCH_FLEET
// says otherwise: CreateTenant makes about 60 tenants a second here, so 100,000 would take half
// an hour before the first figure.
const rawFleetAbove = 10000

// rawPerTx tenants are made in each transaction of the raw fleet.
const rawPerTx = 10

// fleetMode is how the fleet is built: "erpctl" (CreateTenant, one at a time per worker) or
// "raw" (the template tenant's DDL and catalog rows, copied by SQL).
func (b *bench) fleetMode() (string, error) {
	switch m := os.Getenv("BENCH_FLEET"); m {
	case "":
		if b.n > rawFleetAbove {
			return "raw", nil
		}
		return "erpctl", nil
	case "raw", "erpctl":
		return m, nil
	default:
		return "", fmt.Errorf("BENCH_FLEET=%q: want raw or erpctl", m)
	}
}

// rawFleet makes bench-000001 with CreateTenant, then bench-000002..n by sending, per tenant in
// one round trip and one transaction, the statements erpctl sent for the template (the same
// text, so the same fingerprint) and copies of its catalog rows. What it makes is what
// CreateTenant makes; a reconcile of the first copy checks that before the rest are made, and
// the no-op scenario checks it again for every tenant.
func (b *bench) rawFleet(ctx context.Context, n int) (time.Duration, error) {
	start := time.Now()
	template := benchSlug(1)
	if _, err := b.p.CreateTenant(ctx, controlplane.CreateOptions{Slug: template}); err != nil {
		return 0, err
	}
	pcfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return 0, err
	}
	// Every tenant's CREATE SCHEMA and search_path differ: nothing to gain from a statement cache.
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pcfg.MaxConns = fleetWorkers
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return 0, err
	}
	defer pool.Close()

	var plan, role string
	if err := pool.QueryRow(ctx, `SELECT sql FROM erpctl.events WHERE tenant = $1 AND kind = 'create'`, template.String()).Scan(&plan); err != nil {
		return 0, fmt.Errorf("read the create plan of %s: %w", template, err)
	}
	if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT value FROM erpctl.meta WHERE key = 'api_role'), '')`).Scan(&role); err != nil {
		return 0, fmt.Errorf("read the data API's role: %w", err)
	}
	// The bench's modules declare no statement that holds ";\n", so the join splits back exactly.
	stmts := strings.Split(plan, ";\n")
	if len(stmts) > 0 && strings.HasPrefix(stmts[0], "CREATE SCHEMA ") {
		stmts = stmts[1:]
	}

	// Tenants i..j-1, in one transaction.
	make1 := func(ctx context.Context, i, j int) error {
		var slugs []ident.Slug
		for k := i; k < j; k++ {
			slugs = append(slugs, benchSlug(k))
		}
		return copyTenants(ctx, pool, template, slugs, role, stmts)
	}
	if n >= 2 {
		if err := make1(ctx, 2, 3); err != nil {
			return 0, err
		}
		first := benchSlug(2)
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Only: []ident.Slug{first}})
		if err != nil {
			return 0, err
		}
		if r := pass.Result(first.String()); len(pass.Results) != 1 || r.Action != controlplane.ActionUnchanged {
			return 0, fmt.Errorf("a tenant copied by raw SQL is not what CreateTenant makes: its first reconcile: %+v", r)
		}
	}

	err = inWorkers(ctx, 3, n, rawPerTx, max(1, n/20), func(i, j int) error { return make1(ctx, i, j) }, func(done int) {
		done += 2 // the template and the checked copy
		b.logf("made %d/%d tenants by raw SQL (%.0f/s)", done, n, float64(done)/time.Since(start).Seconds())
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// copyTenants makes each of slugs as a copy of template, in one transaction and one round trip:
// the schema, by stmts (the template's create plan, unqualified, as erpctl sends it), the data
// API's grants, and the catalog rows. Its commit does not wait for the WAL flush: a crash of the
// bench loses the fleet anyway.
func copyTenants(ctx context.Context, pool *pgxpool.Pool, template ident.Slug, slugs []ident.Slug, role string, stmts []string) error {
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SET LOCAL synchronous_commit = off")
	// As the reconciler does, so that change tracking does not count this as drift.
	batch.Queue("SET LOCAL erpctl.own_ddl = on")
	for _, slug := range slugs {
		s := ident.Quote(slug.Schema())
		batch.Queue("CREATE SCHEMA " + s)
		if role != "" {
			// Default privileges first: the tables made next get the data API's grants with them.
			r := ident.Quote(role)
			batch.Queue("GRANT USAGE ON SCHEMA " + s + " TO " + r)
			batch.Queue("ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + r)
			batch.Queue("ALTER DEFAULT PRIVILEGES IN SCHEMA " + s + " GRANT USAGE, SELECT ON SEQUENCES TO " + r)
		}
		batch.Queue("SET LOCAL search_path TO " + s)
		for _, q := range stmts {
			batch.Queue(q)
		}
		batch.Queue("RESET search_path")
		batch.Queue(`INSERT INTO erpctl.tenants (slug, name, schema_name, follow_all, modules, status, status_reason,
		status_changed_at, desired_hash, fingerprint, managed, managed_key, failures, last_reconciled_at, last_applied_at)
		SELECT $1, $1, $2, follow_all, modules, status, status_reason, now(), desired_hash, fingerprint, managed, managed_key, 0, now(), now()
		FROM erpctl.tenants WHERE slug = $3`, slug.String(), slug.Schema(), template.String())
		batch.Queue(`INSERT INTO erpctl.migration_steps (tenant, step, outcome)
		SELECT $1, step, outcome FROM erpctl.migration_steps WHERE tenant = $2`, slug.String(), template.String())
		batch.Queue(`INSERT INTO erpctl.events (tenant, kind, sql, duration_ms, outcome)
		SELECT $1, kind, sql, duration_ms, outcome FROM erpctl.events WHERE tenant = $2 AND kind = 'create'`,
			slug.String(), template.String())
	}
	batch.Queue("COMMIT")
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("make tenants %s..%s by raw SQL: %w", slugs[0], slugs[len(slugs)-1], err)
	}
	return nil
}
