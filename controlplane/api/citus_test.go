package api_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
)

// shardNameRE finds what looks like a Citus shard name in a response: a name with a shard id.
var shardNameRE = regexp.MustCompile(`[a-z]_1[0-9]{5,}`)

// On Citus a worker's error comes without its column and constraint fields, and names shards.
// The data API answers each constraint violation exactly as on plain PostgreSQL: the same
// status and the same DRF body, the field named, no shard name; the refused write changes no
// row of either tenant. Runs on ERPCTL_TEST_CITUS_URL's cluster, and skips without it.
func TestCitusAPIErrorsAsOnPlain(t *testing.T) {
	t.Parallel()
	citus := newAPIEnvOn(t, cptest.NewCitus(t), api.Config{})
	plain := newAPIEnv(t, api.Config{})
	type fixture struct{ prod, prod2, wh, wh2, stock int64 }
	setUp := func(a *apiEnv) fixture {
		var f fixture
		a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`)
		f.prod = idOf(t, a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil", "price": "100.00"}`))
		f.prod2 = idOf(t, a.must(201, "POST", productsURL, "acme", `{"sku": "B-1", "name": "Bolt"}`))
		f.wh = idOf(t, a.must(201, "POST", warehousesURL, "acme", `{"code": "W1", "name": "Main"}`))
		f.wh2 = idOf(t, a.must(201, "POST", warehousesURL, "acme", `{"code": "W2", "name": "Spare"}`))
		f.stock = idOf(t, a.must(201, "POST", stockURL, "acme", fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": 3}`, f.prod, f.wh)))
		// globex has a row of the same sku: uniqueness is per tenant.
		a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "B-1", "name": "Globex bolt"}`)
		return f
	}
	fc, fp := setUp(citus), setUp(plain)
	type req struct{ method, path, body string }
	cases := []struct {
		name string
		req  func(f fixture) req
		want string // the exact body both must give, "" when comparing them is the test
	}{
		{"check on create", func(f fixture) req {
			return req{"POST", stockURL, fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": -1}`, f.prod, f.wh2)}
		}, `{"quantity": ["Ensure this value is greater than or equal to 0."]}`},
		{"check on update", func(f fixture) req {
			return req{"PATCH", fmt.Sprintf("%s%d/", stockURL, f.stock), `{"quantity": -5}`}
		}, `{"quantity": ["Ensure this value is greater than or equal to 0."]}`},
		{"delete a referenced product", func(f fixture) req {
			return req{"DELETE", fmt.Sprintf("%s%d/", productsURL, f.prod), ""}
		}, `{"detail": "Cannot delete this product: stock_items still refer to it."}`},
		{"delete a referenced warehouse", func(f fixture) req {
			return req{"DELETE", fmt.Sprintf("%s%d/", warehousesURL, f.wh), ""}
		}, `{"detail": "Cannot delete this warehouse: stock_items still refer to it."}`},
		{"unique", func(f fixture) req { return req{"POST", productsURL, `{"sku": "A-1", "name": "Again"}`} },
			`{"sku": ["product with this sku already exists."]}`},
		{"unique on patch", func(f fixture) req {
			return req{"PATCH", fmt.Sprintf("%s%d/", productsURL, f.prod), `{"sku": "B-1"}`}
		}, `{"sku": ["product with this sku already exists."]}`},
		{"unique together", func(f fixture) req {
			return req{"POST", stockURL, fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d}`, f.prod, f.wh)}
		}, `{"non_field_errors": ["The fields product_id, warehouse_id must make a unique set."]}`},
		{"fk missing row", func(f fixture) req {
			return req{"POST", productsURL, `{"sku": "N-1", "name": "N", "category_id": 99}`}
		}, `{"category_id": ["Invalid pk \"99\" - object does not exist."]}`},
		{"null on non-null", func(f fixture) req { return req{"PATCH", fmt.Sprintf("%s%d/", productsURL, f.prod), `{"name": null}`} },
			`{"name": ["This field may not be null."]}`},
		{"integer range", func(f fixture) req {
			return req{"POST", stockURL, fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": 1099511627776}`, f.prod, f.wh2)}
		}, ""},
		{"bad filter", func(f fixture) req { return req{"GET", productsURL + "?price__gt=abc", ""} }, ""},
	}
	beforeC, beforeP := citus.rowCounts(), plain.rowCounts()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, rp := c.req(fc), c.req(fp)
			gotC := citus.do(rc.method, rc.path, "acme", rc.body)
			gotP := plain.do(rp.method, rp.path, "acme", rp.body)
			if gotC.status != gotP.status || gotC.status < 400 {
				t.Fatalf("Citus %s, plain %s", gotC, gotP)
			}
			jsonEqual(t, c.name+" (Citus against plain)", gotC.body, string(gotP.body))
			if c.want != "" {
				jsonEqual(t, c.name+" (Citus)", gotC.body, c.want)
			}
			if m := shardNameRE.Find(gotC.body); m != nil {
				t.Errorf("Citus body %s names a shard (%s)", gotC.body, m)
			}
		})
	}
	if got := citus.rowCounts(); got != beforeC {
		t.Fatalf("refused writes changed rows on Citus:\n%s\n%s", beforeC, got)
	}
	if got := plain.rowCounts(); got != beforeP {
		t.Fatalf("refused writes changed rows on plain:\n%s\n%s", beforeP, got)
	}
	// globex, on its own node or not, kept its one product.
	if r := citus.must(200, "GET", "/api/globex/product/products/", "globex", ""); r["count"] != float64(1) {
		t.Fatalf("globex's products on Citus: %v", r)
	}
}
