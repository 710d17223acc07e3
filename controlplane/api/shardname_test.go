package api

import (
	"testing"

	"github.com/erpctl/erpctl/modules"
)

// The name parsing of Citus errors needs no Citus: workers' messages and names are plain strings
// (as Citus 13.2 words them), matched against the module registry.

func TestQuotedNameOfMessage(t *testing.T) {
	for _, c := range []struct{ msg, prefix, want string }{
		{`new row for relation "stock_items_102010" violates check constraint "stock_items_quantity_check"`, `check constraint "`, "stock_items_quantity_check"},
		{`null value in column "name" of relation "products_102009" violates not-null constraint`, `null value in column "`, "name"},
		{`Key (id)=(3) is still referenced from table "stock_items_102010".`, `referenced from table "`, "stock_items_102010"},
		{`Key (id)=(3) is still referenced from table "stock_items`, `referenced from table "`, ""}, // cut short
		{`something else`, `check constraint "`, ""},
		{``, `check constraint "`, ""},
	} {
		if got := quoted(c.msg, c.prefix); got != c.want {
			t.Errorf("quoted(%q, %q) = %q, want %q", c.msg, c.prefix, got, c.want)
		}
	}
}

func TestShardOf(t *testing.T) {
	for _, c := range []struct {
		name, declared string
		want           bool
	}{
		{"order_lines_102008", "order_lines", true},
		{"order_lines", "order_lines", true},
		{"stock_items_quantity_check", "stock_items_quantity_check", true},
		{"stock_items_102010", "stock", false}, // another table's shard
		{"stock_items_12ab345", "stock_items", false},
		{"stock_items_", "stock_items", false},
		{"stock_itemsx", "stock_items", false},
		{"", "stock_items", false},
		{"stock", "stock_items", false},
	} {
		if got := shardOf(c.name, c.declared); got != c.want {
			t.Errorf("shardOf(%q, %q) = %v, want %v", c.name, c.declared, got, c.want)
		}
	}
}

// The table a "still referenced" error names is found among the tables of the tenant's modules
// that refer to the deleted row's table; anything else is not named.
func TestReferencingTableFromRegistry(t *testing.T) {
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rcOf := func(module, resource string, mods []string) *reqCtx {
		res, ok := reg.Resource(module, resource)
		if !ok {
			t.Fatalf("no resource %s/%s", module, resource)
		}
		return &reqCtx{tenant: &tenantState{reg: reg, modules: mods}, t: &tableSQL{res: res}}
	}
	all := reg.Names()
	for _, c := range []struct {
		rc     *reqCtx
		name   string
		want   string
		wantOK bool
	}{
		{rcOf("product", "products", all), "stock_items_102010", "stock_items", true}, // Citus
		{rcOf("product", "products", all), "stock_items", "stock_items", true},        // plain
		{rcOf("inventory", "warehouses", all), "stock_items_102010", "stock_items", true},
		{rcOf("product", "categories", all), "products_102009", "products", true},
		{rcOf("product", "categories", all), "stock_items_102010", "", false},               // does not refer to categories
		{rcOf("product", "products", []string{"product"}), "stock_items_102010", "", false}, // module not enabled
		{rcOf("product", "products", all), "tenant_acme", "", false},
		{rcOf("product", "products", all), "", "", false},
	} {
		got, ok := referencingTable(c.rc, c.name)
		if got != c.want || ok != c.wantOK {
			t.Errorf("referencingTable(%s, %q) = %q, %v; want %q, %v", c.rc.t.res.Table, c.name, got, ok, c.want, c.wantOK)
		}
	}
}
