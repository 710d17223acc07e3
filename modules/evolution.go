package modules

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Rename is a `rename "table"|"column"|"index"` block: how a module says that an object it
// declares under a new name is the old object, where a diff would see a drop and an add.
type Rename struct {
	Module string
	Kind   string // RenameTable, RenameColumn or RenameIndex
	Table  string // for a column or an index: its table, by the name the module declares now
	From   string
	To     string
	Pos    string // file:line of the block
}

// Kinds of rename.
const (
	RenameTable  = "table"
	RenameColumn = "column"
	RenameIndex  = "index"
)

// Step is a `migration "name"` block: SQL that runs once per tenant, before or after the
// declarative diff, inside the tenant's reconcile transaction.
type Step struct {
	Module string
	Name   string
	Run    string   // StepBefore or StepAfter
	SQL    []string // each sent as one statement, never split
	Pos    string
}

// When a step runs, relative to the declarative diff.
const (
	StepBefore = "before"
	StepAfter  = "after"
)

// ID names a step across modules: module/name.
func (s Step) ID() string { return s.Module + "/" + s.Name }

// attrs reads the attributes of an evolution block as strings (or, for list, lists of strings),
// refusing any that are unknown or missing.
func attrs(b *hclsyntax.Block, pos string, required, optional []string, list string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(b.Body.Blocks) > 0 {
		return nil, fmt.Errorf("%s: a %s block holds only attributes, not a %q block", pos, b.Type, b.Body.Blocks[0].Type)
	}
	for name, a := range b.Body.Attributes {
		if !slices.Contains(required, name) && !slices.Contains(optional, name) {
			return nil, fmt.Errorf("%s: a %s block has no attribute %q (it takes %v)", pos, b.Type, name, append(required, optional...))
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %s: %w", pos, name, diags)
		}
		switch {
		case v.Type() == cty.String && !v.IsNull():
			out[name] = []string{v.AsString()}
		case name == list && (v.Type().IsTupleType() || v.Type().IsListType()) && v.LengthInt() > 0:
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if e.Type() != cty.String || e.IsNull() {
					return nil, fmt.Errorf("%s: %s must be a string or a list of strings", pos, name)
				}
				out[name] = append(out[name], e.AsString())
			}
		default:
			return nil, fmt.Errorf("%s: %s must be a string", pos, name)
		}
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			return nil, fmt.Errorf("%s: a %s block needs %s", pos, b.Type, r)
		}
	}
	return out, nil
}

// parseRename reads a rename block of module m.
func parseRename(m string, b *hclsyntax.Block, pos string) (Rename, error) {
	if len(b.Labels) != 1 || !slices.Contains([]string{RenameTable, RenameColumn, RenameIndex}, b.Labels[0]) {
		return Rename{}, fmt.Errorf("%s: a rename block is rename \"table\", \"column\" or \"index\"", pos)
	}
	r := Rename{Module: m, Kind: b.Labels[0], Pos: pos}
	req := []string{"table", "from", "to"}
	if r.Kind == RenameTable {
		req = []string{"from", "to"}
	}
	a, err := attrs(b, pos, req, nil, "")
	if err != nil {
		return Rename{}, err
	}
	r.From, r.To = a["from"][0], a["to"][0]
	if t, ok := a["table"]; ok {
		r.Table = t[0]
	}
	for _, n := range []string{r.Table, r.From, r.To} {
		if why := identProblem(n); n != "" && why != "" {
			return Rename{}, fmt.Errorf("%s: rename %s: name %q: %s", pos, r.Kind, n, why)
		}
	}
	if r.From == r.To {
		return Rename{}, fmt.Errorf("%s: rename %s: from and to are both %q", pos, r.Kind, r.From)
	}
	return r, nil
}

// parseStep reads a migration block of module m.
func parseStep(m string, b *hclsyntax.Block, pos string) (Step, error) {
	if len(b.Labels) != 1 {
		return Step{}, fmt.Errorf("%s: a migration block has one label, its name", pos)
	}
	s := Step{Module: m, Name: b.Labels[0], Pos: pos}
	a, err := attrs(b, pos, []string{"run", "sql"}, nil, "sql")
	if err != nil {
		return Step{}, err
	}
	s.Run, s.SQL = a["run"][0], a["sql"]
	if s.Run != StepBefore && s.Run != StepAfter {
		return Step{}, fmt.Errorf("%s: migration %q: run is %q or %q, not %q", pos, s.Name, StepBefore, StepAfter, s.Run)
	}
	for i, q := range s.SQL {
		if q == "" {
			return Step{}, fmt.Errorf("%s: migration %q: a statement is empty", pos, s.Name)
		}
		if kw := transactionControl(q); kw != "" {
			return Step{}, fmt.Errorf("%s: migration %q: statement %d is transaction control (%s): a step runs inside its tenant's transaction, which erpctl commits or rolls back whole; remove it",
				pos, s.Name, i+1, kw)
		}
	}
	return s, nil
}

// transactionControl returns the transaction-control command statement q is (BEGIN, COMMIT,
// ROLLBACK, SAVEPOINT, ...), upper-cased, or "" when it is none. Such a statement in a step
// would commit or roll back part of the tenant's change, or erpctl's own savepoints, behind its
// back. Only the first words count: each step statement is sent on its own, and inside a DO block
// or a procedure PostgreSQL itself refuses a COMMIT in a transaction block.
func transactionControl(q string) string {
	var words []string
	for len(words) < 2 {
		q = skipSpaceAndComments(q)
		n := strings.IndexFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && r != '_' })
		if n < 0 {
			n = len(q)
		}
		if n == 0 {
			break
		}
		words, q = append(words, strings.ToUpper(q[:n])), q[n:]
	}
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE":
		return words[0]
	case "START", "PREPARE":
		if len(words) == 2 && words[1] == "TRANSACTION" {
			return strings.Join(words, " ")
		}
	}
	return ""
}

// skipSpaceAndComments drops what PostgreSQL skips before a statement's first word: white
// space, empty statements (;), -- comments and /* */ comments, which nest.
func skipSpaceAndComments(q string) string {
	for {
		q = strings.TrimLeftFunc(q, func(r rune) bool { return unicode.IsSpace(r) || r == ';' })
		switch {
		case strings.HasPrefix(q, "--"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return ""
			}
			q = q[i+1:]
		case strings.HasPrefix(q, "/*"):
			q = q[commentEnd(q):]
		default:
			return q
		}
	}
}

// commentEnd is the length of the /* */ comment q starts with, nested ones included.
func commentEnd(q string) int {
	depth := 0
	for i := 0; i < len(q); {
		switch {
		case strings.HasPrefix(q[i:], "/*"):
			depth, i = depth+1, i+2
		case strings.HasPrefix(q[i:], "*/"):
			depth, i = depth-1, i+2
		default:
			i++
		}
		if depth == 0 {
			return i
		}
	}
	return len(q)
}

// evolutionBlock reads a rename or migration block into m; ok is false for any other block.
func (m *Module) evolutionBlock(b *hclsyntax.Block, pos string) (ok bool, err error) {
	switch b.Type {
	case "rename":
		r, err := parseRename(m.Name, b, pos)
		if err != nil {
			return true, fmt.Errorf("load module %q: %w", m.Name, err)
		}
		m.Renames = append(m.Renames, r)
	case "migration":
		s, err := parseStep(m.Name, b, pos)
		if err != nil {
			return true, fmt.Errorf("load module %q: %w", m.Name, err)
		}
		for _, o := range m.Steps {
			if o.Name == s.Name {
				return true, fmt.Errorf("load module %q: %s: migration %q is already declared at %s", m.Name, pos, s.Name, o.Pos)
			}
		}
		m.Steps = append(m.Steps, s)
	default:
		return false, nil
	}
	return true, nil
}

// isEvolution reports whether a top-level block is one the loader reads itself, not Atlas.
func isEvolution(b *hclsyntax.Block) bool { return b.Type == "rename" || b.Type == "migration" }

// stripEvolution removes the rename and migration blocks from a parsed file before Atlas
// evaluates it.
func stripEvolution(f *hcl.File) {
	body := f.Body.(*hclsyntax.Body)
	body.Blocks = slices.DeleteFunc(body.Blocks, isEvolution)
}

// checkRenames refuses a rename whose new name the module does not declare.
func (r *Registry) checkRenames(tables map[string]map[string]bool) error {
	for _, m := range r.byName {
		for _, rn := range m.Renames {
			t := rn.Table
			if rn.Kind == RenameTable {
				t = rn.To
			}
			if r.tableModule[t] != m.Name {
				return fmt.Errorf("load module %q: %s: rename %s: module %q declares no table %q", m.Name, rn.Pos, rn.Kind, m.Name, t)
			}
			if rn.Kind != RenameTable && !tables[t][rn.Kind+":"+rn.To] {
				return fmt.Errorf("load module %q: %s: rename %s: table %q declares no %s %q", m.Name, rn.Pos, rn.Kind, t, rn.Kind, rn.To)
			}
		}
	}
	return nil
}

// Renames returns the renames of the enabled modules, table renames first (a column or index
// rename names its table by its new name), each kind in module and file order.
func (r *Registry) Renames(enabled []string) []Rename {
	var out []Rename
	for _, kind := range []string{RenameTable, RenameColumn, RenameIndex} {
		for _, n := range enabled {
			if m := r.byName[n]; m != nil {
				for _, rn := range m.Renames {
					if rn.Kind == kind {
						out = append(out, rn)
					}
				}
			}
		}
	}
	return out
}

// Steps returns the migration steps of the enabled modules, in module then file order.
func (r *Registry) Steps(enabled []string) []Step {
	var out []Step
	for _, n := range enabled {
		if m := r.byName[n]; m != nil {
			out = append(out, m.Steps...)
		}
	}
	return out
}

// declaredObjects lists, per table of realm, its columns and indexes as "column:NAME" and
// "index:NAME".
func declaredObjects(realm *schema.Realm) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range realm.Schemas {
		for _, t := range s.Tables {
			objs := map[string]bool{}
			for _, c := range t.Columns {
				objs["column:"+c.Name] = true
			}
			for _, i := range t.Indexes {
				objs["index:"+i.Name] = true
			}
			out[t.Name] = objs
		}
	}
	return out
}
