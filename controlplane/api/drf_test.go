package api_test

import (
	"fmt"
	"testing"

	"github.com/erpctl/erpctl/controlplane/api"
)

// The tests of this file check the differences from Django REST framework that issue 11 found,
// each against what DRF does, on two tenants.

// DRF ignores body keys that name no field: a client may PUT back what it read, with extra keys.
func TestDRFUnknownBodyFieldsIgnored(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	globex := "/api/globex/product/products/"
	a.must(201, "POST", globex, "globex", `{"sku": "G-1", "name": "Globex"}`)
	p := a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil", "colour": "red", "url": "x"}`)
	if _, ok := p["colour"]; ok {
		t.Fatalf("unknown field echoed: %v", p)
	}
	detail := fmt.Sprintf("%s%d/", productsURL, idOf(t, p))
	// PUT back the object as read, with a computed field a DRF serializer might add.
	r := a.do("PUT", detail, "acme", fmt.Sprintf(`{"id": %d, "sku": "A-1", "name": "Anvil 2", "url": %q, "stock": {"n": 3}}`,
		idOf(t, p), "http://example.com"+detail))
	if r.status != 200 || r.obj(t)["name"] != "Anvil 2" {
		t.Fatalf("PUT back with extra keys: %s", r)
	}
	a.must(200, "PATCH", detail, "acme", `{"newer_column": 1}`)
	// Bad input: an unknown key beside a bad value names only the bad value, and changes nothing.
	before := a.rowCounts()
	r = a.do("POST", productsURL, "acme", `{"sku": "A-2", "name": "N", "price": "abc", "colour": "red"}`)
	if r.status != 400 {
		t.Fatalf("bad price with an unknown key: %s", r)
	}
	jsonEqual(t, "bad price", r.body, `{"price": ["A valid number is required."]}`)
	r = a.do("PATCH", detail, "acme", `{"name": null, "colour": "red"}`)
	jsonEqual(t, "null name", r.body, `{"name": ["This field may not be null."]}`)
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products WHERE name = 'Anvil 2'`); n != 1 {
		t.Fatalf("acme: %d", n)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.products WHERE name = 'Globex'`); n != 1 {
		t.Fatalf("globex changed: %d", n)
	}
}
