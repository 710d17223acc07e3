// Package schema turns a desired state into SQL on top of Atlas: it inspects a schema, diffs it
// against the desired state, sorts the changes into safe, destructive and unmanaged, plans the
// SQL and applies it inside the caller's transaction.
package schema

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// Planner diffs and plans. It holds an Atlas driver over a *sql.DB for planning, and diffs
// without a database: with one, Atlas compares two default expressions that differ in text by
// running "SELECT <from> = <to>" with the module's text inlined, outside any transaction and
// even in a plan. Diffs that matter compare against a normalised desired state, where both
// sides are as PostgreSQL prints them and equal text is the right test.
type Planner struct {
	drv        migrate.Driver
	diff       atlas.Differ
	opts       PlannerOptions
	normalized *lru.Cache[string, *Normalized] // NormalizeOnce's, by desired-state hash
}

// PlannerOptions shape the SQL a Planner writes.
type PlannerOptions struct {
	// ConstraintsApart gives each constraint that an existing table gains an ALTER TABLE of its
	// own, after the table's other changes: Citus refuses an ADD CONSTRAINT beside any other
	// subcommand (0A000). Plain PostgreSQL does without: there one statement validates every new
	// check in one scan of the table, where apart each check scans it again.
	ConstraintsApart bool
}

// NewPlanner opens the Atlas PostgreSQL driver over db.
func NewPlanner(db *sql.DB, opts PlannerOptions) (*Planner, error) {
	drv, err := postgres.Open(db)
	if err != nil {
		return nil, fmt.Errorf("open atlas driver: %w", err)
	}
	return &Planner{drv: drv, diff: postgres.DefaultDiff, opts: opts, normalized: newNormalizedCache()}, nil
}

// Querier is what inspection needs: a *sql.Tx or a *sql.DB.
type Querier = atlas.ExecQuerier

// Normalize returns desired as PostgreSQL prints it back: it creates the tables in a scratch
// schema inside tx, inspects them and rolls them back. Atlas compares check expressions only
// between normalised schemas (a changed expression is otherwise no change at all), and an
// expression is only comparable once PostgreSQL has rewritten it.
func (p *Planner) Normalize(ctx context.Context, tx *Tx, desired *atlas.Schema) (_ *atlas.Schema, err error) {
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	scratch := "erpctl_normalize_" + hex.EncodeToString(suffix[:])
	if _, err := tx.ExecContext(ctx, "SAVEPOINT erpctl_normalize"); err != nil {
		return nil, fmt.Errorf("normalize schema %q: %w", desired.Name, err)
	}
	defer func() {
		if rerr := tx.ExecStatements(ctx, "ROLLBACK TO SAVEPOINT erpctl_normalize", "RELEASE SAVEPOINT erpctl_normalize"); rerr != nil && err == nil {
			err = fmt.Errorf("normalize schema %q: %w", desired.Name, rerr)
		}
	}()
	name := desired.Name
	desired.Name = scratch
	changes, err := p.diff.SchemaDiff(atlas.New(scratch), desired)
	desired.Name = name
	if err != nil {
		return nil, fmt.Errorf("normalize schema %q: %w", name, err)
	}
	stmts, err := p.Plan(ctx, changes, scratch)
	if err != nil {
		return nil, fmt.Errorf("normalize schema %q: %w", name, err)
	}
	stmts = append([]string{"CREATE SCHEMA " + scratch}, stmts...)
	if err := tx.ExecStatements(ctx, stmts...); err != nil {
		return nil, fmt.Errorf("normalize schema %q: %w", name, err)
	}
	norm, err := p.Inspect(ctx, tx, scratch)
	if err != nil {
		return nil, fmt.Errorf("normalize schema %q: %w", name, err)
	}
	norm.Name = name
	return norm, nil
}

// Diff is the gap between a schema and its desired state, sorted by what erpctl may do about it.
type Diff struct {
	Schema      string
	Missing     bool           // the schema itself does not exist
	Apply       []atlas.Change // safe changes, applied by reconcile
	Destructive []atlas.Change // drops and narrowing changes of objects erpctl manages
	Unmanaged   []string       // objects no module ever declared: reported, never touched
	tables      map[string]*TableReport
}

// Empty reports whether nothing needs to be applied.
func (d *Diff) Empty() bool { return !d.Missing && len(d.Apply) == 0 && len(d.Destructive) == 0 }

// Diff compares current (nil when the schema does not exist) with desired. prev is what erpctl
// last applied to this schema: a drop of something in prev is destructive, a drop of anything
// else is an unmanaged object and is left alone.
//
// With atlas.DiffNormalized() among opts, desired must come from Normalize: check expressions
// are then compared too, which Atlas's default mode matches by name only.
func (p *Planner) Diff(ctx context.Context, current, desired *atlas.Schema, prev Managed, opts ...atlas.DiffOption) (*Diff, error) {
	return p.DiffRenamed(ctx, current, desired, prev, nil, opts...)
}

// DiffRenamed is Diff after the renames the modules declare: each one whose old name current
// has (and whose new name it lacks) becomes an Atlas rename change, planned first, in place of
// the drop and add a diff would see. current is changed in place.
func (p *Planner) DiffRenamed(ctx context.Context, current, desired *atlas.Schema, prev Managed, renames []modules.Rename, opts ...atlas.DiffOption) (*Diff, error) {
	d := &Diff{Schema: desired.Name, tables: map[string]*TableReport{}}
	for _, t := range desired.Tables {
		d.tables[t.Name] = &TableReport{Table: t.Name, Status: StatusOK}
	}
	if current == nil {
		d.Missing = true
		current = atlas.New(desired.Name)
	}
	if current.Name != desired.Name {
		return nil, fmt.Errorf("diff schema %q: current state is of schema %q", desired.Name, current.Name)
	}
	for _, c := range applyRenames(current, renames) {
		d.Apply = append(d.Apply, c)
		t, what := renameDetail(c)
		for _, w := range what {
			d.report(t, StatusDrifted, w)
		}
	}
	changes, err := p.diff.SchemaDiff(current, desired, opts...)
	if err != nil {
		return nil, fmt.Errorf("diff schema %q: %w", desired.Name, err)
	}
	for _, c := range changes {
		d.classify(c, prev)
	}
	for _, t := range current.Tables {
		if _, ok := d.tables[t.Name]; !ok && !prev.hasTable(t.Name) {
			d.tables[t.Name] = &TableReport{Table: t.Name, Status: StatusUnmanaged, Details: []string{"no module declares this table; left alone"}}
		}
	}
	return d, nil
}

func (d *Diff) classify(c atlas.Change, prev Managed) {
	switch c := c.(type) {
	case *atlas.AddTable:
		d.Apply = append(d.Apply, c)
		d.report(c.T.Name, StatusMissing, "table does not exist")
	case *atlas.DropTable:
		if prev.hasTable(c.T.Name) {
			d.Destructive = append(d.Destructive, c)
			d.report(c.T.Name, StatusDrifted, "no module declares this table any more: dropping it needs --allow-destructive")
		} else {
			d.Unmanaged = append(d.Unmanaged, "table "+c.T.Name)
		}
	case *atlas.ModifyTable:
		var safe, destructive []atlas.Change
		for _, tc := range c.Changes {
			what, kind := d.tableChange(c.T.Name, tc, prev)
			switch kind {
			case changeSafe:
				safe = append(safe, tc)
				d.report(c.T.Name, StatusDrifted, what)
			case changeDestructive:
				destructive = append(destructive, tc)
				d.report(c.T.Name, StatusDrifted, what+": needs --allow-destructive")
			case changeUnmanaged:
				d.Unmanaged = append(d.Unmanaged, what)
				d.note(c.T.Name, "unmanaged "+what+": left alone")
			}
		}
		if len(safe) > 0 {
			d.Apply = append(d.Apply, &atlas.ModifyTable{T: c.T, Changes: safe})
		}
		if len(destructive) > 0 {
			d.Destructive = append(d.Destructive, &atlas.ModifyTable{T: c.T, Changes: destructive})
		}
	default:
		// Of schema-level objects erpctl manages enum types (enum.go); attributes (comments,
		// ownership) are not its to manage.
		d.classifyObject(c, prev)
	}
}

type changeKind int

const (
	changeSafe changeKind = iota
	changeDestructive
	changeUnmanaged
)

// tableChange describes one change to table t and says whether it is safe, destructive or
// about an unmanaged object.
func (d *Diff) tableChange(t string, c atlas.Change, prev Managed) (string, changeKind) {
	switch c := c.(type) {
	case *atlas.AddColumn:
		return fmt.Sprintf("column %s is missing", c.C.Name), changeSafe
	case *atlas.DropColumn:
		if prev.has(t, "column", c.C.Name) {
			return fmt.Sprintf("column %s is no longer declared", c.C.Name), changeDestructive
		}
		return fmt.Sprintf("column %s.%s", t, c.C.Name), changeUnmanaged
	case *atlas.ModifyColumn:
		what := fmt.Sprintf("column %s differs (%s)", c.To.Name, describeColumnChange(c.Change))
		if c.Change.Is(atlas.ChangeType) && !widens(c.From.Type.Type, c.To.Type.Type) {
			from, _ := postgres.FormatType(storedType(c.From.Type.Type))
			to, _ := postgres.FormatType(storedType(c.To.Type.Type))
			// PostgreSQL converts only with USING where no assignment cast exists (text to
			// integer); the data check counts the values the cast fails on first.
			if !hasAttr[*postgres.ConvertUsing](c.Extra) && to != "" {
				c.Extra = append(c.Extra, &postgres.ConvertUsing{X: ident.Quote(c.To.Name) + "::" + to})
			}
			return fmt.Sprintf("column %s changes type from %s to %s, which can lose data", c.To.Name, from, to), changeDestructive
		}
		return what, changeSafe
	case *atlas.AddIndex:
		return fmt.Sprintf("index %s is missing", c.I.Name), changeSafe
	case *atlas.DropIndex:
		if prev.has(t, "index", c.I.Name) {
			return fmt.Sprintf("index %s is no longer declared", c.I.Name), changeSafe
		}
		return fmt.Sprintf("index %s on %s", c.I.Name, t), changeUnmanaged
	case *atlas.ModifyIndex:
		return fmt.Sprintf("index %s differs", c.To.Name), changeSafe
	case *atlas.AddForeignKey:
		return fmt.Sprintf("foreign key %s is missing", c.F.Symbol), changeSafe
	case *atlas.DropForeignKey:
		if prev.has(t, "constraint", c.F.Symbol) {
			return fmt.Sprintf("foreign key %s is no longer declared", c.F.Symbol), changeSafe
		}
		return fmt.Sprintf("foreign key %s on %s", c.F.Symbol, t), changeUnmanaged
	case *atlas.ModifyForeignKey:
		return fmt.Sprintf("foreign key %s differs", c.To.Symbol), changeSafe
	case *atlas.AddCheck:
		return fmt.Sprintf("check %s is missing", c.C.Name), changeSafe
	case *atlas.DropCheck:
		if prev.has(t, "constraint", c.C.Name) {
			return fmt.Sprintf("check %s is no longer declared", c.C.Name), changeSafe
		}
		return fmt.Sprintf("check %s on %s", c.C.Name, t), changeUnmanaged
	case *atlas.ModifyCheck:
		return fmt.Sprintf("check %s differs", c.To.Name), changeSafe
	case *atlas.AddPrimaryKey:
		return "primary key is missing", changeSafe
	case *atlas.DropPrimaryKey:
		return "primary key is not declared", changeDestructive
	case *atlas.ModifyPrimaryKey:
		return "primary key differs", changeDestructive
	default:
		return fmt.Sprintf("%T", c), changeSafe
	}
}

func describeColumnChange(k atlas.ChangeKind) string {
	var parts []string
	for _, c := range []struct {
		k    atlas.ChangeKind
		name string
	}{{atlas.ChangeType, "type"}, {atlas.ChangeNull, "nullability"}, {atlas.ChangeDefault, "default"}, {atlas.ChangeGenerated, "generated expression"}, {atlas.ChangeAttr, "attributes"}, {atlas.ChangeComment, "comment"}} {
		if k.Is(c.k) {
			parts = append(parts, c.name)
		}
	}
	if len(parts) == 0 {
		return "definition"
	}
	return strings.Join(parts, ", ")
}

// storedType is the type a column of type t stores its values as: a serial type is an integer
// type with a sequence for its default, and only its integer type can be cast to or converted
// with USING ("serial" is no type).
func storedType(t atlas.Type) atlas.Type {
	if s, ok := t.(*postgres.SerialType); ok {
		return s.IntegerType()
	}
	return t
}

// widens reports whether a column type change keeps every value: a bigger integer (serial types
// counting as the integers they store), a longer or unbounded string, a numeric with more
// integer digits and the same scale.
func widens(from, to atlas.Type) bool {
	intSize := map[string]int{"smallint": 2, "int2": 2, "integer": 4, "int": 4, "int4": 4, "bigint": 8, "int8": 8}
	from, to = storedType(from), storedType(to)
	switch f := from.(type) {
	case *atlas.IntegerType:
		t, ok := to.(*atlas.IntegerType)
		return ok && intSize[f.T] > 0 && intSize[t.T] >= intSize[f.T]
	case *atlas.StringType:
		t, ok := to.(*atlas.StringType)
		if !ok {
			return false
		}
		return t.T == "text" || (f.T != "text" && t.Size >= f.Size && f.Size > 0)
	case *atlas.DecimalType:
		t, ok := to.(*atlas.DecimalType)
		if !ok {
			return false
		}
		return t.Precision == 0 || (f.Precision > 0 && t.Scale == f.Scale && t.Precision >= f.Precision)
	}
	return false
}

// Plan returns the SQL for changes, with every name qualified by qualifier, or by nothing when
// qualifier is "" (then the statements run under the tenant's search_path).
//
// The plan runs in parts: the renames, the rest, and with ConstraintsApart each constraint that
// an existing table gains in a statement of its own. Renames go first and on their own because
// the changes after them name objects by their new names, and Atlas orders the changes of one
// plan as it sees fit. Constraints apart go last, after the columns they name.
func (p *Planner) Plan(ctx context.Context, changes []atlas.Change, qualifier string) ([]string, error) {
	var renames, rest, constraints []atlas.Change
	for _, c := range changes {
		if isRename(c) {
			renames = append(renames, c)
		} else {
			rest = append(rest, c)
		}
	}
	if p.opts.ConstraintsApart {
		rest, constraints = constraintsApart(rest)
	}
	var out []string
	for _, part := range []struct {
		changes []atlas.Change
		mode    migrate.PlanMode
	}{{renames, migrate.PlanModeUnset}, {rest, migrate.PlanModeUnset}, {constraints, migrate.PlanModeUnsortedDump}} {
		stmts, err := p.planOnly(ctx, part.changes, qualifier, part.mode)
		if err != nil {
			return nil, err
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// constraintsApart takes out of changes each constraint that an existing table gains (a
// changed one is dropped in rest and added again here), as a table change of its own, in the
// order a table needs them: primary key and unique constraints before checks and foreign keys
// that may rely on them. Tables created whole keep their constraints in CREATE TABLE.
func constraintsApart(changes []atlas.Change) (rest, constraints []atlas.Change) {
	var keys, others []atlas.Change
	for _, c := range changes {
		m, ok := c.(*atlas.ModifyTable)
		if !ok {
			rest = append(rest, c)
			continue
		}
		var kept []atlas.Change
		split := false
		apart := func(add atlas.Change, key bool) {
			split = true
			one := &atlas.ModifyTable{T: m.T, Changes: []atlas.Change{add}}
			if key {
				keys = append(keys, one)
			} else {
				others = append(others, one)
			}
		}
		for _, tc := range m.Changes {
			switch tc := tc.(type) {
			case *atlas.AddPrimaryKey:
				apart(tc, true)
			case *atlas.ModifyPrimaryKey:
				kept = append(kept, &atlas.DropPrimaryKey{P: tc.From})
				apart(&atlas.AddPrimaryKey{P: tc.To}, true)
			case *atlas.AddIndex:
				if hasAttr[*postgres.Constraint](tc.I.Attrs) { // ADD CONSTRAINT ... UNIQUE, not CREATE INDEX
					apart(tc, true)
				} else {
					kept = append(kept, tc)
				}
			case *atlas.AddCheck, *atlas.AddForeignKey:
				apart(tc, false)
			case *atlas.ModifyCheck:
				kept = append(kept, &atlas.DropCheck{C: tc.From})
				apart(&atlas.AddCheck{C: tc.To}, false)
			case *atlas.ModifyForeignKey:
				kept = append(kept, &atlas.DropForeignKey{F: tc.From})
				apart(&atlas.AddForeignKey{F: tc.To}, false)
			default:
				kept = append(kept, tc)
			}
		}
		if !split {
			rest = append(rest, m)
		} else if len(kept) > 0 {
			rest = append(rest, &atlas.ModifyTable{T: m.T, Changes: kept})
		}
	}
	return rest, append(keys, others...)
}

func (p *Planner) planOnly(ctx context.Context, changes []atlas.Change, qualifier string, mode migrate.PlanMode) ([]string, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	plan, err := p.drv.PlanChanges(ctx, "erpctl", changes, func(o *migrate.PlanOptions) {
		o.SchemaQualifier = &qualifier
		o.Mode = mode
	})
	if err != nil {
		return nil, fmt.Errorf("plan changes: %w", err)
	}
	out := make([]string, len(plan.Changes))
	for i, c := range plan.Changes {
		out[i] = c.Cmd
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// Table statuses as debug tables reports them.
const (
	StatusOK        = "ok"
	StatusMissing   = "missing"
	StatusDrifted   = "drifted"
	StatusUnmanaged = "unmanaged"
)

// TableReport is the state of one table of a tenant schema.
type TableReport struct {
	Table   string
	Status  string
	Details []string
}

func (d *Diff) report(table, status, detail string) {
	r, ok := d.tables[table]
	if !ok {
		r = &TableReport{Table: table, Status: StatusOK}
		d.tables[table] = r
	}
	if r.Status != StatusMissing {
		r.Status = status
	}
	if status == StatusMissing {
		r.Details = []string{detail}
		return
	}
	r.Details = append(r.Details, detail)
}

// note adds a detail to a table's report without changing its status.
func (d *Diff) note(table, detail string) {
	if r, ok := d.tables[table]; ok {
		r.Details = append(r.Details, detail)
	}
}

// Tables reports every declared table, then the unmanaged ones, each sorted by name.
func (d *Diff) Tables() []TableReport {
	out := make([]TableReport, 0, len(d.tables))
	for _, r := range d.tables {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		ui, uj := out[i].Status == StatusUnmanaged, out[j].Status == StatusUnmanaged
		if ui != uj {
			return uj
		}
		return out[i].Table < out[j].Table
	})
	return out
}

// Managed records what erpctl applied to a schema: per table, its columns, indexes and
// constraints, as "column:NAME", "index:NAME", "constraint:NAME".
type Managed map[string][]string

// ManagedOf lists the objects of a desired schema.
func ManagedOf(s *atlas.Schema) Managed {
	m := Managed{}
	for _, t := range s.Tables {
		var objs []string
		for _, c := range t.Columns {
			objs = append(objs, "column:"+c.Name)
		}
		for _, i := range t.Indexes {
			objs = append(objs, "index:"+i.Name)
		}
		for _, f := range t.ForeignKeys {
			objs = append(objs, "constraint:"+f.Symbol)
		}
		for _, a := range t.Attrs {
			if c, ok := a.(*atlas.Check); ok {
				objs = append(objs, "constraint:"+c.Name)
			}
		}
		sort.Strings(objs)
		m[t.Name] = objs
	}
	managedEnums(s, m)
	return m
}

// Merge returns what m and o manage together: a table once managed stays managed until a
// destructive apply drops it.
func (m Managed) Merge(o Managed) Managed {
	out := Managed{}
	for _, src := range []Managed{m, o} {
		for t, objs := range src {
			for _, x := range objs {
				if !slices.Contains(out[t], x) {
					out[t] = append(out[t], x)
				}
			}
		}
	}
	for t := range out {
		sort.Strings(out[t])
	}
	return out
}

func (m Managed) hasTable(t string) bool { _, ok := m[t]; return ok }

func (m Managed) has(t, kind, name string) bool {
	return slices.Contains(m[t], kind+":"+name)
}
