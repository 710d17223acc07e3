package schema

import (
	"fmt"
	"slices"
	"strings"

	atlas "ariga.io/atlas/sql/schema"
)

// enumsKey is the entry of Managed that lists a schema's enum types, beside its tables. No table
// can have this name: module identifiers are lower-case letters, digits and '_'.
const enumsKey = "~enums"

// classifyObject sorts a change to a schema-level object. Of those, erpctl manages enum types:
// a new type and new values are safe; a type no module declares any more is destructive when
// erpctl made it; a value dropped or moved is left alone, as PostgreSQL can only add values.
// It reports whether c was an enum change.
func (d *Diff) classifyObject(c atlas.Change, prev Managed) bool {
	switch c := c.(type) {
	case *atlas.AddObject:
		if e, ok := c.O.(*atlas.EnumType); ok {
			d.Apply = append(d.Apply, c)
			d.report(EnumReportName(e.T), StatusMissing, "enum type does not exist")
			return true
		}
	case *atlas.ModifyObject:
		from, ok1 := c.From.(*atlas.EnumType)
		to, ok2 := c.To.(*atlas.EnumType)
		if !ok1 || !ok2 {
			return false
		}
		if gone := enumValuesLost(from.Values, to.Values); gone != "" {
			what := fmt.Sprintf("enum %s: %s (PostgreSQL cannot drop or move an enum value; left alone)", from.T, gone)
			d.Unmanaged = append(d.Unmanaged, what)
			d.report(EnumReportName(from.T), StatusOK, what)
			return true
		}
		d.Apply = append(d.Apply, c)
		d.report(EnumReportName(from.T), StatusDrifted, "values are missing: "+strings.Join(enumValuesNew(from.Values, to.Values), ", "))
		return true
	case *atlas.DropObject:
		e, ok := c.O.(*atlas.EnumType)
		if !ok {
			return false
		}
		if prev.has(enumsKey, "enum", e.T) {
			d.Destructive = append(d.Destructive, c)
		} else {
			d.Unmanaged = append(d.Unmanaged, "enum "+e.T)
		}
		return true
	}
	return false
}

// enumValuesLost says which values of from an ALTER TYPE ... ADD VALUE sequence cannot keep on
// the way to to: those missing from to, or out of their order there. "" when none.
func enumValuesLost(from, to []string) string {
	var missing []string
	at := 0
	for _, v := range from {
		i := slices.Index(to[at:], v)
		if i < 0 {
			if slices.Contains(to, v) {
				return fmt.Sprintf("value %q moved", v)
			}
			missing = append(missing, fmt.Sprintf("%q", v))
			continue
		}
		at += i + 1
	}
	if len(missing) > 0 {
		return "value " + strings.Join(missing, ", ") + " no longer declared"
	}
	return ""
}

// EnumReportName is how debug tables names an enum type among the tables.
func EnumReportName(name string) string { return "enum " + name }

// enumValuesNew lists the values of to that from lacks, quoted.
func enumValuesNew(from, to []string) []string {
	var out []string
	for _, v := range to {
		if !slices.Contains(from, v) {
			out = append(out, fmt.Sprintf("%q", v))
		}
	}
	return out
}

// managedEnums adds the enum types of s to m.
func managedEnums(s *atlas.Schema, m Managed) {
	var objs []string
	for _, o := range s.Objects {
		if e, ok := o.(*atlas.EnumType); ok {
			objs = append(objs, "enum:"+e.T)
		}
	}
	if len(objs) > 0 {
		slices.Sort(objs)
		m[enumsKey] = objs
	}
}
