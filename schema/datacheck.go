package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	_ "ariga.io/atlas/sql/postgres/postgrescheck" // registers the PostgreSQL analyzers
	atlas "ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlcheck"
	"ariga.io/atlas/sql/sqlcheck/datadepend"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
)

// Kinds of data-dependent change: each one fails, or would lose values, on some rows.
const (
	CheckAddNotNull = "add_not_null" // a NOT NULL column without a default, added to a table with rows
	CheckSetNotNull = "set_not_null" // an existing column made NOT NULL
	CheckUnique     = "unique"       // a new unique index, or an index made unique
	CheckConstraint = "check"        // a new or changed check constraint
	CheckForeignKey = "foreign_key"  // a new or changed foreign key
	CheckConvert    = "convert"      // a column type change that is not a widening
)

// DataCheck is one data-dependent change and how to count, in a tenant, the rows it fails on.
// It names tables and columns only, never a schema, so that it serves every tenant of a group.
type DataCheck struct {
	Kind    string   `json:"kind"`
	Code    string   `json:"code"` // Atlas's analyzer code (MF101…), or erpctl's for what Atlas does not check
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	Text    string   `json:"text"` // what could fail, in Atlas's words where it has them
	count   func(q string) string
}

// CountSQL is the query that counts, in schema schemaName, the rows the change would fail on.
func (c DataCheck) CountSQL(schemaName string) string {
	return c.count(ident.Quote(schemaName) + "." + ident.Quote(c.Table))
}

// Failure says what is wrong with the rows, for a status message: table, column, count.
func (c DataCheck) Failure(n int64) string {
	cols := strings.Join(c.Columns, ", ")
	// "in 1 row", "in 2 rows": a count after its noun reads right for one and for many.
	in := fmt.Sprintf("in %d rows", n)
	if n == 1 {
		in = "in 1 row"
	}
	switch c.Kind {
	case CheckAddNotNull:
		return fmt.Sprintf("table %s: new NOT NULL column %s has no default, and would have no value %s", c.Table, cols, in)
	case CheckSetNotNull:
		return fmt.Sprintf("table %s: column %s is made NOT NULL, and is NULL %s", c.Table, cols, in)
	case CheckUnique:
		return fmt.Sprintf("table %s: column %s is made unique, and repeats a value %s", c.Table, cols, in)
	case CheckConstraint:
		return fmt.Sprintf("table %s: check %s fails %s", c.Table, cols, in)
	case CheckForeignKey:
		return fmt.Sprintf("table %s: column %s refers to rows that do not exist, %s", c.Table, cols, in)
	default:
		return fmt.Sprintf("table %s: column %s does not convert to the new type %s", c.Table, cols, in)
	}
}

// DataChecks lists the data-dependent changes among changes. What Atlas's datadepend analyzer
// knows (NOT NULL added or set, unique added) comes from it; checks, foreign keys and
// conversions, which it does not cover, are erpctl's own.
func DataChecks(ctx context.Context, changes []atlas.Change) ([]DataCheck, error) {
	// One sqlcheck change per table change, at its own position, so that each diagnostic
	// points back at the change it is about.
	var (
		file  = &sqlcheck.File{}
		flat  []atlas.Change
		table []*atlas.Table
	)
	for _, c := range changes {
		m, ok := c.(*atlas.ModifyTable)
		if !ok {
			file.Changes = append(file.Changes, &sqlcheck.Change{Changes: atlas.Changes{c}, Stmt: &migrate.Stmt{Pos: -1}})
			continue
		}
		for _, tc := range m.Changes {
			file.Changes = append(file.Changes, &sqlcheck.Change{
				Changes: atlas.Changes{&atlas.ModifyTable{T: m.T, Changes: []atlas.Change{tc}}},
				Stmt:    &migrate.Stmt{Pos: len(flat)},
			})
			flat, table = append(flat, tc), append(table, m.T)
		}
	}
	// Tables ("t") and columns ("t.c") the plan creates: they do not exist yet when the counts
	// run, and a constraint over them is left to the apply.
	fresh := map[string]bool{}
	for _, c := range changes {
		if a, ok := c.(*atlas.AddTable); ok {
			fresh[a.T.Name] = true
		}
	}
	for i, tc := range flat {
		if a, ok := tc.(*atlas.AddColumn); ok {
			fresh[table[i].Name+"."+a.C.Name] = true
		}
	}
	dd, err := dataDependAnalyzer()
	if err != nil {
		return nil, err
	}
	var out []DataCheck
	for _, d := range dd.Diagnostics(ctx, &sqlcheck.Pass{File: file}) {
		if d.Pos < 0 || d.Pos >= len(flat) {
			continue
		}
		if c, ok := atlasCheck(table[d.Pos], flat[d.Pos], d, fresh); ok {
			out = append(out, c)
		}
	}
	for i, tc := range flat {
		if c, ok := ownCheck(table[i], tc, fresh); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// dataDependAnalyzer is the datadepend analyzer PostgreSQL registers, with its own handlers.
func dataDependAnalyzer() (*datadepend.Analyzer, error) {
	azs, err := sqlcheck.AnalyzerFor(postgres.DriverName, nil)
	if err != nil {
		return nil, fmt.Errorf("load atlas analyzers: %w", err)
	}
	for _, a := range azs {
		if dd, ok := a.(*datadepend.Analyzer); ok {
			return dd, nil
		}
	}
	return nil, fmt.Errorf("load atlas analyzers: the PostgreSQL driver registers no datadepend analyzer")
}

// atlasCheck turns a datadepend diagnostic into a count.
func atlasCheck(t *atlas.Table, c atlas.Change, d sqlcheck.Diagnostic, fresh map[string]bool) (DataCheck, bool) {
	dc := DataCheck{Code: d.Code, Table: t.Name, Text: d.Text}
	switch c := c.(type) {
	case *atlas.AddColumn:
		if hasAttr[*postgres.Identity](c.C.Attrs) || hasAttr[*atlas.GeneratedExpr](c.C.Attrs) {
			return dc, false // PostgreSQL fills these itself
		}
		dc.Kind, dc.Columns = CheckAddNotNull, []string{c.C.Name}
		dc.count = func(q string) string { return "SELECT count(*) FROM " + q }
	case *atlas.ModifyColumn:
		col := ident.Quote(c.To.Name)
		dc.Kind, dc.Columns = CheckSetNotNull, []string{c.To.Name}
		dc.count = func(q string) string { return "SELECT count(*) FROM " + q + " WHERE " + col + " IS NULL" }
	case *atlas.AddIndex:
		return uniqueCheck(dc, c.I, fresh)
	case *atlas.ModifyIndex:
		return uniqueCheck(dc, c.To, fresh)
	default:
		return dc, false
	}
	return dc, true
}

// uniqueCheck counts the rows that duplicate another over the index's key, NULLs being distinct
// as PostgreSQL has them by default.
func uniqueCheck(dc DataCheck, idx *atlas.Index, fresh map[string]bool) (DataCheck, bool) {
	var keys, notNull []string
	for _, p := range idx.Parts {
		switch {
		case p.C != nil && fresh[dc.Table+"."+p.C.Name]:
			return dc, false
		case p.C != nil:
			keys = append(keys, ident.Quote(p.C.Name))
			notNull = append(notNull, ident.Quote(p.C.Name)+" IS NOT NULL")
			dc.Columns = append(dc.Columns, p.C.Name)
		case p.X != nil:
			x, ok := p.X.(*atlas.RawExpr)
			if !ok {
				return dc, false
			}
			keys = append(keys, "("+x.X+")")
			dc.Columns = append(dc.Columns, x.X)
		}
	}
	var pred postgres.IndexPredicate
	for _, a := range idx.Attrs {
		if p, ok := a.(*postgres.IndexPredicate); ok {
			pred = *p
		}
	}
	if pred.P != "" {
		notNull = append(notNull, "("+pred.P+")")
	}
	where := ""
	if len(notNull) > 0 {
		where = " WHERE " + strings.Join(notNull, " AND ")
	}
	dc.Kind = CheckUnique
	dc.count = func(q string) string {
		return "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM " + q + where +
			" GROUP BY " + strings.Join(keys, ", ") + " HAVING count(*) > 1) AS dup"
	}
	return dc, true
}

// ownCheck covers what datadepend does not: a check or foreign key added to (or changed on) an
// existing table, and a type change that is not a widening. fresh holds what the plan creates.
func ownCheck(t *atlas.Table, c atlas.Change, fresh map[string]bool) (DataCheck, bool) {
	dc := DataCheck{Table: t.Name}
	switch c := c.(type) {
	case *atlas.AddCheck:
		return checkCheck(dc, c.C, fresh)
	case *atlas.ModifyCheck:
		return checkCheck(dc, c.To, fresh)
	case *atlas.AddForeignKey:
		return fkCheck(dc, c.F, fresh)
	case *atlas.ModifyForeignKey:
		return fkCheck(dc, c.To, fresh)
	case *atlas.ModifyColumn:
		if !c.Change.Is(atlas.ChangeType) || widens(c.From.Type.Type, c.To.Type.Type) {
			return dc, false
		}
		return convertCheck(dc, c)
	}
	return dc, false
}

func checkCheck(dc DataCheck, ck *atlas.Check, fresh map[string]bool) (DataCheck, bool) {
	for obj := range fresh {
		if col, ok := strings.CutPrefix(obj, dc.Table+"."); ok && strings.Contains(ck.Expr, col) {
			return dc, false
		}
	}
	dc.Kind, dc.Code, dc.Columns = CheckConstraint, "ERP101", []string{ck.Name}
	dc.Text = fmt.Sprintf("Adding check %q on table %q fails in case rows do not satisfy %s", ck.Name, dc.Table, ck.Expr)
	expr := ck.Expr
	dc.count = func(q string) string { return "SELECT count(*) FROM " + q + " WHERE (" + expr + ") IS FALSE" }
	return dc, true
}

// fkCheck counts the rows whose key matches no row of the referenced table. A referenced table
// the plan creates (a repair of one dropped by hand) is empty when the key is added: there every
// row with a key fails.
func fkCheck(dc DataCheck, fk *atlas.ForeignKey, fresh map[string]bool) (DataCheck, bool) {
	if fk.RefTable == nil || len(fk.Columns) != len(fk.RefColumns) {
		return dc, false
	}
	emptyRef := fresh[fk.RefTable.Name]
	var notNull, match []string
	for i, c := range fk.Columns {
		if fresh[dc.Table+"."+c.Name] {
			return dc, false
		}
		dc.Columns = append(dc.Columns, c.Name)
		notNull = append(notNull, "c."+ident.Quote(c.Name)+" IS NOT NULL")
		match = append(match, "r."+ident.Quote(fk.RefColumns[i].Name)+" = c."+ident.Quote(c.Name))
	}
	dc.Kind, dc.Code = CheckForeignKey, "ERP102"
	dc.Text = fmt.Sprintf("Adding foreign key %q on table %q fails in case rows reference missing rows of %q", fk.Symbol, dc.Table, fk.RefTable.Name)
	ref := fk.RefTable.Name
	dc.count = func(q string) string {
		if emptyRef {
			return "SELECT count(*) FROM " + q + " AS c WHERE " + strings.Join(notNull, " AND ")
		}
		// The referenced table lives in the same schema as q.
		refQ := q[:strings.LastIndex(q, ".")+1] + ident.Quote(ref)
		return "SELECT count(*) FROM " + q + " AS c WHERE " + strings.Join(notNull, " AND ") +
			" AND NOT EXISTS (SELECT 1 FROM " + refQ + " AS r WHERE " + strings.Join(match, " AND ") + ")"
	}
	return dc, true
}

// convertCheck counts the values a type change would fail on: those whose cast errors, and for
// a bounded string type those longer than the bound (an explicit cast truncates them where
// ALTER TABLE refuses). A cast that errors is caught per value by a function in pg_temp that the
// count's savepoint rolls back.
func convertCheck(dc DataCheck, c *atlas.ModifyColumn) (DataCheck, bool) {
	from, err1 := postgres.FormatType(storedType(c.From.Type.Type))
	to, err2 := postgres.FormatType(storedType(c.To.Type.Type))
	if err1 != nil || err2 != nil {
		return dc, false
	}
	col := ident.Quote(c.To.Name)
	dc.Kind, dc.Code, dc.Columns = CheckConvert, "ERP103", []string{c.To.Name}
	dc.Text = fmt.Sprintf("Changing column %q of table %q from %s to %s fails or loses data in case values do not convert", c.To.Name, dc.Table, from, to)
	long := ""
	if s, ok := c.To.Type.Type.(*atlas.StringType); ok && s.Size > 0 {
		long = fmt.Sprintf(" OR length(%s::text) > %d", col, s.Size)
	}
	dc.count = func(q string) string {
		return "SELECT count(*) FROM " + q + " WHERE " + col + " IS NOT NULL AND (NOT pg_temp.erpctl_converts(" + col +
			"::text, " + ident.Literal(from) + ", " + ident.Literal(to) + ")" + long + ")"
	}
	return dc, true
}

// convertsFunc creates pg_temp.erpctl_converts(value, from, to): whether value, read as type
// from, casts to type to without error.
const convertsFunc = `CREATE OR REPLACE FUNCTION pg_temp.erpctl_converts(v text, f text, t text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
	EXECUTE format('SELECT CAST(CAST(%L AS %s) AS %s)', v, f, t);
	RETURN true;
EXCEPTION WHEN others THEN
	RETURN false;
END
$fn$`

func hasAttr[T any, A any](attrs []A) bool {
	for _, a := range attrs {
		if _, ok := any(a).(T); ok {
			return true
		}
	}
	return false
}

// CheckFailure is a data check that found rows the change would fail on, in one tenant.
type CheckFailure struct {
	DataCheck
	Rows    int64  `json:"rows"`
	Message string `json:"message"`
}

// CheckSetup is what must run in a tenant's transaction before CountChecksStmt, and CheckTeardown
// what takes it away after: the function the conversion counts call, in pg_temp.
func CheckSetup(checks []DataCheck) []string {
	if needsConverts(checks) {
		return []string{convertsFunc}
	}
	return nil
}

// CheckTeardown drops what CheckSetup made.
func CheckTeardown(checks []DataCheck) []string {
	if needsConverts(checks) {
		return []string{"DROP FUNCTION IF EXISTS pg_temp.erpctl_converts(text, text, text)"}
	}
	return nil
}

func needsConverts(checks []DataCheck) bool {
	for _, c := range checks {
		if c.Kind == CheckConvert {
			return true
		}
	}
	return false
}

// CountChecksStmt counts, in schemaName as the transaction sees it, the rows each check would
// fail on, all in one query, to run in a batch (Tx.BatchRows) whose row for it CheckCounts reads.
func CountChecksStmt(schemaName string, checks []DataCheck) Stmt {
	parts := make([]string, len(checks))
	for i, c := range checks {
		parts[i] = "(" + c.CountSQL(schemaName) + ")::bigint"
	}
	return Stmt{SQL: "SELECT " + strings.Join(parts, ", ")}
}

// CheckGuardSQL fails, with a division by zero, when any check finds a row in schemaName as
// the transaction sees it; it returns nothing of use otherwise. A batch can then carry the checks
// and the change they guard in one round trip, and count (CountChecksStmt) only when the guard
// refused, which is rare.
func CheckGuardSQL(schemaName string, checks []DataCheck) string {
	parts := make([]string, len(checks))
	for i, c := range checks {
		parts[i] = "(" + c.CountSQL(schemaName) + ") = 0"
	}
	return "SELECT 1 / (" + strings.Join(parts, " AND ") + ")::int"
}

// ChecksRefused says whether err is the refusal of the guard (CheckGuardSQL) that was statement
// at of its batch, and not some other error of the batch or of the guard's own queries.
func ChecksRefused(err error, at int) bool {
	var stmt *StmtError
	var pgErr *pgconn.PgError
	return errors.As(err, &stmt) && stmt.At == at && errors.As(err, &pgErr) && pgErr.Code == "22012" // division_by_zero
}

// CheckCounts returns the checks that found rows, from the row of CountChecksStmt.
func CheckCounts(schemaName string, checks []DataCheck, row []string) ([]CheckFailure, error) {
	if len(row) != len(checks) {
		return nil, fmt.Errorf("check data of schema %q: %d counts for %d checks", schemaName, len(row), len(checks))
	}
	var out []CheckFailure
	for i, c := range checks {
		n, err := strconv.ParseInt(row[i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("check data of schema %q: count %q: %w", schemaName, row[i], err)
		}
		if n > 0 {
			out = append(out, CheckFailure{DataCheck: c, Rows: n, Message: c.Failure(n)})
		}
	}
	return out, nil
}
