package schema

import (
	"fmt"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/modules"
)

// applyRenames renames, in current, each object a module declares renamed, and returns the
// Atlas rename changes that do the same to the database. A diff of the renamed current state
// then sees no drop and add for them: what is left is any change to the renamed object itself.
//
// A rename applies only where the old name exists and the new one does not, so a tenant that
// already has the new name is unaffected and the hint may stay in the module for ever. current
// is the caller's own inspection, changed in place.
func applyRenames(current *atlas.Schema, renames []modules.Rename) (changes []atlas.Change) {
	if current == nil {
		return nil
	}
	for _, rn := range renames {
		switch rn.Kind {
		case modules.RenameTable:
			t, ok := current.Table(rn.From)
			if _, exists := current.Table(rn.To); !ok || exists {
				continue
			}
			old := *t
			t.Name = rn.To
			changes = append(changes, &atlas.RenameTable{From: &old, To: t})
		case modules.RenameColumn:
			t, ok := current.Table(rn.Table)
			if !ok {
				continue
			}
			c, ok := t.Column(rn.From)
			if _, exists := t.Column(rn.To); !ok || exists {
				continue
			}
			old := *c
			c.Name = rn.To
			changes = append(changes, &atlas.ModifyTable{T: t, Changes: []atlas.Change{&atlas.RenameColumn{From: &old, To: c}}})
		case modules.RenameIndex:
			t, ok := current.Table(rn.Table)
			if !ok {
				continue
			}
			i, ok := t.Index(rn.From)
			if _, exists := t.Index(rn.To); !ok || exists {
				continue
			}
			old := *i
			i.Name = rn.To
			changes = append(changes, &atlas.ModifyTable{T: t, Changes: []atlas.Change{&atlas.RenameIndex{From: &old, To: i}}})
		}
	}
	return changes
}

// isRename reports whether a change only renames: a RenameTable, or a ModifyTable of renames.
func isRename(c atlas.Change) bool {
	switch c := c.(type) {
	case *atlas.RenameTable:
		return true
	case *atlas.ModifyTable:
		for _, tc := range c.Changes {
			switch tc.(type) {
			case *atlas.RenameColumn, *atlas.RenameIndex:
			default:
				return false
			}
		}
		return len(c.Changes) > 0
	}
	return false
}

// renameDetail reports the table a rename change is about, and what it does.
func renameDetail(c atlas.Change) (table string, what []string) {
	switch c := c.(type) {
	case *atlas.RenameTable:
		return c.To.Name, []string{fmt.Sprintf("table %s is renamed to %s", c.From.Name, c.To.Name)}
	case *atlas.ModifyTable:
		for _, tc := range c.Changes {
			switch tc := tc.(type) {
			case *atlas.RenameColumn:
				what = append(what, fmt.Sprintf("column %s is renamed to %s", tc.From.Name, tc.To.Name))
			case *atlas.RenameIndex:
				what = append(what, fmt.Sprintf("index %s is renamed to %s", tc.From.Name, tc.To.Name))
			}
		}
		return c.T.Name, what
	}
	return "", nil
}

// CountRenames is how many of the statements Plan makes of changes are renames: they come
// first, one statement each.
func CountRenames(changes []atlas.Change) int {
	n := 0
	for _, c := range changes {
		if isRename(c) {
			n++
		}
	}
	return n
}
