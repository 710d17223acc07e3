package controlplane

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// ImportReport is what ImportTenant made, and what it had to adapt: columns the file has that
// the desired state no longer does (left out), columns it lacks (their default), changed types.
type ImportReport struct {
	Tenant *Tenant      `json:"tenant"`
	Tables []TableCount `json:"tables"`
	Notes  []string     `json:"notes"`
}

// ImportTenant creates tenant slug from an export file: the reconciler makes its tables as the
// current desired state of the file's modules, then the rows are loaded table by table in the
// file's (foreign-key) order and every identity is moved past the largest id, all in the
// tenant's create transaction. A damaged file, a module not loaded here, or a change the rows
// cannot follow fails the import, and nothing is left behind.
func (p *Plane) ImportTenant(ctx context.Context, slug ident.Slug, r io.Reader, name string, progress Progress) (*ImportReport, error) {
	rep, err := p.importTenant(ctx, slug, r, name, progress)
	if err != nil {
		return nil, fmt.Errorf("import tenant %q: %w", slug, err)
	}
	return rep, nil
}

func (p *Plane) importTenant(ctx context.Context, slug ident.Slug, r io.Reader, name string, progress Progress) (*ImportReport, error) {
	fr, err := newFrameReader(r)
	if err != nil {
		return nil, err
	}
	var hdr exportHeader
	if err := fr.nextJSON(frameHeader, &hdr); err != nil {
		return nil, err
	}
	if hdr.Format != "erpctl-export" || hdr.Version != exportVersion {
		return nil, fmt.Errorf("%w: the file is format %q version %d; this erpctl reads erpctl-export version %d",
			ErrInvalid, hdr.Format, hdr.Version, exportVersion)
	}
	rep := &ImportReport{Tables: []TableCount{}, Notes: []string{}}
	gen, reg, err := p.LatestModules(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range hdr.Modules {
		if _, ok := reg.Module(m); !ok {
			return nil, fmt.Errorf("%w: the file's tenant has module %q, which the latest module generation (%d) does not have (publish its HCL file: erpctl module publish --modules-dir DIR)", ErrInvalid, m, gen)
		}
		if h := reg.Hash([]string{m}); h != hdr.Hashes[m] {
			rep.Notes = append(rep.Notes, fmt.Sprintf("module %s differs from the exporter's (desired-state hash %s here, %s in the file): columns compared table by table", m, h[:12], short(hdr.Hashes[m])))
		}
	}
	o := CreateOptions{Slug: slug, Name: hdr.Name, Modules: hdr.Modules, Labels: hdr.Labels}
	if name != "" {
		o.Name = name
	}
	if hdr.FollowAll || len(hdr.Modules) == 0 {
		o.Modules = nil
	}
	o.fill = func(ctx context.Context, tx *schema.Tx, schemaName string) error {
		return loadExport(ctx, tx, fr, schemaName, rep, progress)
	}
	t, err := p.CreateTenant(ctx, o)
	if err != nil {
		return nil, err
	}
	rep.Tenant = t
	return rep, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// loadExport loads every table of the file into schemaName, then checks the trailer.
func loadExport(ctx context.Context, tx *schema.Tx, fr *frameReader, schemaName string, rep *ImportReport, progress Progress) error {
	if err := tx.ExecStatements(ctx, copySettings...); err != nil {
		return err
	}
	have, err := schemaColumns(ctx, tx, schemaName)
	if err != nil {
		return err
	}
	return bulkLoad(ctx, tx, schemaName, func() error { return loadTables(ctx, tx, fr, schemaName, have, rep, progress) })
}

// loadTables loads every table the file holds, up to and including its trailer.
func loadTables(ctx context.Context, tx *schema.Tx, fr *frameReader, schemaName string, have map[string][]column,
	rep *ImportReport, progress Progress) error {
	for {
		kind, b, err := fr.next()
		if err != nil {
			return err
		}
		if kind == frameTrailer {
			break
		}
		if kind != frameTable {
			return fmt.Errorf("%w: frame %q where a table was expected", ErrCorrupt, kind)
		}
		var et fileTable
		if err := jsonFrame(b, &et); err != nil {
			return err
		}
		n, err := loadTable(ctx, tx, fr, schemaName, et, have[et.Name], rep, progress)
		if err != nil {
			return fmt.Errorf("table %s: %w", et.Name, err)
		}
		rep.Tables = append(rep.Tables, TableCount{Table: et.Name, Rows: n})
	}
	if !fr.done {
		return fmt.Errorf("%w: no trailer", ErrCorrupt)
	}
	return syncIdentities(ctx, tx, schemaName, have)
}

// loadTable streams one table's rows from the file into the schema. When the file's columns are
// the table's, COPY loads them straight in; otherwise through a temporary table of text columns,
// each cast to the type the table has now.
func loadTable(ctx context.Context, tx *schema.Tx, fr *frameReader, schemaName string, et fileTable, cols []column,
	rep *ImportReport, progress Progress) (int64, error) {
	if cols == nil {
		return 0, fmt.Errorf("%w: the file has table %s, which the desired state here does not: refusing to drop its rows", ErrInvalid, et.Name)
	}
	target := map[string]column{}
	for _, c := range cols {
		target[c.name] = c
	}
	inFile := map[string]bool{}
	direct := true
	var fileCols, common, casts []string
	for _, fc := range et.Columns {
		inFile[fc.Name] = true
		fileCols = append(fileCols, ident.Quote(fc.Name))
		tc, ok := target[fc.Name]
		switch {
		case !ok:
			direct = false
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s.%s is in the file but not in the desired state here: its values are left out", et.Name, fc.Name))
			continue
		case tc.portable != fc.Type:
			direct = false
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s.%s is %s in the file and %s here: converted", et.Name, fc.Name, fc.Type, tc.portable))
		}
		common = append(common, ident.Quote(fc.Name))
		casts = append(casts, ident.Quote(fc.Name)+"::"+tc.typ)
	}
	for _, c := range cols {
		if inFile[c.name] {
			continue
		}
		if c.notNull && !c.hasDefault {
			return 0, fmt.Errorf("%w: column %s.%s is NOT NULL without a default here and the file has no values for it", ErrInvalid, et.Name, c.name)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s.%s is not in the file: it takes its default", et.Name, c.name))
	}
	rows := &tableRows{fr: fr, sum: sha256.New()}
	var src io.Reader = rows
	if progress != nil {
		src = &progressReader{r: rows, c: progressCount{table: et.Name, fn: progress}}
	}
	table := ident.Quote(schemaName, et.Name)
	into := fmt.Sprintf("%s (%s)", table, strings.Join(fileCols, ", "))
	if !direct {
		into = fmt.Sprintf("pg_temp.erpctl_import (%s)", strings.Join(fileCols, ", "))
		if err := tx.ExecStatements(ctx, fmt.Sprintf("CREATE TEMP TABLE erpctl_import (%s text) ON COMMIT DROP",
			strings.Join(fileCols, " text, "))); err != nil {
			return 0, err
		}
	}
	n, err := tx.CopyFrom(ctx, src, "COPY "+into+" FROM STDIN")
	if rows.err != nil {
		return 0, rows.err // the file's fault, which COPY reports only as its own failure
	}
	if err != nil {
		return 0, err
	}
	if err := rows.check(et.Name, n); err != nil {
		return 0, err
	}
	if !direct {
		if err := tx.ExecStatements(ctx,
			fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM pg_temp.erpctl_import", table, strings.Join(common, ", "), strings.Join(casts, ", ")),
			"DROP TABLE pg_temp.erpctl_import"); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// syncIdentities moves every identity of the schema's tables past the largest value its column
// holds, so that the next insert does not collide with a loaded row.
func syncIdentities(ctx context.Context, tx *schema.Tx, schemaName string, tables map[string][]column) error {
	for t, cols := range tables {
		for _, c := range cols {
			if !c.hasIdentity {
				continue
			}
			// Two statements: on Citus a setval in a query that reads a tenant's table runs on
			// the worker with the table, whose sequence has a range of its own, and fails there;
			// the coordinator's sequence is the one inserts through it use.
			var next int64
			q := fmt.Sprintf(`SELECT coalesce(max(%s), 0) + 1 FROM %s`, ident.Quote(c.name), ident.Quote(schemaName, t))
			if err := tx.QueryRowContext(ctx, q).Scan(&next); err != nil {
				return fmt.Errorf("advance the identity of %s.%s: %w", t, c.name, err)
			}
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), $3, false)`, ident.Quote(schemaName, t), c.name, next); err != nil {
				return fmt.Errorf("advance the identity of %s.%s: %w", t, c.name, err)
			}
		}
	}
	return nil
}

// progressReader counts the bytes of a table read so far.
type progressReader struct {
	r io.Reader
	c progressCount
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.c.add(n, errors.Is(err, io.EOF))
	return n, err
}
