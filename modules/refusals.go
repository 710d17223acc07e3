package modules

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tableDecl is where a table block declares what the loader checks after Atlas evaluated it.
type tableDecl struct {
	module   string
	cols     map[string]hcl.Range // tenant-aware columns the block declares itself
	defaults map[string]hcl.Range // the default attribute of each column that has one
	pk       hcl.Range            // the block's own primary_key, zero when the loader adds it
	block    hcl.Range
}

func at(r hcl.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

// checkTableBlock refuses, before evaluation, what a table block may say but erpctl cannot
// serve: a partitioned table (its primary key would have to hold the partition key, and every
// table is keyed on id alone) and an index named like the primary key's own (<table>_pkey),
// which PostgreSQL refuses only when the table is created, in every tenant.
func checkTableBlock(module string, b *hclsyntax.Block) error {
	t := b.Labels[0]
	for _, inner := range b.Body.Blocks {
		switch {
		case inner.Type == "partition":
			return fmt.Errorf("load module %q: %s: table %q is partitioned: erpctl keys every table on id alone, and a partitioned table's primary key must hold its partition key; declare a plain table", module, at(inner.DefRange()), t)
		case inner.Type == "index" && len(inner.Labels) == 1 && inner.Labels[0] == t+"_pkey":
			return fmt.Errorf("load module %q: %s: index %q has the name of the primary key's own index of table %q; choose another name", module, at(inner.DefRange()), inner.Labels[0], t)
		}
	}
	return nil
}

// checkTenantAware checks a table's own declarations of the tenant-aware columns and its primary
// key against what every tenant-aware table needs: the type, and for id its identity and NOT
// NULL, for created_at and updated_at NOT NULL and a default. Without them the table loads and
// every insert through the data API fails.
func checkTenantAware(t *schema.Table, d tableDecl) error {
	for col, rng := range d.cols {
		c, _ := t.Column(col)
		where := fmt.Sprintf("load module %q: %s: column %q of table %q", d.module, at(rng), col, t.Name)
		if s, err := formatType(c); err != nil || s != tenantAwareType[col] {
			return fmt.Errorf("%s clashes with the tenant-aware column the loader adds; remove it or declare it as %s", where, tenantAwareType[col])
		}
		switch {
		case col == "id" && !hasIdentity(c):
			return fmt.Errorf("%s: the tenant-aware id needs identity { generated = BY_DEFAULT }; remove the column and the loader adds it", where)
		case col == "id" && c.Type.Null:
			return fmt.Errorf("%s: the tenant-aware id must be null = false; remove the column and the loader adds it", where)
		case (col == "created_at" || col == "updated_at") && (c.Type.Null || c.Default == nil):
			return fmt.Errorf("%s: the tenant-aware %s needs null = false and default = sql(\"now()\"); remove the column and the loader adds it", where, col)
		}
	}
	if pk := t.PrimaryKey; pk == nil || len(pk.Parts) != 1 || pk.Parts[0].C == nil || pk.Parts[0].C.Name != "id" {
		rng := d.pk
		if rng == (hcl.Range{}) {
			rng = d.block
		}
		return fmt.Errorf("load module %q: %s: table %q: the primary key must be the tenant-aware column id; remove the primary_key block", d.module, at(rng), t.Name)
	}
	return nil
}

func formatType(c *schema.Column) (string, error) { return postgres.FormatType(c.Type.Type) }

// Literal defaults PostgreSQL reads as they stand, unquoted: Atlas writes a default of a number
// or boolean column into the SQL as it is, so anything else there is an expression (a column
// reference, for "high") that fails in every tenant.
var (
	intLiteral     = regexp.MustCompile(`^[+-]?[0-9]+$`)
	numericLiteral = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	boolLiteral    = regexp.MustCompile(`(?i)^(true|false)$`)
)

// checkDefaults refuses a literal default that is not a value of its column's type: a number
// column's default must be a number in range, a boolean's true or false, an enum's one of its
// values. Expressions (sql("...")) are PostgreSQL's to judge.
func checkDefaults(t *schema.Table, d tableDecl) error {
	for _, c := range t.Columns {
		lit, ok := c.Default.(*schema.Literal)
		rng, declared := d.defaults[c.Name]
		if !ok || !declared {
			continue
		}
		v := lit.V
		if uq, ok := strings.CutPrefix(v, "'"); ok && strings.HasSuffix(uq, "'") && len(uq) > 0 {
			v = strings.TrimSpace(uq[:len(uq)-1])
		}
		var want string
		switch typ := c.Type.Type.(type) {
		case *schema.IntegerType:
			bits := map[string]int{"smallint": 16, "int2": 16, "bigint": 64, "int8": 64}[typ.T]
			if _, err := strconv.ParseInt(strings.TrimPrefix(v, "+"), 10, cmp.Or(bits, 32)); err != nil || !intLiteral.MatchString(v) {
				want = "an integer in its range"
			}
		case *schema.DecimalType:
			if !numericLiteral.MatchString(v) {
				want = "a number"
			}
		case *schema.FloatType:
			if !numericLiteral.MatchString(v) && !(v != lit.V && slices.Contains([]string{"nan", "infinity", "-infinity", "+infinity", "inf", "-inf", "+inf"}, strings.ToLower(v))) {
				want = "a number"
			}
		case *schema.BoolType:
			if !boolLiteral.MatchString(v) {
				want = "true or false"
			}
		case *schema.EnumType:
			if !slices.Contains(typ.Values, v) {
				want = "one of its values (" + strings.Join(typ.Values, ", ") + ")"
			}
		}
		if want != "" {
			typ, _ := formatType(c)
			if e, ok := c.Type.Type.(*schema.EnumType); ok {
				typ = "enum " + e.T
			}
			return fmt.Errorf("load module %q: %s: column %q of table %q: default %q is not a value of type %s; write %s, or an expression as sql(\"...\")",
				d.module, at(rng), c.Name, t.Name, lit.V, typ, want)
		}
	}
	return nil
}
