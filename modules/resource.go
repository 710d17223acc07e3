package modules

import (
	"slices"
	"strings"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
)

// Kind is how the data API encodes a column's values in JSON.
type Kind string

// The kinds of column values the data API knows.
const (
	KindInt     Kind = "integer"  // JSON number
	KindFloat   Kind = "float"    // JSON number
	KindNumeric Kind = "decimal"  // JSON string, as DRF renders decimals; accepts numbers too
	KindText    Kind = "string"   // JSON string
	KindBool    Kind = "boolean"  // JSON true/false
	KindTime    Kind = "datetime" // RFC 3339 string
	KindDate    Kind = "date"     // YYYY-MM-DD string
	KindJSON    Kind = "json"     // any JSON value
	KindUUID    Kind = "uuid"     // JSON string
	KindChoice  Kind = "choice"   // JSON string, one of Choices (an enum type)
	KindOther   Kind = "string"   // text form of the value
)

// Column describes one column of a resource for the data API.
type Column struct {
	Name       string
	SQLType    string // as PostgreSQL formats it, e.g. "numeric(12,2)"
	Kind       Kind
	Null       bool     // accepts null
	HasDefault bool     // may be left out on create
	ReadOnly   bool     // one of the tenant-aware columns, set by the server
	Unique     bool     // alone in a unique index
	MaxDigits  int      // numeric precision, 0 when unbounded
	Scale      int      // numeric scale
	References string   // "table" the column's foreign key points at, or ""
	Choices    []string // an enum column's values, in declared order
}

// Required reports whether a create must give the column.
func (c Column) Required() bool { return !c.ReadOnly && !c.Null && !c.HasDefault }

// Resource is one module table as the data API serves it.
type Resource struct {
	Module  string
	Table   string
	Name    string // the table name with '_' → '-'
	Columns []Column
}

// Column returns the column called name.
func (r *Resource) Column(name string) (*Column, bool) {
	for i := range r.Columns {
		if r.Columns[i].Name == name {
			return &r.Columns[i], true
		}
	}
	return nil, false
}

// ResourceName is the API name of a table.
func ResourceName(table string) string { return strings.ReplaceAll(table, "_", "-") }

// Resources returns the resources of the given modules, in dependency order then file order.
func (r *Registry) Resources(enabled []string) []Resource {
	var out []Resource
	for _, res := range r.resources {
		if slices.Contains(enabled, res.Module) {
			out = append(out, res)
		}
	}
	return out
}

// Resource finds the resource of module called name.
func (r *Registry) Resource(module, name string) (*Resource, bool) {
	for i := range r.resources {
		if res := &r.resources[i]; res.Module == module && res.Name == name {
			return res, true
		}
	}
	return nil, false
}

func describe(r *Registry, realm *schema.Realm) []Resource {
	s := realm.Schemas[0]
	var out []Resource
	for _, m := range r.modules {
		for _, tn := range m.Tables {
			t, ok := s.Table(tn)
			if !ok {
				continue
			}
			res := Resource{Module: m.Name, Table: tn, Name: ResourceName(tn)}
			for _, c := range t.Columns {
				res.Columns = append(res.Columns, describeColumn(t, c))
			}
			out = append(out, res)
		}
	}
	return out
}

func describeColumn(t *schema.Table, c *schema.Column) Column {
	col := Column{
		Name:       c.Name,
		Null:       c.Type.Null,
		HasDefault: c.Default != nil || hasIdentity(c),
		ReadOnly:   tenantAwareType[c.Name] != "",
	}
	col.SQLType, _ = postgres.FormatType(c.Type.Type)
	switch ct := c.Type.Type.(type) {
	case *schema.IntegerType:
		col.Kind = KindInt
	case *schema.FloatType:
		col.Kind = KindFloat
	case *schema.DecimalType:
		col.Kind, col.MaxDigits, col.Scale = KindNumeric, ct.Precision, ct.Scale
	case *schema.StringType:
		col.Kind = KindText
	case *schema.BoolType:
		col.Kind = KindBool
	case *schema.TimeType:
		col.Kind = KindTime
		if ct.T == "date" {
			col.Kind = KindDate
		}
	case *schema.JSONType:
		col.Kind = KindJSON
	case *schema.UUIDType:
		col.Kind = KindUUID
	case *schema.EnumType:
		col.Kind, col.Choices, col.SQLType = KindChoice, ct.Values, ct.T
	default:
		col.Kind = KindOther
	}
	for _, idx := range t.Indexes {
		if idx.Unique && len(idx.Parts) == 1 && idx.Parts[0].C == c {
			col.Unique = true
		}
	}
	for _, fk := range t.ForeignKeys {
		if len(fk.Columns) == 1 && fk.Columns[0] == c && fk.RefTable != nil {
			col.References = fk.RefTable.Name
		}
	}
	return col
}

func hasIdentity(c *schema.Column) bool {
	for _, a := range c.Attrs {
		if _, ok := a.(*postgres.Identity); ok {
			return true
		}
	}
	return false
}
