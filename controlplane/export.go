package controlplane

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// copySettings fix how COPY's text format spells values, so that what an export wrote reads
// back the same whatever the server's or the session's defaults.
var copySettings = []string{
	`SET LOCAL DateStyle = 'ISO, YMD'`,
	`SET LOCAL IntervalStyle = 'postgres'`,
	`SET LOCAL TimeZone = 'UTC'`,
	`SET LOCAL extra_float_digits = 3`,
	`SET LOCAL bytea_output = 'hex'`,
}

// TableCount is how many rows one table had in an export, import or clone.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Progress, when set, hears as rows stream: the table and the bytes of it done so far.
type Progress func(table string, bytes int64)

// ExportSummary is what ExportTenant wrote.
type ExportSummary struct {
	Tenant  string       `json:"tenant"`
	Modules []string     `json:"modules"`
	Tables  []TableCount `json:"tables"`
}

// column is a column of a table as the database has it.
type column struct {
	name, typ string // typ as format_type gives it: a type of the schema itself is qualified
	portable  string // typ without the schema's own prefix, the same for every tenant

	notNull     bool
	hasDefault  bool // a default or an identity: it may be left out of an insert
	hasIdentity bool
}

// schemaColumns returns the columns of every table of schemaName.
func schemaColumns(ctx context.Context, tx *schema.Tx, schemaName string) (map[string][]column, error) {
	rows, err := tx.QueryContext(ctx, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
		replace(format_type(a.atttypid, a.atttypmod), quote_ident(n.nspname) || '.', ''), a.attnotnull,
		a.atthasdef OR a.attidentity <> '', a.attidentity <> ''
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY c.relname, a.attnum`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("read the columns of schema %s: %w", schemaName, err)
	}
	defer rows.Close()
	out := map[string][]column{}
	for rows.Next() {
		var t string
		var c column
		if err := rows.Scan(&t, &c.name, &c.typ, &c.portable, &c.notNull, &c.hasDefault, &c.hasIdentity); err != nil {
			return nil, err
		}
		out[t] = append(out[t], c)
	}
	return out, rows.Err()
}

// tableOrder lists the tables of desired so that each comes after the tables it references,
// the order rows can be loaded in with every foreign key checked as they arrive.
func tableOrder(desired *atlas.Schema) []*atlas.Table {
	var out []*atlas.Table
	seen := map[*atlas.Table]bool{}
	var visit func(t *atlas.Table)
	visit = func(t *atlas.Table) {
		if seen[t] {
			return
		}
		seen[t] = true
		for _, fk := range t.ForeignKeys {
			if fk.RefTable != nil && fk.RefTable != t {
				visit(fk.RefTable)
			}
		}
		out = append(out, t)
	}
	for _, t := range desired.Tables {
		visit(t)
	}
	return out
}

// selfReferencing reports whether t has a foreign key to itself: its rows must then be copied in
// id order, parents first.
func selfReferencing(t *atlas.Table) bool {
	return slices.ContainsFunc(t.ForeignKeys, func(fk *atlas.ForeignKey) bool { return fk.RefTable == t })
}

// snapshotTx begins a read-only transaction that sees one snapshot for all its statements.
func (p *Plane) snapshotTx(ctx context.Context) (*schema.Tx, error) {
	tx, err := p.begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := tx.ExecStatements(ctx, append([]string{`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`}, copySettings...)...); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// ExportTenant writes every row of the tenant's module tables to w, with its modules and their
// desired-state hashes, as one export file (see exportfile.go). It reads from one snapshot, so
// the file is consistent across tables under concurrent writes, and streams: memory stays flat
// whatever the tenant's size. Tables no module declares are left out.
func (p *Plane) ExportTenant(ctx context.Context, slug ident.Slug, w io.Writer, progress Progress) (*ExportSummary, error) {
	sum, err := p.exportTenant(ctx, slug, w, progress)
	if err != nil {
		return nil, fmt.Errorf("export tenant %q: %w", slug, err)
	}
	return sum, nil
}

func (p *Plane) exportTenant(ctx context.Context, slug ident.Slug, w io.Writer, progress Progress) (*ExportSummary, error) {
	tx, err := p.snapshotTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var name, schemaName string
	var followAll bool
	var chosen []string
	var gen sql.NullInt64
	var lbls labels.Labels
	err = tx.QueryRowContext(ctx, `SELECT name, schema_name, follow_all, modules, generation, labels FROM erpctl.tenants WHERE slug = $1`,
		slug.String()).Scan(&name, &schemaName, &followAll, &stringArray{&chosen}, &gen, &jsonLabels{&lbls})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %w", ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	// The tables are as the tenant's own generation made them.
	d, err := p.tenantDesired(ctx, tx, gen)
	if err != nil {
		return nil, err
	}
	reg := d.reg
	enabled, err := enabledModules(reg, followAll, chosen)
	if err != nil {
		return nil, err
	}
	desired, err := reg.Desired(enabled, modules.Placeholder)
	if err != nil {
		return nil, err
	}
	have, err := schemaColumns(ctx, tx, schemaName)
	if err != nil {
		return nil, err
	}
	fw, err := newFrameWriter(w)
	if err != nil {
		return nil, err
	}
	hdr := exportHeader{Format: "erpctl-export", Version: exportVersion, Name: name, FollowAll: followAll,
		Modules: enabled, Hashes: map[string]string{}, Desired: reg.Hash(enabled), ExportedAt: time.Now().UTC().Format(time.RFC3339),
		Labels: lbls}
	for _, m := range enabled {
		hdr.Hashes[m] = reg.Hash([]string{m})
	}
	if err := fw.json(frameHeader, hdr); err != nil {
		return nil, err
	}
	out := &ExportSummary{Tenant: slug.String(), Modules: enabled, Tables: []TableCount{}}
	for _, t := range tableOrder(desired) {
		cols, ok := have[t.Name]
		if !ok {
			continue // declared but missing (a tenant not yet reconciled): nothing to export
		}
		n, err := exportOneTable(ctx, tx, fw, schemaName, t, cols, reg, progress)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		out.Tables = append(out.Tables, TableCount{Table: t.Name, Rows: n})
	}
	if err := fw.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

func exportOneTable(ctx context.Context, tx *schema.Tx, fw *frameWriter, schemaName string, t *atlas.Table, cols []column,
	reg *modules.Registry, progress Progress) (int64, error) {
	mod, _ := reg.ModuleOfTable(t.Name)
	et := fileTable{Name: t.Name, Module: mod}
	names := make([]string, len(cols))
	for i, c := range cols {
		et.Columns = append(et.Columns, exportColumn{Name: c.name, Type: c.portable})
		names[i] = ident.Quote(c.name)
	}
	if err := fw.json(frameTable, et); err != nil {
		return 0, err
	}
	q := fmt.Sprintf("COPY %s (%s) TO STDOUT", ident.Quote(schemaName, t.Name), strings.Join(names, ", "))
	if selfReferencing(t) {
		q = fmt.Sprintf("COPY (SELECT %s FROM %s ORDER BY id) TO STDOUT", strings.Join(names, ", "), ident.Quote(schemaName, t.Name))
	}
	dw := &dataWriter{fw: fw, sum: sha256.New()}
	var pw io.Writer = dw
	if progress != nil {
		pw = &progressWriter{w: dw, c: progressCount{table: t.Name, fn: progress}}
	}
	n, err := tx.CopyTo(ctx, pw, q)
	if err != nil {
		return 0, err
	}
	if err := dw.flush(); err != nil {
		return 0, err
	}
	return n, fw.json(frameEnd, exportTableEnd{Rows: n, SHA256: fmt.Sprintf("%x", dw.sum.Sum(nil))})
}

// progressCount reports the bytes of a table streamed so far, about every megabyte and at the end.
type progressCount struct {
	table       string
	fn          Progress
	done, shown int64
}

func (p *progressCount) add(n int, final bool) {
	p.done += int64(n)
	if p.done-p.shown >= 1<<20 || (final && p.done > p.shown) {
		p.shown = p.done
		p.fn(p.table, p.done)
	}
}

// progressWriter counts the bytes of a table written so far.
type progressWriter struct {
	w io.Writer
	c progressCount
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.c.add(n, false)
	return n, err
}
