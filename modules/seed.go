package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Seed is rows a module declares for every tenant of one of its tables, in a block
//
//	seed "units" {
//	  rows = [ { code = "pcs", name = "Pieces" } ]
//	}
//
// Each row is inserted once per tenant (at create, or when the module or the seed reaches the
// tenant later) and recorded by its Key, so that a row the tenant edits or deletes stays so.
type Seed struct {
	Table string
	Rows  []SeedRow
}

// SeedRow is one seed row: column → value (string, number as text, bool or nil).
type SeedRow struct {
	Values map[string]any
	Key    string // what the catalog records: table and content, hashed
	JSON   string // Values as a JSON object, for jsonb_populate_record
}

// parseSeed reads a seed block; its columns are checked against the table once evaluated.
func parseSeed(pos string, b *hclsyntax.Block) (Seed, error) {
	s := Seed{Table: b.Labels[0]}
	attr, ok := b.Body.Attributes["rows"]
	if !ok || len(b.Body.Attributes) != 1 || len(b.Body.Blocks) != 0 {
		return s, fmt.Errorf("%s: seed %q holds exactly one attribute, rows = [ { column = value, ... }, ... ]", pos, s.Table)
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return s, fmt.Errorf("%s: seed %q: %w", pos, s.Table, diags)
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() {
		return s, fmt.Errorf("%s: seed %q: rows must be a list of objects", pos, s.Table)
	}
	for _, row := range v.AsValueSlice() {
		if !row.Type().IsObjectType() {
			return s, fmt.Errorf("%s: seed %q: rows must be a list of objects", pos, s.Table)
		}
		vals := map[string]any{}
		for col, cv := range row.AsValueMap() {
			if why := identProblem(col); why != "" {
				return s, fmt.Errorf("%s: seed %q: column %q: %s", pos, s.Table, col, why)
			}
			if slices.Contains(TenantAware, col) {
				return s, fmt.Errorf("%s: seed %q: column %q is set by erpctl, not by a seed", pos, s.Table, col)
			}
			val, err := seedValue(cv)
			if err != nil {
				return s, fmt.Errorf("%s: seed %q: column %q: %w", pos, s.Table, col, err)
			}
			vals[col] = val
		}
		if len(vals) == 0 {
			return s, fmt.Errorf("%s: seed %q: a row sets no column", pos, s.Table)
		}
		js, _ := json.Marshal(vals) // map keys sorted: the same row always gives the same text
		sum := sha256.Sum256(append([]byte(s.Table+"\n"), js...))
		s.Rows = append(s.Rows, SeedRow{Values: vals, JSON: string(js), Key: s.Table + ":" + hex.EncodeToString(sum[:12])})
	}
	return s, nil
}

func seedValue(v cty.Value) (any, error) {
	switch {
	case v.IsNull():
		return nil, nil
	case v.Type() == cty.String:
		return v.AsString(), nil
	case v.Type() == cty.Number:
		return json.Number(v.AsBigFloat().Text('f', -1)), nil
	case v.Type() == cty.Bool:
		return v.True(), nil
	}
	return nil, fmt.Errorf("a seed value is a string, a number, a bool or null, not %s", v.Type().FriendlyName())
}

// checkSeeds refuses a seed of a table its module does not declare, or of a column the table
// does not have.
func checkSeeds(m *Module, realm *schema.Realm) error {
	for _, s := range m.Seeds {
		if !slices.Contains(m.Tables, s.Table) {
			return fmt.Errorf("load module %q (%s): seed %q: the module declares no table %q", m.Name, m.File, s.Table, s.Table)
		}
		t, ok := realm.Schemas[0].Table(s.Table)
		if !ok {
			return fmt.Errorf("load module %q (%s): seed %q: no table %q", m.Name, m.File, s.Table, s.Table)
		}
		for _, r := range s.Rows {
			for col := range r.Values {
				if _, ok := t.Column(col); !ok {
					return fmt.Errorf("load module %q (%s): seed %q: table %q has no column %q", m.Name, m.File, s.Table, s.Table, col)
				}
			}
		}
	}
	return nil
}

// HasSeeds reports whether any module declares seed rows: without any, nothing need look.
func (r *Registry) HasSeeds() bool {
	return slices.ContainsFunc(r.modules, func(m *Module) bool { return len(m.Seeds) > 0 })
}
