package modules

import (
	"fmt"

	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tableDecl is where a table block declares what the loader checks after Atlas evaluated it.
type tableDecl struct {
	module string
	cols   map[string]hcl.Range // tenant-aware columns the block declares itself
	pk     hcl.Range            // the block's own primary_key, zero when the loader adds it
	block  hcl.Range
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
