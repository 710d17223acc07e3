package controlplane

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// CloneTenant creates tenant o.Slug with the modules of tenant from and a copy of every row of
// its module tables, copied inside the database (no round trip through erpctl) in the create
// transaction: the clone is whole or not there. The template's tables are locked against writes
// (SHARE) while they are copied, so the copy is consistent across tables.
func (p *Plane) CloneTenant(ctx context.Context, o CreateOptions, from ident.Slug) (*Tenant, []TableCount, error) {
	src, err := p.GetTenant(ctx, from)
	if err != nil {
		return nil, nil, fmt.Errorf("clone tenant %q into %q: %w", from, o.Slug, err)
	}
	if len(o.Modules) > 0 {
		return nil, nil, fmt.Errorf("clone tenant %q into %q: %w: a clone has its template's modules", from, o.Slug, ErrInvalid)
	}
	if !src.FollowAll {
		o.Modules = src.Modules
	}
	if !o.NoTemplateLabels {
		merged := maps.Clone(src.Labels)
		maps.Copy(merged, o.Labels)
		o.Labels = merged
	}
	// The clone is made at the latest generation, which CreateTenant reads again in its
	// transaction; were a newer one published meanwhile, only the order of the copy would differ.
	_, reg, err := p.LatestModules(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("clone tenant %q into %q: %w", from, o.Slug, err)
	}
	desired, err := reg.Desired(src.Modules, modules.Placeholder)
	if err != nil {
		return nil, nil, fmt.Errorf("clone tenant %q into %q: %w", from, o.Slug, err)
	}
	var counts []TableCount
	o.fill = func(ctx context.Context, tx *schema.Tx, schemaName string) error {
		srcCols, err := schemaColumns(ctx, tx, src.Schema)
		if err != nil {
			return err
		}
		dstCols, err := schemaColumns(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		var locks []string
		for _, t := range tableOrder(desired) {
			if srcCols[t.Name] != nil && dstCols[t.Name] != nil {
				locks = append(locks, ident.Quote(src.Schema, t.Name))
			}
		}
		if len(locks) > 0 {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(locks, ", ")+" IN SHARE MODE"); err != nil {
				return err
			}
		}
		return bulkLoad(ctx, tx, schemaName, func() error {
			for _, t := range tableOrder(desired) {
				if srcCols[t.Name] == nil || dstCols[t.Name] == nil {
					continue
				}
				n, err := copyTable(ctx, tx, src.Schema, schemaName, t.Name, srcCols[t.Name], dstCols[t.Name], selfReferencing(t))
				if err != nil {
					return fmt.Errorf("copy table %s: %w", t.Name, err)
				}
				counts = append(counts, TableCount{Table: t.Name, Rows: n})
			}
			return syncIdentities(ctx, tx, schemaName, dstCols)
		})
	}
	tn, err := p.CreateTenant(ctx, o)
	if err != nil {
		return nil, nil, fmt.Errorf("clone tenant %q: %w", from, err)
	}
	return tn, counts, nil
}

// copyTable copies the rows of one table between two schemas of the database, in the columns
// both have, each cast to the type the target has.
func copyTable(ctx context.Context, tx *schema.Tx, fromSchema, toSchema, table string, from, to []column, ordered bool) (int64, error) {
	have := map[string]column{}
	for _, c := range from {
		have[c.name] = c
	}
	var cols, exprs []string
	for _, c := range to {
		src, ok := have[c.name]
		if !ok {
			continue
		}
		cols = append(cols, ident.Quote(c.name))
		cast := "::" + c.typ
		if src.typ != src.portable || c.typ != c.portable {
			// A type of the schema itself (an enum) has no cast to another schema's type of the
			// same name: its values go through their text.
			cast = "::text" + cast
		}
		exprs = append(exprs, ident.Quote(c.name)+cast)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", ident.Quote(toSchema, table), strings.Join(cols, ", "),
		strings.Join(exprs, ", "), ident.Quote(fromSchema, table))
	if ordered {
		q += " ORDER BY id"
	}
	res, err := tx.ExecContext(ctx, q)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
