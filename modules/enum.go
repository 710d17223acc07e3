package modules

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Enum is one enum type a module declares. Every tenant gets its own copy in its schema.
type Enum struct {
	Name   string
	Module string
	Values []string
	Pos    string // "file:line" of the declaration
}

// checkEnum checks an enum block: its values must be a literal list of distinct strings, each a
// label PostgreSQL keeps (1 to 63 bytes). A value is written into CREATE TYPE and ALTER TYPE
// between single quotes, and Atlas passes a value that already starts and ends with one through
// as it is, so a quote inside a value is refused rather than trusted to escaping.
func checkEnum(module, pos string, b *hclsyntax.Block) (*Enum, error) {
	e := &Enum{Name: b.Labels[0], Module: module, Pos: pos}
	fail := func(format string, args ...any) (*Enum, error) {
		return nil, fmt.Errorf("load module %q: %s: enum %q: %s", module, pos, e.Name, fmt.Sprintf(format, args...))
	}
	if strings.HasPrefix(e.Name, "pg_") {
		return fail("names starting with pg_ are reserved by PostgreSQL")
	}
	attr, ok := b.Body.Attributes["values"]
	if !ok {
		return fail("values = [\"...\", ...] is missing")
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || !(v.Type().IsTupleType() || v.Type().IsListType()) || v.LengthInt() == 0 {
		return fail("values must be a non-empty list of strings")
	}
	seen := map[string]bool{}
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		if ev.IsNull() || ev.Type() != cty.String {
			return fail("values must be a non-empty list of strings")
		}
		s := ev.AsString()
		switch {
		case s == "" || len(s) > MaxIdentLen:
			return fail("value %q must be 1 to %d bytes long", s, MaxIdentLen)
		case strings.ContainsAny(s, `'\`) || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return fail("value %q: quotes, backslashes and control characters are not allowed", s)
		case seen[s]:
			return fail("value %q is listed twice", s)
		}
		seen[s] = true
		e.Values = append(e.Values, s)
	}
	return e, nil
}

// addEnum records an enum of module m, refusing a name another module's enum or any table
// already uses: PostgreSQL gives every table a composite type of the table's name.
func (r *Registry) addEnum(e *Enum, tablePos map[string]string) error {
	if prev, ok := r.enums[e.Name]; ok {
		return fmt.Errorf("load module %q: %s: enum %q is already declared by module %q at %s", e.Module, e.Pos, e.Name, prev.Module, prev.Pos)
	}
	if pos, ok := tablePos[e.Name]; ok {
		return fmt.Errorf("load module %q: %s: enum %q has the name of table %q (%s): PostgreSQL gives each table a type of its name", e.Module, e.Pos, e.Name, e.Name, pos)
	}
	r.enums[e.Name] = e
	return nil
}

// Enum returns the enum type called name.
func (r *Registry) Enum(name string) (*Enum, bool) {
	e, ok := r.enums[name]
	return e, ok
}

// gatherObjects moves the enum types of every schema Atlas made (one per module file) into s0,
// the one schema the tables were gathered under, so that renaming s0 renames the types too.
func gatherObjects(s0 *schema.Schema, others []*schema.Schema) {
	for _, s := range others {
		for _, o := range s.Objects {
			if e, ok := o.(*schema.EnumType); ok {
				e.Schema = s0
			}
			s0.Objects = append(s0.Objects, o)
		}
	}
	for _, o := range s0.Objects {
		if e, ok := o.(*schema.EnumType); ok {
			e.Schema = s0
		}
	}
}

// enumDeps lists the modules whose enum types the columns of t use.
func (r *Registry) enumDeps(t *schema.Table) []string {
	var out []string
	for _, c := range t.Columns {
		if e, ok := c.Type.Type.(*schema.EnumType); ok {
			if d, ok := r.enums[e.T]; ok {
				out = append(out, d.Module)
			}
		}
	}
	return out
}

// dropRepeatedSchema removes the placeholder schema block from every file after the first to
// declare it. Every file declares it, and Atlas makes one schema per declaration but binds an
// enum column to the type through the first schema of the name only, where the table of a later
// file is not found; with one declaration every reference resolves to the same schema.
func dropRepeatedSchema(blocks []*hclsyntax.Block, seen bool) ([]*hclsyntax.Block, bool) {
	out := blocks[:0:0]
	for _, b := range blocks {
		if b.Type == "schema" {
			if seen {
				continue
			}
			seen = true
		}
		out = append(out, b)
	}
	return out, seen
}
