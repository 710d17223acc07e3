package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"

	"github.com/erpctl/erpctl/controlplane"
)

// apiEnv is a control plane with tenants acme and globex (every module), a token for each, and
// the data API over it.
type apiEnv struct {
	*cptest.Env
	h    *api.Handler
	doc  *api.Handler      // serves the OpenAPI document to checkResponse, out of h's access log
	tok  map[string]string // tenant → secret
	name map[string]string // tenant → token name
}

func newAPIEnv(t *testing.T, o api.Config) *apiEnv {
	t.Helper()
	return newAPIEnvOn(t, cptest.New(t), o)
}

// newAPIEnvOn is newAPIEnv on the control plane e (behind PgBouncer, or on Citus, say).
func newAPIEnvOn(t *testing.T, e *cptest.Env, o api.Config) *apiEnv {
	t.Helper()
	e.Create("acme")
	e.Create("globex")
	a := &apiEnv{Env: e, tok: map[string]string{}, name: map[string]string{}}
	for _, slug := range []string{"acme", "globex"} {
		a.name[slug] = slug + "-bot"
		_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(slug), a.name[slug])
		if err != nil {
			t.Fatal(err)
		}
		a.tok[slug] = secret
	}
	a.h = newHandler(e.P, o)
	a.doc = newHandler(e.P, api.Config{})
	return a
}

// newHandler is the data API over p, as the daemon mounts it: on the pool of the data API's own
// role, so that every test of the API runs with its privileges only. ERPCTL_BENCH_OWN_POOL=1
// puts it on the control plane's pool instead, to measure what the role costs.
func newHandler(p *controlplane.Plane, cfg api.Config) *api.Handler {
	db, err := p.APIDB(context.Background())
	if os.Getenv("ERPCTL_BENCH_OWN_POOL") != "" {
		db = p.Pool()
	}
	if err != nil {
		panic(err)
	}
	cfg.Plane, cfg.DB = p, db
	return api.New(cfg)
}

type apiResp struct {
	status int
	hdr    http.Header
	body   []byte
}

func (r apiResp) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// obj decodes the body as a JSON object.
func (r apiResp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %s: not a JSON object: %v", r, err)
	}
	return m
}

// do sends a request with the tenant's token ("" for none, or a raw secret starting "raw:").
// A non-empty body is JSON unless a "Content-Type" header is given in hdrs (name, value, ...).
// Every answer is checked against the OpenAPI document (see checkResponse).
func (a *apiEnv) do(method, path, tenant, body string, hdrs ...string) apiResp {
	a.T.Helper()
	resp := doWith(a.h, method, path, a.auth(tenant), body, hdrs...)
	checkResponse(a.T, a.doc, httptest.NewRequest(method, "http://example.com"+path, nil), resp)
	return resp
}

func (a *apiEnv) auth(tenant string) string {
	switch {
	case tenant == "":
		return ""
	case strings.HasPrefix(tenant, "raw:"):
		return strings.TrimPrefix(tenant, "raw:")
	}
	return "Bearer " + a.tok[tenant]
}

func doWith(h http.Handler, method, path, auth, body string, hdrs ...string) apiResp {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://example.com"+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdrs); i += 2 {
		if hdrs[i] == "Host" {
			req.Host = hdrs[i+1]
			continue
		}
		req.Header.Set(hdrs[i], hdrs[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return apiResp{status: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
}

// must checks the status and returns the decoded object.
func (a *apiEnv) must(status int, method, path, tenant, body string) map[string]any {
	a.T.Helper()
	r := a.do(method, path, tenant, body)
	if r.status != status {
		a.T.Fatalf("%s %s: %s, want %d", method, path, r, status)
	}
	if status == http.StatusNoContent {
		return nil
	}
	return r.obj(a.T)
}

func jsonEqual(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: body %q is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s: body %s, want %s", what, got, want)
	}
}

const (
	productsURL   = "/api/acme/product/products/"
	categoriesURL = "/api/acme/product/categories/"
	warehousesURL = "/api/acme/inventory/warehouses/"
	stockURL      = "/api/acme/inventory/stock-items/"
)

func idOf(t *testing.T, m map[string]any) int64 {
	t.Helper()
	id, ok := m["id"].(float64)
	if !ok {
		t.Fatalf("no numeric id in %v", m)
	}
	return int64(id)
}

func TestAPICreateReadUpdateDelete(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	cat := a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`)
	catID := idOf(t, cat)

	// Create: read-only fields are ignored, the server sets them; numbers become decimal strings.
	r := a.do("POST", productsURL, "acme", fmt.Sprintf(`{"sku": "HAM-1", "name": "Hammer", "price": 9.5,
		"category_id": %d, "id": 999, "created_by": "mallory", "updated_by": "mallory",
		"created_at": "1999-01-01T00:00:00Z", "updated_at": "1999-01-01T00:00:00Z"}`, catID))
	if r.status != 201 {
		t.Fatalf("create: %s", r)
	}
	p := r.obj(t)
	id := idOf(t, p)
	if id == 999 || p["price"] != "9.50" || p["created_by"] != "acme-bot" || p["updated_by"] != "acme-bot" ||
		p["description"] != nil || p["category_id"] != float64(catID) || p["sku"] != "HAM-1" {
		t.Fatalf("created: %s", r.body)
	}
	if want := fmt.Sprintf("http://example.com%s%d/", productsURL, id); r.hdr.Get("Location") != want {
		t.Errorf("Location %q, want %q", r.hdr.Get("Location"), want)
	}
	created, err := time.Parse(time.RFC3339Nano, p["created_at"].(string))
	if err != nil || time.Since(created) > time.Minute || !strings.HasSuffix(p["created_at"].(string), "Z") {
		t.Fatalf("created_at %v: %v", p["created_at"], err)
	}
	// Columns come in declared order.
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip any
		dec.Decode(&skip)
	}
	if want := []string{"id", "sku", "name", "description", "price", "category_id", "created_at", "updated_at", "created_by", "updated_by"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if r.hdr.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.hdr.Get("Content-Type"))
	}

	detail := fmt.Sprintf("%s%d/", productsURL, id)
	got := a.must(200, "GET", detail, "acme", "")
	if got["sku"] != "HAM-1" || got["price"] != "9.50" {
		t.Fatalf("get: %v", got)
	}
	// Numbers as strings are taken too.
	if p := a.must(201, "POST", productsURL, "acme", `{"sku": "SAW-1", "name": "Saw", "price": "12"}`); p["price"] != "12.00" {
		t.Fatalf("price %v", p["price"])
	}
	if p := a.must(201, "POST", productsURL, "acme", `{"sku": "NUT-1", "name": "Nut"}`); p["price"] != "0.00" {
		t.Fatalf("default price %v", p["price"])
	}

	// PATCH any subset; updated_at moves, created_at and created_by do not; updated_by is the caller.
	_, secret2, err := a.P.CreateToken(a.Ctx, ident.MustParseSlug("acme"), "second-bot")
	if err != nil {
		t.Fatal(err)
	}
	r = doWith(a.h, "PATCH", detail, "Bearer "+secret2, `{"price": "10.25", "created_by": "x", "id": 5}`)
	if r.status != 200 {
		t.Fatalf("patch: %s", r)
	}
	u := r.obj(t)
	if u["price"] != "10.25" || u["name"] != "Hammer" || u["created_by"] != "acme-bot" || u["updated_by"] != "second-bot" ||
		u["created_at"] != got["created_at"] || u["updated_at"] == got["updated_at"] || idOf(t, u) != id {
		t.Fatalf("patched: %s (before %v)", r.body, got)
	}
	// PUT needs every required field; the others it leaves as they are.
	r = a.do("PUT", detail, "acme", `{"name": "Big hammer"}`)
	if r.status != 400 {
		t.Fatalf("PUT without sku: %s", r)
	}
	jsonEqual(t, "PUT without sku", r.body, `{"sku": ["This field is required."]}`)
	u = a.must(200, "PUT", detail, "acme", `{"sku": "HAM-2", "name": "Big hammer", "category_id": null}`)
	if u["sku"] != "HAM-2" || u["name"] != "Big hammer" || u["category_id"] != nil || u["price"] != "10.25" {
		t.Fatalf("put: %v", u)
	}
	// DELETE, then it is gone.
	if r := a.do("DELETE", detail, "acme", ""); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("delete: %s", r)
	}
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE"} {
		r := a.do(m, detail, "acme", `{"sku": "Z", "name": "Z"}`)
		if r.status != 404 {
			t.Errorf("%s after delete: %s", m, r)
		}
		jsonEqual(t, m+" after delete", r.body, `{"detail": "Not found."}`)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products`); n != 2 {
		t.Fatalf("%d products in acme", n)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.products`); n != 0 {
		t.Fatalf("%d products in globex", n)
	}
	// The tenant's resource list.
	r = a.do("GET", "/api/acme/", "acme", "")
	jsonEqual(t, "root", r.body, `{
		"product/categories": "http://example.com/api/acme/product/categories/",
		"product/products": "http://example.com/api/acme/product/products/",
		"inventory/warehouses": "http://example.com/api/acme/inventory/warehouses/",
		"inventory/stock-items": "http://example.com/api/acme/inventory/stock-items/"}`)
	// A missing trailing slash is redirected (by http.ServeMux, 307: the method stays).
	if r := a.do("GET", "/api/acme/product/products?limit=1", "acme", ""); r.status != 307 || r.hdr.Get("Location") != productsURL+"?limit=1" {
		t.Errorf("no trailing slash: %s %v", r, r.hdr)
	}
	if r := a.do("GET", "/nothing/here", "acme", ""); r.status != 404 {
		t.Errorf("unknown path: %s", r)
	} else {
		jsonEqual(t, "unknown path", r.body, `{"detail": "Not found."}`)
	}
}

// rowCounts counts the rows of every table of both tenants.
func (a *apiEnv) rowCounts() string {
	a.T.Helper()
	var parts []string
	for _, s := range []string{"tenant_acme", "tenant_globex"} {
		for _, tb := range []string{"categories", "products", "warehouses", "stock_items"} {
			parts = append(parts, fmt.Sprintf("%s.%s=%d", s, tb, a.Count(`SELECT count(*) FROM `+s+`.`+tb)))
		}
	}
	return strings.Join(parts, " ")
}

func TestAPIBadRequests(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{MaxBody: 4096})
	a.Create("initech", "product")
	_, initechTok, err := a.P.CreateToken(a.Ctx, ident.MustParseSlug("initech"), "bot")
	if err != nil {
		t.Fatal(err)
	}
	a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`)
	prod := idOf(t, a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil", "price": "100.00"}`))
	a.must(201, "POST", productsURL, "acme", `{"sku": "B-1", "name": "Bolt"}`)
	wh := idOf(t, a.must(201, "POST", warehousesURL, "acme", `{"code": "W1", "name": "Main"}`))
	wh2 := idOf(t, a.must(201, "POST", warehousesURL, "acme", `{"code": "W2", "name": "Spare"}`))
	a.must(201, "POST", stockURL, "acme", fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": 3}`, prod, wh))
	a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "A-1", "name": "Globex anvil"}`)
	prodURL := fmt.Sprintf("%s%d/", productsURL, prod)

	notFound := `{"detail": "Not found."}`
	cases := []struct {
		name, method, path, tenant, body string
		hdrs                             []string
		status                           int
		want                             string // exact JSON, or "" to check only the keys in wantKeys
		wantKeys                         []string
		allow                            string
	}{
		{name: "missing required", method: "POST", path: productsURL, tenant: "acme", body: `{"description": "x"}`, status: 400,
			want: `{"sku": ["This field is required."], "name": ["This field is required."]}`},
		{name: "empty body", method: "POST", path: productsURL, tenant: "acme", status: 400,
			want: `{"sku": ["This field is required."], "name": ["This field is required."]}`},
		{name: "null on non-null", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": null}`, status: 400,
			want: `{"name": ["This field may not be null."]}`},
		{name: "bad decimal", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "price": "abc"}`, status: 400,
			want: `{"price": ["A valid number is required."]}`},
		{name: "decimal places", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "price": "9.999"}`, status: 400,
			want: `{"price": ["Ensure that there are no more than 2 decimal places."]}`},
		{name: "decimal digits", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "price": 12345678901}`, status: 400,
			want: `{"price": ["Ensure that there are no more than 10 digits before the decimal point."]}`},
		{name: "decimal NaN", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "price": "NaN"}`, status: 400,
			want: `{"price": ["A valid number is required."]}`},
		{name: "string for text is fine but object is not", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": {"a": 1}, "name": "N"}`, status: 400,
			want: `{"sku": ["Not a valid string."]}`},
		{name: "null character", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N\u0000", "name": "N"}`, status: 400,
			want: `{"sku": ["Null characters are not allowed."]}`},
		{name: "fk wrong type", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "category_id": "x"}`, status: 400,
			want: `{"category_id": ["Incorrect type. Expected pk value, received str."]}`},
		{name: "fk missing row", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1", "name": "N", "category_id": 99}`, status: 400,
			want: `{"category_id": ["Invalid pk \"99\" - object does not exist."]}`},
		{name: "fk to a missing warehouse", method: "POST", path: stockURL, tenant: "acme",
			body: fmt.Sprintf(`{"product_id": %d, "warehouse_id": 77, "quantity": 1}`, prod), status: 400,
			want: `{"warehouse_id": ["Invalid pk \"77\" - object does not exist."]}`},
		{name: "unique", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "A-1", "name": "Again"}`, status: 400,
			want: `{"sku": ["product with this sku already exists."]}`},
		{name: "unique on patch", method: "PATCH", path: prodURL, tenant: "acme", body: `{"sku": "B-1"}`, status: 400,
			want: `{"sku": ["product with this sku already exists."]}`},
		{name: "unique together", method: "POST", path: stockURL, tenant: "acme",
			body: fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d}`, prod, wh), status: 400,
			want: `{"non_field_errors": ["The fields product_id, warehouse_id must make a unique set."]}`},
		{name: "check constraint", method: "POST", path: stockURL, tenant: "acme",
			body: fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": -1}`, prod, wh2), status: 400,
			want: `{"quantity": ["Ensure this value is greater than or equal to 0."]}`},
		{name: "integer range", method: "POST", path: stockURL, tenant: "acme",
			body: fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": 1099511627776}`, prod, wh), status: 400,
			want: `{"quantity": ["Ensure this value is less than or equal to 2147483647."]}`},
		{name: "integer type", method: "POST", path: stockURL, tenant: "acme",
			body: fmt.Sprintf(`{"product_id": %d, "warehouse_id": %d, "quantity": 1.5}`, prod, wh), status: 400,
			want: `{"quantity": ["A valid integer is required."]}`},
		{name: "malformed JSON", method: "POST", path: productsURL, tenant: "acme", body: `{"sku": "N-1",`, status: 400, wantKeys: []string{"detail"}},
		{name: "not an object", method: "POST", path: productsURL, tenant: "acme", body: `[1, 2]`, status: 400,
			want: `{"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}`},
		{name: "media type", method: "POST", path: productsURL, tenant: "acme", body: `sku=N-1`, hdrs: []string{"Content-Type", "text/plain"},
			status: 415, want: `{"detail": "Unsupported media type \"text/plain\" in request."}`},
		{name: "too large", method: "POST", path: productsURL, tenant: "acme",
			body: `{"sku": "N-1", "name": "` + strings.Repeat("n", 5000) + `"}`, status: 413, wantKeys: []string{"detail"}},
		{name: "PUT lacks a required field", method: "PUT", path: prodURL, tenant: "acme", body: `{"sku": "A-2"}`, status: 400,
			want: `{"name": ["This field is required."]}`},
		{name: "PUT on a missing object is a 404 first", method: "PUT", path: productsURL + "999/", tenant: "acme", body: `{"bad": 1}`,
			status: 404, want: notFound},
		{name: "PATCH bad JSON on a missing object", method: "PATCH", path: productsURL + "999/", tenant: "acme", body: `{`,
			status: 404, want: notFound},
		{name: "delete a referenced row", method: "DELETE", path: prodURL, tenant: "acme", status: 409, wantKeys: []string{"detail"}},
		{name: "PUT on a collection", method: "PUT", path: productsURL, tenant: "acme", body: `{}`, status: 405,
			want: `{"detail": "Method \"PUT\" not allowed."}`, allow: "GET, POST, HEAD, OPTIONS"},
		{name: "POST on an object", method: "POST", path: prodURL, tenant: "acme", body: `{}`, status: 405,
			want: `{"detail": "Method \"POST\" not allowed."}`, allow: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"},
		{name: "DELETE on the root", method: "DELETE", path: "/api/acme/", tenant: "acme", status: 405,
			want: `{"detail": "Method \"DELETE\" not allowed."}`, allow: "GET, HEAD, OPTIONS"},
		{name: "bad limit", method: "GET", path: productsURL + "?limit=abc", tenant: "acme", status: 400, wantKeys: []string{"limit"}},
		{name: "negative offset", method: "GET", path: productsURL + "?offset=-1", tenant: "acme", status: 400, wantKeys: []string{"offset"}},
		{name: "bad filter value", method: "GET", path: productsURL + "?price__gt=abc", tenant: "acme", status: 400,
			want: `{"price__gt": ["A valid number is required."]}`},
		{name: "contains on a number", method: "GET", path: productsURL + "?price__contains=1", tenant: "acme", status: 400, wantKeys: []string{"price__contains"}},
		{name: "bad isnull", method: "GET", path: productsURL + "?description__isnull=maybe", tenant: "acme", status: 400, wantKeys: []string{"description__isnull"}},
		{name: "repeated parameter", method: "GET", path: productsURL + "?sku=a&sku=b", tenant: "acme", status: 400, wantKeys: []string{"sku"}},
		{name: "malformed query", method: "GET", path: productsURL + "?sku=%zz", tenant: "acme", status: 400, wantKeys: []string{"detail"}},
		{name: "unknown module", method: "GET", path: "/api/acme/nope/products/", tenant: "acme", status: 404, want: notFound},
		{name: "unknown resource", method: "GET", path: "/api/acme/product/nope/", tenant: "acme", status: 404, want: notFound},
		{name: "table name instead of resource", method: "GET", path: "/api/acme/inventory/stock_items/", tenant: "acme", status: 404, want: notFound},
		{name: "module not enabled", method: "GET", path: "/api/initech/inventory/warehouses/", tenant: "raw:Bearer " + initechTok, status: 404, want: notFound},
		{name: "bad id", method: "GET", path: productsURL + "abc/", tenant: "acme", status: 404, want: notFound},
		{name: "zero id", method: "DELETE", path: productsURL + "0/", tenant: "acme", status: 404, want: notFound},
		{name: "huge id", method: "GET", path: productsURL + "99999999999999999999/", tenant: "acme", status: 404, want: notFound},
	}
	before := a.rowCounts()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(c.method, c.path, c.tenant, c.body, c.hdrs...)
			if r.status != c.status {
				t.Fatalf("%s %s: %s, want %d", c.method, c.path, r, c.status)
			}
			if r.hdr.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.hdr.Get("Content-Type"))
			}
			if c.want != "" {
				jsonEqual(t, c.name, r.body, c.want)
			}
			m := r.obj(t)
			for _, k := range c.wantKeys {
				v, ok := m[k]
				if !ok || len(m) != 1 {
					t.Errorf("body %s: want only key %q", r.body, k)
				}
				if k == "detail" {
					if _, ok := v.(string); !ok {
						t.Errorf("detail %v is not a string", v)
					}
				} else if l, ok := v.([]any); !ok || len(l) == 0 {
					t.Errorf("%q: %v is not a list of messages", k, v)
				}
			}
			if c.allow != "" && r.hdr.Get("Allow") != c.allow {
				t.Errorf("Allow %q, want %q", r.hdr.Get("Allow"), c.allow)
			}
			if after := a.rowCounts(); after != before {
				t.Fatalf("rows changed:\n%s\n%s", before, after)
			}
		})
	}
	// The refused writes left the rows as they were.
	if p := a.must(200, "GET", prodURL, "acme", ""); p["sku"] != "A-1" || p["name"] != "Anvil" {
		t.Errorf("product changed: %v", p)
	}
	r := a.do("POST", productsURL, "acme", `{"sku": "N-1", "name": "N", "price": "x"}`)
	if strings.Contains(string(r.body), "tenant_acme") {
		t.Errorf("error names the schema: %s", r)
	}
	r = a.do("POST", productsURL, "acme", `{"sku": "N-1",`)
	if d, _ := r.obj(t)["detail"].(string); !strings.HasPrefix(d, "JSON parse error - ") {
		t.Errorf("malformed JSON: %s", r)
	}
}

func TestAPIAuthentication(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.must(201, "POST", "/api/acme/product/categories/", "acme", `{"name": "Tools"}`)
	revoked, revokedSecret, err := a.P.CreateToken(a.Ctx, ident.MustParseSlug("acme"), "old")
	if err != nil {
		t.Fatal(err)
	}
	if r := a.do("GET", productsURL, "raw:Bearer "+revokedSecret, ""); r.status != 200 {
		t.Fatalf("before revoke: %s", r)
	}
	if err := a.P.RevokeToken(a.Ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	a.h.ForgetTokens() // what the daemon does when it hears the revocation
	unauth := []struct{ name, auth, want string }{
		{"no header", "", "Authentication credentials were not provided."},
		{"other scheme", "raw:Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Authentication credentials were not provided."},
		{"empty bearer", "raw:Bearer ", "Invalid token."},
		{"wrong token", "raw:Bearer erp_nottherightone", "Invalid token."},
		{"revoked token (once heard)", "raw:Bearer " + revokedSecret, "Invalid token."},
		{"two words", "raw:Bearer " + a.tok["acme"] + " x", "Invalid token."},
	}
	for _, c := range unauth {
		for _, path := range []string{"/api/acme/", productsURL, productsURL + "1/", "/api/nosuch/product/products/"} {
			r := a.do("GET", path, c.auth, "")
			if r.status != 401 || !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s, %s: %s %v", c.name, path, r, r.hdr)
				continue
			}
			jsonEqual(t, c.name, r.body, fmt.Sprintf(`{"detail": %q}`, c.want))
		}
	}
	// Case-insensitive scheme.
	if r := a.do("GET", productsURL, "raw:bearer "+a.tok["acme"], ""); r.status != 200 {
		t.Errorf("lowercase bearer: %s", r)
	}
	// A token on another tenant's URL looks exactly like a tenant that does not exist.
	ref := a.do("GET", "/api/nosuch/product/categories/", "acme", "")
	if ref.status != 404 {
		t.Fatalf("missing tenant: %s", ref)
	}
	jsonEqual(t, "missing tenant", ref.body, `{"detail": "Not found."}`)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/globex/", ""},
		{"GET", "/api/globex/product/categories/", ""},
		{"GET", "/api/globex/product/categories/1/", ""},
		{"POST", "/api/globex/product/categories/", `{"name": "Sneaky"}`},
		{"PATCH", "/api/globex/product/categories/1/", `{"name": "Sneaky"}`},
		{"DELETE", "/api/globex/product/categories/1/", ""},
		{"OPTIONS", "/api/globex/product/categories/", ""},
		{"GET", "/api/Globex/product/categories/", ""},
		{"GET", "/api/glo%2Fbex/product/categories/", ""},
		{"GET", "/api/pg-x/", ""},
	} {
		r := a.do(c.method, c.path, "acme", c.body)
		if r.status != 404 || !bytes.Equal(r.body, ref.body) || r.hdr.Get("WWW-Authenticate") != "" {
			t.Errorf("%s %s with acme's token: %s, want the same 404 as a missing tenant", c.method, c.path, r)
		}
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.categories`); n != 0 {
		t.Fatalf("globex has %d categories", n)
	}
	// Invalid slugs are 404 before any lookup, token or not.
	for _, p := range []string{"/api/ACME/", "/api/a--b/", "/api/public/", "/api/x/"} {
		if r := a.do("GET", p, "", ""); r.status != 404 {
			t.Errorf("%s: %s", p, r)
		}
	}
	// A deleted tenant's token stops working (its tokens go with it).
	if err := a.P.DeleteTenant(a.Ctx, ident.MustParseSlug("globex")); err != nil {
		t.Fatal(err)
	}
	fresh := newHandler(a.P, api.Config{})
	if r := doWith(fresh, "GET", "/api/globex/", "Bearer "+a.tok["globex"], ""); r.status != 401 {
		t.Errorf("token of a deleted tenant: %s", r)
	}
}

func TestAPIListPaginationFiltersOrdering(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	cat := idOf(t, a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`))
	for i := 1; i <= 25; i++ {
		body := fmt.Sprintf(`{"sku": "P-%02d", "name": "Product %d", "price": "%d.%02d"}`, i, i%5, 30-i, i)
		if i%3 == 0 {
			body = fmt.Sprintf(`{"sku": "P-%02d", "name": "Product %d", "price": "%d.%02d", "category_id": %d, "description": "tri %d"}`, i, i%5, 30-i, i, cat, i)
		}
		a.must(201, "POST", productsURL, "acme", body)
	}
	a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "P-01", "name": "Globex"}`)

	list := func(query string) (map[string]any, []map[string]any) {
		t.Helper()
		m := a.must(200, "GET", productsURL+query, "acme", "")
		var rows []map[string]any
		for _, r := range m["results"].([]any) {
			rows = append(rows, r.(map[string]any))
		}
		return m, rows
	}
	skus := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r["sku"].(string))
		}
		return out
	}

	m, rows := list("")
	if m["count"] != float64(25) || len(rows) != 25 || m["next"] != nil || m["previous"] != nil {
		t.Fatalf("default page: count %v, %d rows, next %v, previous %v", m["count"], len(rows), m["next"], m["previous"])
	}
	m, rows = list("?limit=10")
	base := "http://example.com" + productsURL
	if m["count"] != float64(25) || len(rows) != 10 || m["next"] != base+"?limit=10&offset=10" || m["previous"] != nil || rows[0]["sku"] != "P-01" {
		t.Fatalf("first page: %v %v %v", m["count"], m["next"], m["previous"])
	}
	m, rows = list("?limit=10&offset=10")
	if m["next"] != base+"?limit=10&offset=20" || m["previous"] != base+"?limit=10" || rows[0]["sku"] != "P-11" {
		t.Fatalf("second page: %v %v", m["next"], m["previous"])
	}
	m, rows = list("?limit=10&offset=20")
	if m["next"] != nil || m["previous"] != base+"?limit=10&offset=10" || len(rows) != 5 {
		t.Fatalf("last page: %v %v %d", m["next"], m["previous"], len(rows))
	}
	m, rows = list("?offset=100")
	if m["count"] != float64(25) || len(rows) != 0 || m["previous"] != base+"?limit=50&offset=50" {
		t.Fatalf("past the end: %v %d %v", m["count"], len(rows), m["previous"])
	}
	m, _ = list("?limit=5000")
	if len(m["results"].([]any)) != 25 {
		t.Fatal("limit above the maximum")
	}
	// Following next keeps the filters.
	m, _ = list("?limit=2&ordering=-price&category_id=" + strconv.FormatInt(cat, 10))
	next, _ := url.Parse(m["next"].(string))
	if next.Query().Get("ordering") != "-price" || next.Query().Get("category_id") == "" || next.Query().Get("offset") != "2" {
		t.Fatalf("next %v", m["next"])
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"?sku=P-07", []string{"P-07"}},
		{"?sku__exact=P-07", []string{"P-07"}},
		{"?sku__in=P-01,P-03,NOPE", []string{"P-01", "P-03"}},
		{"?id__in=1,2", []string{"P-01", "P-02"}},
		{"?price__gt=26.04", []string{"P-01", "P-02", "P-03"}},
		{"?price__gte=26.04", []string{"P-01", "P-02", "P-03", "P-04"}},
		{"?price__lt=6&price__gte=5", []string{"P-25"}},
		{"?price__lte=5.25", []string{"P-25"}},
		{"?price=29.01", []string{"P-01"}},
		{"?price__in=29.01,28.02", []string{"P-01", "P-02"}},
		{"?name__contains=uct%204&sku__in=P-04,P-09,P-14", []string{"P-04", "P-09", "P-14"}},
		{"?name__contains=%25", nil},
		{"?name__contains=_", nil},
		{"?description__isnull=false", []string{"P-03", "P-06", "P-09", "P-12", "P-15", "P-18", "P-21", "P-24"}},
		{"?description__isnull=true&sku__lte=P-03", []string{"P-01", "P-02"}},
		{"?category_id=" + strconv.FormatInt(cat, 10) + "&price__lt=15", []string{"P-18", "P-21", "P-24"}},
		{"?created_by=acme-bot&sku=P-05", []string{"P-05"}},
		{"?created_by=globex-bot", nil},
		{"?created_at__gt=2000-01-01T00:00:00Z&sku=P-02", []string{"P-02"}},
		{"?updated_at__lt=2000-01-01T00:00:00Z", nil},
		{"?id=1&ordering=-id", []string{"P-01"}},
	}
	for _, f := range filters {
		m, rows := list(f.query + "&limit=1000")
		if got := skus(rows); !slices.Equal(got, f.want) || m["count"] != float64(len(f.want)) {
			t.Errorf("%s: %v (count %v), want %v", f.query, got, m["count"], f.want)
		}
	}
	orderings := []struct {
		query string
		want  []string
	}{
		{"?ordering=-price&limit=3", []string{"P-01", "P-02", "P-03"}},
		{"?ordering=price&limit=3", []string{"P-25", "P-24", "P-23"}},
		{"?ordering=-id&limit=2", []string{"P-25", "P-24"}},
		{"?ordering=name,-sku&limit=6", []string{"P-25", "P-20", "P-15", "P-10", "P-05", "P-21"}},
		{"?ordering=description&description__isnull=false&limit=3", []string{"P-12", "P-15", "P-18"}},
	}
	for _, o := range orderings {
		if _, rows := list(o.query); !slices.Equal(skus(rows), o.want) {
			t.Errorf("%s: %v, want %v", o.query, skus(rows), o.want)
		}
	}
	// Injection attempts in names and values are refused or bound.
	for _, q := range []string{`?ordering=name;drop table x`, `?ordering="name"`, `?name"=1`, `?sku__in=1')--`} {
		r := a.do("GET", productsURL+strings.ReplaceAll(url.PathEscape(q), "%3F", "?"), "acme", "")
		if r.status != 400 && r.status != 200 {
			t.Errorf("%s: %s", q, r)
		}
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products`); n != 25 {
		t.Fatalf("%d products", n)
	}
}

func TestAPIOptionsAndOpenAPI(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	r := a.do("OPTIONS", productsURL, "acme", "")
	if r.status != 200 || r.hdr.Get("Allow") != "GET, POST, HEAD, OPTIONS" {
		t.Fatalf("OPTIONS: %s %v", r, r.hdr)
	}
	m := r.obj(t)
	if m["name"] != "Products List" || !reflect.DeepEqual(m["renders"], []any{"application/json"}) ||
		!reflect.DeepEqual(m["parses"], []any{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}) {
		t.Fatalf("metadata: %s", r.body)
	}
	if _, ok := m["description"].(string); !ok {
		t.Errorf("no description: %s", r.body)
	}
	fields := m["actions"].(map[string]any)["POST"].(map[string]any)
	want := map[string]string{
		"id":          `{"type": "integer", "required": false, "read_only": true, "label": "ID"}`,
		"sku":         `{"type": "string", "required": true, "read_only": false, "label": "Sku"}`,
		"description": `{"type": "string", "required": false, "read_only": false, "label": "Description"}`,
		"price":       `{"type": "decimal", "required": false, "read_only": false, "label": "Price", "max_digits": 12, "decimal_places": 2}`,
		"category_id": `{"type": "field", "required": false, "read_only": false, "label": "Category id"}`,
		"created_at":  `{"type": "datetime", "required": false, "read_only": true, "label": "Created at"}`,
		"updated_by":  `{"type": "string", "required": false, "read_only": true, "label": "Updated by"}`,
	}
	for k, w := range want {
		b, _ := json.Marshal(fields[k])
		jsonEqual(t, "field "+k, b, w)
	}
	if len(fields) != 10 {
		t.Errorf("%d fields: %v", len(fields), fields)
	}
	r = a.do("OPTIONS", "/api/acme/inventory/stock-items/", "acme", "")
	q := r.obj(t)["actions"].(map[string]any)["POST"].(map[string]any)["quantity"].(map[string]any)
	if q["type"] != "integer" || q["required"] != false || q["max_value"] != float64(2147483647) {
		t.Errorf("quantity: %v", q)
	}
	// On an object: the PUT fields, when it exists.
	id := idOf(t, a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`))
	r = a.do("OPTIONS", fmt.Sprintf("%s%d/", categoriesURL, id), "acme", "")
	if r.status != 200 || r.obj(t)["name"] != "Categories Instance" || r.obj(t)["actions"].(map[string]any)["PUT"] == nil {
		t.Errorf("OPTIONS on an object: %s", r)
	}
	if r := a.do("OPTIONS", productsURL, "", ""); r.status != 401 {
		t.Errorf("OPTIONS without a token: %s", r)
	}

	// openapi.json needs no token and describes every resource.
	r = a.do("GET", "/api/openapi.json", "", "")
	if r.status != 200 || r.hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %d %v", r.status, r.hdr)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
		Comp    struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
				Required   []string                  `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("openapi does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for _, p := range []string{"product/categories", "product/products", "inventory/warehouses", "inventory/stock-items"} {
		coll, item := "/api/{tenant}/"+p+"/", "/api/{tenant}/"+p+"/{id}/"
		for _, op := range []string{"get", "post"} {
			if doc.Paths[coll][op] == nil {
				t.Errorf("openapi lacks %s %s", op, coll)
			}
		}
		for _, op := range []string{"get", "put", "patch", "delete"} {
			if doc.Paths[item][op] == nil {
				t.Errorf("openapi lacks %s %s", op, item)
			}
		}
	}
	// The row as answered has every field; the body a POST takes only the writable ones.
	prod := doc.Comp.Schemas["ProductProducts"]
	if prod.Properties["price"]["type"] != "string" || prod.Properties["id"]["readOnly"] != true ||
		len(prod.Required) != len(prod.Properties) || prod.Properties["created_at"]["format"] != "date-time" {
		t.Errorf("products schema: %+v", prod)
	}
	req := doc.Comp.Schemas["ProductProductsRequest"]
	if !slices.Equal(req.Required, []string{"sku", "name"}) || req.Properties["id"] != nil || req.Properties["price"] == nil {
		t.Errorf("products request schema: %+v", req)
	}
	if _, ok := doc.Comp.Schemas["InventoryStockItems"]; !ok {
		t.Errorf("no InventoryStockItems schema")
	}
	if r := a.do("POST", "/api/openapi.json", "", "{}"); r.status != 405 || r.hdr.Get("Allow") == "" {
		t.Errorf("POST openapi.json: %s", r)
	}
}

func TestAPITenantReadiness(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{ReadyWait: 30 * time.Second})
	a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil", "description": "heavy"}`)

	// A Pending tenant is reconciled on demand, then served.
	a.Exec(`UPDATE erpctl.tenants SET status = 'Pending' WHERE slug = 'acme'`)
	h := newHandler(a.P, api.Config{})
	if r := doWith(h, "GET", productsURL, a.auth("acme"), ""); r.status != 200 {
		t.Fatalf("pending tenant: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM erpctl.tenants WHERE slug = 'acme' AND status = 'Ready'`); n != 1 {
		t.Fatal("acme not Ready after the on-demand reconcile")
	}

	// The wait for a reconcile is bounded by ReadyWait: with the tenant's catalog row locked,
	// the reconcile cannot finish, and the request gives up with a 503.
	a.Exec(`UPDATE erpctl.tenants SET status = 'Pending' WHERE slug = 'acme'`)
	tx, err := a.DB.BeginTx(a.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT * FROM erpctl.tenants WHERE slug = 'acme' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	h = newHandler(a.P, api.Config{ReadyWait: 300 * time.Millisecond})
	began := time.Now()
	r := doWith(h, "GET", productsURL, a.auth("acme"), "")
	if r.status != 503 || r.hdr.Get("Retry-After") == "" || time.Since(began) > 5*time.Second {
		t.Fatalf("locked tenant: %s after %v", r, time.Since(began))
	}
	if r := doWith(h, "GET", "/api/globex/", a.auth("globex"), ""); r.status != 200 {
		t.Fatalf("globex while acme waits: %s", r)
	}
	tx.Rollback()
	h = newHandler(a.P, api.Config{})
	if r := doWith(h, "GET", productsURL, a.auth("acme"), ""); r.status != 200 {
		t.Fatalf("after the lock: %s", r)
	}

	// A tenant Blocked on its way to a newer generation still has every table of its own: it is
	// served as it is, at the generation it has applied.
	a.Exec(`UPDATE erpctl.tenants SET status = 'Blocked', status_reason = 'DestructiveChange', blocked_sql = 'DROP TABLE "tenant_acme"."x"' WHERE slug = 'acme'`)
	h = newHandler(a.P, api.Config{})
	if r := doWith(h, "GET", productsURL, a.auth("acme"), ""); r.status != 200 {
		t.Fatalf("blocked tenant: %s", r)
	}
	if r := doWith(h, "GET", "/api/globex/product/products/", a.auth("globex"), ""); r.status != 200 {
		t.Fatalf("globex while acme is blocked: %s", r)
	}
	a.Exec(`UPDATE erpctl.tenants SET status = 'Ready', status_reason = 'UpToDate', blocked_sql = NULL WHERE slug = 'acme'`)

	// A generation that adds a column is served to a tenant once it has applied it, not before.
	a.WriteModule("product", strings.Replace(cptest.BuiltinSource(t, "product"), `  column "price" {`,
		"  column \"color\" {\n    type = text\n    null = true\n  }\n  column \"price\" {", 1))
	// (Not checked against the OpenAPI document, which describes the latest generation.)
	if r := doWith(a.h, "POST", productsURL, a.auth("acme"), `{"sku": "C-0", "name": "Chalk", "color": "white"}`); r.status != 201 ||
		strings.Contains(string(r.body), "color") {
		t.Fatalf("new column served before the tenant applied it: %s", r)
	}
	a.ReconcileAll()
	p := a.must(201, "POST", productsURL, "acme", `{"sku": "C-1", "name": "Crayon", "color": "red"}`)
	if p["color"] != "red" {
		t.Fatalf("new column: %v", p)
	}
	// One that drops a column blocks the tenant, which keeps answering at the generation it has,
	// the column included; nothing changes.
	src := cptest.BuiltinSource(t, "product")
	start := strings.Index(src, `  column "description" {`)
	end := start + strings.Index(src[start:], "}\n") + 2
	src = src[:start] + src[end:]
	a.WriteModule("product", src)
	if pass, err := a.P.ReconcileAll(a.Ctx, controlplane.ReconcileOptions{}); err != nil || pass.Result("acme").Action != controlplane.ActionBlocked {
		t.Fatalf("pass with a drop: %+v %v", pass, err)
	}
	r = doWith(a.h, "GET", productsURL+"?description=heavy", a.auth("acme"), "")
	if r.status != 200 || !strings.Contains(string(r.body), `"count":1`) || !strings.Contains(string(r.body), `"color":null`) {
		t.Fatalf("blocked by a drop: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products WHERE description = 'heavy'`); n != 1 {
		t.Fatal("the blocked change touched the data")
	}
}

func TestAPIAccessLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	a := newAPIEnv(t, api.Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil"}`)
	a.do("GET", productsURL+"?sku=secret-filter", "raw:Bearer wrong", "")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log: %s", buf.String())
	}
	var e struct {
		Method, Route, Tenant string
		Status                int
		Duration              float64
	}
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Method != "POST" || e.Route != "/api/{tenant}/{module}/{resource}/{$}" || e.Tenant != "acme" || e.Status != 201 || e.Duration <= 0 {
		t.Errorf("log line %s", lines[0])
	}
	if !strings.Contains(lines[1], `"status":401`) {
		t.Errorf("log line %s", lines[1])
	}
	for _, secret := range []string{a.tok["acme"], "wrong", "secret-filter"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

const kindsModule = `schema "tenant" {}

table "things" {
  schema = schema.tenant
  column "label" {
    type = varchar(5)
    null = false
  }
  column "flag" {
    type = boolean
    null = true
  }
  column "ratio" {
    type = double_precision
    null = true
  }
  column "small" {
    type = smallint
    null = true
  }
  column "born" {
    type = date
    null = true
  }
  column "seen" {
    type = timestamp
    null = true
  }
  column "meta" {
    type = jsonb
    null = true
  }
  column "uid" {
    type = uuid
    null = true
  }
  column "addr" {
    type = inet
    null = true
  }
  column "amount" {
    type = numeric
    null = true
  }
}
`

// TestAPIColumnKinds round-trips every kind of column through a module added at run time,
// which the tenants get on their next request.
func TestAPIColumnKinds(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("misc", kindsModule)
	const things = "/api/acme/misc/things/"
	r := a.do("POST", things, "acme", `{"label": "a", "flag": "yes", "ratio": 0.25, "small": "12", "born": "2024-02-29",
		"seen": "2024-03-01T10:00:00+02:00", "meta": {"k": [1, "two", null]}, "uid": "{6F9619FF-8B86-D011-B42D-00C04FC964FF}",
		"addr": "10.0.0.1", "amount": "123456789012345678901234567890.123456789"}`)
	if r.status != 201 {
		t.Fatalf("create: %s", r)
	}
	jsonEqual(t, "thing", r.body, fmt.Sprintf(`{"id": 1, "label": "a", "flag": true, "ratio": 0.25, "small": 12, "born": "2024-02-29",
		"seen": "2024-03-01T08:00:00.000000", "meta": {"k": [1, "two", null]}, "uid": "6f9619ff-8b86-d011-b42d-00c04fc964ff",
		"addr": "10.0.0.1", "amount": "123456789012345678901234567890.123456789",
		"created_at": %q, "updated_at": %q, "created_by": "acme-bot", "updated_by": "acme-bot"}`,
		r.obj(t)["created_at"], r.obj(t)["updated_at"]))
	a.must(201, "POST", things, "acme", `{"label": "b", "flag": false, "small": -3, "born": "1999-12-31", "seen": "1999-12-31 23:59:59.5",
		"addr": "::1", "uid": "00000000000000000000000000000001"}`)
	a.must(201, "POST", "/api/globex/misc/things/", "globex", `{"label": "c"}`)
	bad := []struct{ body, field string }{
		{`{"label": "toolong"}`, "label"},
		{`{"label": "x", "flag": "maybe"}`, "flag"},
		{`{"label": "x", "ratio": "NaN"}`, "ratio"},
		{`{"label": "x", "small": 40000}`, "small"},
		{`{"label": "x", "born": "2024-02-30"}`, "born"},
		{`{"label": "x", "seen": "yesterday"}`, "seen"},
		{`{"label": "x", "uid": "nope"}`, "uid"},
		{`{"label": "x", "addr": "not-an-address"}`, "addr"},
		{`{"label": "x", "meta": {"a": "\u0000"}}`, "meta"},
		{`{"label": "x", "amount": "1e5000"}`, "amount"},
	}
	for _, b := range bad {
		r := a.do("POST", things, "acme", b.body)
		if r.status != 400 || r.obj(t)[b.field] == nil || len(r.obj(t)) != 1 {
			t.Errorf("%s: %s, want a 400 on %s", b.body, r, b.field)
		}
	}
	filters := []struct {
		query string
		want  int
	}{
		{"flag=true", 1}, {"flag=0", 1}, {"flag__isnull=true", 0}, {"ratio__gt=0.1", 1}, {"small__lt=0", 1},
		{"small__in=12,-3", 2}, {"born__gte=2000-01-01", 1}, {"seen__lt=2000-01-01T00:00:00Z", 1},
		{"seen__gt=2024-03-01T09:59:00%2B02:00", 1}, {"seen__gt=2024-03-01T09:59:00+02:00", 1},
		{"uid=6f9619ff8b86d011b42d00c04fc964ff", 1}, {"uid__in=00000000-0000-0000-0000-000000000001,6f9619ff-8b86-d011-b42d-00c04fc964ff", 2},
		{"addr=::1", 1}, {"addr__in=::1,10.0.0.1", 2}, {"meta__isnull=false", 1}, {"label__contains=b", 1},
		{"amount__gt=1e20", 1}, {"amount__in=123456789012345678901234567890.123456789,7", 1}, {"born__in=2024-02-29", 1},
		{"ordering=-born&limit=1", 2},
	}
	for _, f := range filters {
		m := a.must(200, "GET", things+"?"+f.query, "acme", "")
		if m["count"] != float64(f.want) {
			t.Errorf("%s: count %v, want %d", f.query, m["count"], f.want)
		}
	}
	// A JSON field is not ordered by (the term is dropped, as an unknown one), nor filtered.
	if m := a.must(200, "GET", things+"?ordering=meta", "acme", ""); m["count"] != float64(2) {
		t.Errorf("ordering=meta: %v", m)
	}
	for _, q := range []string{"meta=1", "meta__gt=1", "born=yesterday", "addr__contains=1"} {
		if r := a.do("GET", things+"?"+q, "acme", ""); r.status != 400 {
			t.Errorf("%s: %s", q, r)
		}
	}
	if r := a.do("GET", things+"?addr__gt=zzz", "acme", ""); r.status != 400 || r.obj(t)["addr__gt"] == nil {
		t.Errorf("bad inet filter: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.things`); n != 2 {
		t.Errorf("%d things in acme", n)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.things`); n != 1 {
		t.Errorf("%d things in globex", n)
	}
}

// The body is read to its Content-Length: one shorter than it says is refused and writes
// nothing; one of unknown length (chunked) is read to its end.
func TestAPIBodyLength(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{MaxBody: 4096})
	body := `{"sku": "L-1", "name": "Lever"}`
	post := func(length int64, rd io.Reader) apiResp {
		req := httptest.NewRequest("POST", "http://example.com"+productsURL, rd)
		req.ContentLength = length
		req.Header.Set("Authorization", a.auth("acme"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		return apiResp{status: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
	}
	before := a.rowCounts()
	if r := post(int64(len(body))+10, strings.NewReader(body)); r.status != 400 ||
		!strings.Contains(string(r.body), "Could not read the request body.") {
		t.Errorf("body shorter than its Content-Length: %s, want 400", r)
	}
	if r := post(5000, strings.NewReader(body)); r.status != 413 {
		t.Errorf("Content-Length over the limit: %s, want 413", r)
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("refused bodies changed rows:\n%s\n%s", before, after)
	}
	// Unknown length: io.MultiReader hides the size, as a chunked body does.
	if r := post(-1, io.MultiReader(strings.NewReader(body))); r.status != 201 {
		t.Fatalf("chunked body: %s, want 201", r)
	}
	if r := post(int64(len(body)), strings.NewReader(`{"sku": "L-2", "name": "Latch"}`)); r.status != 201 {
		t.Fatalf("body of its Content-Length: %s, want 201", r)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products WHERE sku IN ('L-1', 'L-2')`); n != 2 {
		t.Errorf("acme has %d of the 2 products", n)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.products`); n != 0 {
		t.Errorf("globex has %d products; the writes were acme's", n)
	}
}

// deploy writes and publishes a module, then reconciles every tenant to it: the API serves a
// tenant the generation it has applied.
func (a *apiEnv) deploy(name, src string) {
	a.T.Helper()
	a.WriteModule(name, src)
	a.ReconcileAll()
}
