package controlplane

import (
	"context"
	"fmt"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// seedRows lists the seed rows of the tenant's enabled modules, with the schema they go to.
func (p *Plane) seedRows(ctx context.Context, tx *schema.Tx, slug ident.Slug, reg *modules.Registry) (string, []modules.Seed, error) {
	if !reg.HasSeeds() {
		return "", nil, nil
	}
	var schemaName string
	var followAll bool
	var chosen []string
	if err := tx.QueryRowContext(ctx, `SELECT schema_name, follow_all, modules FROM erpctl.tenants WHERE slug = $1`,
		slug.String()).Scan(&schemaName, &followAll, &stringArray{&chosen}); err != nil {
		return "", nil, fmt.Errorf("read tenant for its seeds: %w", err)
	}
	enabled, err := enabledModules(reg, followAll, chosen)
	if err != nil {
		return "", nil, err
	}
	var seeds []modules.Seed
	for _, n := range enabled {
		if m, ok := reg.Module(n); ok {
			seeds = append(seeds, m.Seeds...)
		}
	}
	return schemaName, seeds, nil
}

// seedStatements inserts, in the tenant's transaction, every seed row of its modules (as reg
// has them) it has not had yet, and records it: statements that go with the rest of what
// records the tenant Ready. A row that clashes with one the tenant has (a unique key) is
// recorded and skipped: the tenant's own row wins. It runs wherever the reconciler records a
// tenant Ready.
func (p *Plane) seedStatements(ctx context.Context, tx *schema.Tx, slug ident.Slug, reg *modules.Registry) ([]schema.Stmt, error) {
	schemaName, seeds, err := p.seedRows(ctx, tx, slug, reg)
	if err != nil || len(seeds) == 0 {
		return nil, err
	}
	var out []schema.Stmt
	for _, s := range seeds {
		table := ident.Quote(schemaName, s.Table)
		for _, r := range s.Rows {
			cols := make([]string, 0, len(r.Values))
			for c := range r.Values {
				cols = append(cols, ident.Quote(c))
			}
			list := strings.Join(cols, ", ")
			out = append(out, schema.Stmt{
				SQL: fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_record(NULL::%s, $1)
					WHERE NOT EXISTS (SELECT FROM erpctl.seeds WHERE tenant = $2 AND key = $3) ON CONFLICT DO NOTHING`, table, list, list, table),
				Args: []any{r.JSON, slug.String(), r.Key},
			}, schema.Stmt{
				SQL:  `INSERT INTO erpctl.seeds (tenant, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				Args: []any{slug.String(), r.Key},
			})
		}
	}
	return out, nil
}

func recordSeed(ctx context.Context, tx *schema.Tx, slug ident.Slug, key string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO erpctl.seeds (tenant, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, slug.String(), key); err != nil {
		return fmt.Errorf("record seed: %w", err)
	}
	return nil
}

// markSeeds records every seed row of the tenant's modules as had, without inserting it: an
// import or a clone brings the rows its source had, seeds included or deleted.
func (p *Plane) markSeeds(ctx context.Context, tx *schema.Tx, slug ident.Slug, reg *modules.Registry) error {
	_, seeds, err := p.seedRows(ctx, tx, slug, reg)
	if err != nil {
		return err
	}
	for _, s := range seeds {
		for _, r := range s.Rows {
			if err := recordSeed(ctx, tx, slug, r.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// pendingSeeds says which seed rows of the tenant's modules (as reg has them) it has not had
// yet: "TABLE: N rows", by table; nil when none.
func (p *Plane) pendingSeeds(ctx context.Context, tx *schema.Tx, slug ident.Slug, reg *modules.Registry) ([]string, error) {
	_, seeds, err := p.seedRows(ctx, tx, slug, reg)
	if err != nil || len(seeds) == 0 {
		return nil, err
	}
	had := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT key FROM erpctl.seeds WHERE tenant = $1`, slug.String())
	if err != nil {
		return nil, fmt.Errorf("read seeds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("read seeds: %w", err)
		}
		had[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read seeds: %w", err)
	}
	var out []string
	for _, s := range seeds {
		n := 0
		for _, r := range s.Rows {
			if !had[r.Key] {
				n++
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: %s", s.Table, pluralize(n, "row", "rows")))
		}
	}
	return out, nil
}
