package modules

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuiltins(t *testing.T) {
	r, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"product", "inventory"}) {
		t.Fatalf("order: %v", got)
	}
	inv, _ := r.Module("inventory")
	if !slices.Equal(inv.Deps, []string{"product"}) || !slices.Equal(inv.Tables, []string{"warehouses", "stock_items"}) {
		t.Fatalf("inventory: %+v", inv)
	}
	c, err := r.Closure([]string{"inventory"})
	if err != nil || !slices.Equal(c, []string{"product", "inventory"}) {
		t.Fatalf("closure: %v %v", c, err)
	}
	if _, err := r.Closure([]string{"nope"}); !errors.Is(err, ErrUnknownModule) {
		t.Fatalf("unknown module: %v", err)
	}
	res, ok := r.Resource("inventory", "stock-items")
	if !ok {
		t.Fatal("no stock-items resource")
	}
	q, _ := res.Column("quantity")
	if q.Kind != KindInt || !q.HasDefault || q.Required() {
		t.Fatalf("quantity: %+v", q)
	}
	p, _ := r.Resource("product", "products")
	price, _ := p.Column("price")
	sku, _ := p.Column("sku")
	id, _ := p.Column("id")
	if price.Kind != KindNumeric || price.Scale != 2 || price.MaxDigits != 12 || !sku.Unique || !sku.Required() || !id.ReadOnly || p.Columns[0].Name != "id" {
		t.Fatalf("products: %+v", p.Columns)
	}
	s, err := r.Desired([]string{"product"}, "tenant_acme")
	if err != nil || s.Name != "tenant_acme" || len(s.Tables) != 2 || s.Tables[0].Schema != s {
		t.Fatalf("desired: %v %v", s, err)
	}
	if r.Hash([]string{"product"}) == r.Hash(r.Names()) {
		t.Fatal("hash ignores the module set")
	}
}

func TestModulesDir(t *testing.T) {
	cases := []struct {
		name, file, src, want string
	}{
		{"bad hcl", "crm.hcl", "table \"x\" {\n  schema = schema.tenant\n  column \"a\" {\n", "crm.hcl:3"},
		{"unknown fk table", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "org_id" {
    type = bigint
  }
  foreign_key "fk" {
    columns     = [column.org_id]
    ref_columns = [table.orgs.column.id]
  }
}
`, "orgs"},
		{"duplicate table", "crm.hcl", `schema "tenant" {}
table "products" {
  schema = schema.tenant
  column "x" {
    type = text
  }
}
`, `table "products" is already declared by module "product"`},
		{"clashing column", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "created_at" {
    type = text
  }
}
`, "crm.hcl:4"},
		{"other schema", "crm.hcl", `schema "public" {}
`, "crm.hcl:1"},
		{"reserved table name", "crm.hcl", `schema "tenant" {}
table "pg_x" {
  schema = schema.tenant
}
`, "crm.hcl:2"},
		{"bad name", "Crm.hcl", `schema "tenant" {}
`, "module name"},
		{"partitioned table", "crm.hcl", `schema "tenant" {}
table "visits" {
  schema = schema.tenant
  column "at" {
    type = timestamptz
  }
  partition {
    type    = RANGE
    columns = [column.at]
  }
}
`, `crm.hcl:7: table "visits" is partitioned`},
		{"id without identity", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "id" {
    type = bigint
    null = false
  }
}
`, `crm.hcl:4: column "id" of table "contacts": the tenant-aware id needs identity`},
		{"nullable id", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "id" {
    type = bigint
    null = true
    identity {
      generated = BY_DEFAULT
    }
  }
}
`, `crm.hcl:4: column "id" of table "contacts": the tenant-aware id must be null = false`},
		{"created_at without default", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "name" {
    type = text
  }
  column "created_at" {
    type = timestamptz
    null = false
  }
}
`, `crm.hcl:7: column "created_at" of table "contacts": the tenant-aware created_at needs null = false and default`},
		{"nullable updated_at", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "updated_at" {
    type    = timestamptz
    null    = true
    default = sql("now()")
  }
}
`, `crm.hcl:4: column "updated_at"`},
		{"index named like the primary key", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "name" {
    type = text
  }
  index "contacts_pkey" {
    columns = [column.name]
  }
}
`, `crm.hcl:7: index "contacts_pkey" has the name of the primary key's own index`},
		{"custom primary key", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "code" {
    type = text
  }
  primary_key {
    columns = [column.code]
  }
}
`, `crm.hcl:7: table "contacts": the primary key must be the tenant-aware column id`},
		{"id of another type", "crm.hcl", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "id" {
    type = integer
  }
}
`, `crm.hcl:4: column "id" of table "contacts" clashes`},
		{"enum named like a table", "crm.hcl", `schema "tenant" {}
enum "products" {
  schema = schema.tenant
  values = ["a"]
}
`, `crm.hcl:2: enum "products" has the name of table "products"`},
		{"enum of another module", "crm.hcl", `schema "tenant" {}
enum "x" {
  schema = schema.tenant
  values = ["a"]
}
enum "x" {
  schema = schema.tenant
  values = ["b"]
}
`, `crm.hcl:6: enum "x" is already declared by module "crm" at `},
		{"text default on an integer", "crm.hcl", ticketWithDefault("integer", `"high"`),
			`crm.hcl:6: column "priority" of table "tickets": default "high" is not a value of type integer; write an integer in its range`},
		{"integer out of range", "crm.hcl", ticketWithDefault("smallint", `40000`),
			`crm.hcl:6: column "priority" of table "tickets": default "40000" is not a value of type smallint`},
		{"fraction on an integer", "crm.hcl", ticketWithDefault("bigint", `1.5`), `crm.hcl:6: column "priority"`},
		{"number on a boolean", "crm.hcl", ticketWithDefault("boolean", `1`),
			`crm.hcl:6: column "priority" of table "tickets": default "1" is not a value of type boolean; write true or false`},
		{"word on a numeric", "crm.hcl", ticketWithDefault("numeric(12,2)", `"cheap"`), `crm.hcl:6: column "priority"`},
		{"statement in a numeric", "crm.hcl", ticketWithDefault("numeric", `"0); DROP TABLE x; --"`), `crm.hcl:6: column "priority"`},
		{"value not in the enum", "crm.hcl", `schema "tenant" {}
enum "level" {
  schema = schema.tenant
  values = ["low", "high"]
}
table "tickets" {
  schema = schema.tenant
  column "priority" {
    type    = enum.level
    default = "urgent"
  }
}
`, `crm.hcl:10: column "priority" of table "tickets": default "urgent" is not a value of type enum level; write one of its values (low, high)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func TestCycleIsAnError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.hcl", `schema "tenant" {}
table "as" {
  schema = schema.tenant
  column "b_id" {
    type = bigint
  }
  foreign_key "a_b" {
    columns     = [column.b_id]
    ref_columns = [table.bs.column.id]
  }
}
`)
	write("b.hcl", `schema "tenant" {}
table "bs" {
  schema = schema.tenant
  column "a_id" {
    type = bigint
  }
  foreign_key "b_a" {
    columns     = [column.a_id]
    ref_columns = [table.as.column.id]
  }
}
`)
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "a -> b -> a") {
		t.Fatalf("cycle: %v", err)
	}
}

func TestOverrideAndDependentModule(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(`schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "warehouse_id" {
    type = bigint
    null = true
  }
  foreign_key "contacts_warehouse_fkey" {
    columns     = [column.warehouse_id]
    ref_columns = [table.warehouses.column.id]
  }
}
`), 0o644)
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); !slices.Equal(got, []string{"product", "inventory", "crm"}) {
		t.Fatalf("order: %v", got)
	}
	if c, _ := r.Closure([]string{"crm"}); !slices.Equal(c, []string{"product", "inventory", "crm"}) {
		t.Fatalf("closure: %v", c)
	}
	if d := r.Dependents("inventory", r.Names()); !slices.Equal(d, []string{"crm"}) {
		t.Fatalf("dependents: %v", d)
	}
}

// A tenant-aware column declared in full, as the loader would add it, is accepted.
func TestTenantAwareDeclaredInFull(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(`schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "id" {
    type = bigint
    null = false
    identity {
      generated = BY_DEFAULT
    }
  }
  column "created_at" {
    type    = timestamptz
    null    = false
    default = sql("now()")
  }
}
`), 0o644)
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}

func ticketWithDefault(typ, def string) string {
	return `schema "tenant" {}
table "tickets" {
  schema = schema.tenant
  column "priority" {
    type    = ` + typ + `
    default = ` + def + `
  }
}
`
}

// Defaults that are values of their column's type load, written the ways HCL allows.
func TestDefaultsOfTheirType(t *testing.T) {
	for _, c := range [][2]string{
		{"integer", "0"}, {"integer", `"-12"`}, {"bigint", "9000000000"}, {"smallint", `"'7'"`},
		{"numeric(12,2)", "0"}, {"numeric(12,2)", `"9.50"`}, {"numeric", "-1e3"}, {"real", "1.5"},
		{"double_precision", `"'NaN'"`}, {"boolean", "true"}, {"boolean", `"FALSE"`}, {"text", `"high"`},
		{"text", "5"}, {"integer", `sql("1 + 1")`}, {"timestamptz", `sql("now()")`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "crm.hcl"), []byte(ticketWithDefault(c[0], c[1])), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err != nil {
			t.Errorf("%s default %s: %v", c[0], c[1], err)
		}
	}
}
