package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/erpctl/erpctl/controlplane/api"
)

// openAPIRouters are the documents the tests met, validated and routed, by their text: a test
// that adds a module at run time gets a document of its own.
var openAPIRouters sync.Map // string → routers.Router

// openAPIRouter loads h's document, fails the test when kin-openapi finds it invalid, and
// returns a router over it.
func openAPIRouter(t testing.TB, h http.Handler) routers.Router {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://example.com/api/openapi.json", nil))
	text := rec.Body.String()
	if r, ok := openAPIRouters.Load(text); ok {
		return r.(routers.Router)
	}
	doc, err := openapi3.NewLoader().LoadFromData([]byte(text))
	if err != nil {
		t.Fatalf("the OpenAPI document does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("the OpenAPI document does not route: %v", err)
	}
	openAPIRouters.Store(text, router)
	return router
}

// checkResponse validates one answer of h against its document: status, content type and body.
// A request the document has no operation for (the tenant root, a path of no resource, a
// method not allowed) is skipped.
func checkResponse(t testing.TB, h http.Handler, req *http.Request, resp apiResp) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/") || req.URL.Path == "/api/openapi.json" {
		return
	}
	router := openAPIRouter(t, h)
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  resp.status,
		Header:  resp.hdr,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(resp.body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %s, which the OpenAPI document does not describe: %v", req.Method, req.URL, resp, err)
	}
}

// The document is valid for kin-openapi, and every answer of a run of requests matches it.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	openAPIRouter(t, a.h)
	a.WriteModule("misc", kindsModule)
	openAPIRouter(t, a.h)
	r := a.do("GET", "/api/openapi.json", "", "")
	for _, bad := range []string{`"InventoryStock Items"`, `"$ref":"#/components/schemas/Inventory Stock`} {
		if bytes.Contains(r.body, []byte(bad)) {
			t.Errorf("the document holds %s", bad)
		}
	}
}

// What a client generated from the document (openapi-typescript and openapi-fetch, say) sends
// works: an __in filter typed as an array arrives as the parameter repeated, which adds to the
// list as a comma does; a numeric filter or field typed string | number may be sent as a number.
// Only the tenant's own rows come back.
func TestOpenAPIGeneratedClientRequests(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	var ids []int64
	for i, tenant := range []string{"acme", "globex", "acme", "acme"} {
		p := a.must(201, "POST", "/api/"+tenant+"/product/products/", tenant, fmt.Sprintf(`{"sku": "S-%d", "name": "n", "price": %d.5}`, i, 10*i))
		ids = append(ids, idOf(t, p))
	}
	skus := func(query string) []string {
		t.Helper()
		r := a.do("GET", productsURL+query, "acme", "")
		if r.status != 200 {
			t.Fatalf("GET %s: %s", query, r)
		}
		var out []string
		for _, row := range r.obj(t)["results"].([]any) {
			out = append(out, row.(map[string]any)["sku"].(string))
		}
		slices.Sort(out)
		return out
	}
	for query, want := range map[string][]string{
		fmt.Sprintf("?id__in=%d&id__in=%d&id__in=%d", ids[0], ids[1], ids[2]): {"S-0", "S-2"}, // globex's id finds nothing
		fmt.Sprintf("?id__in=%d,%d&id__in=%d", ids[0], ids[2], ids[3]):        {"S-0", "S-2", "S-3"},
		"?sku__in=S-3&sku__in=S-1&sku__in=S-0":                                {"S-0", "S-3"},
		"?price__gte=20&price__in=20.5&price__in=30.5":                        {"S-2", "S-3"},
	} {
		if got := skus(query); !slices.Equal(got, want) {
			t.Errorf("GET %s: %v, want %v", query, got, want)
		}
	}
	if r := a.do("GET", productsURL+"?limit=1&limit=2", "acme", ""); r.status != 400 || !strings.Contains(string(r.body), "only once") {
		t.Errorf("limit twice: %s", r)
	}
	if r := a.do("GET", productsURL+"?id__in=1&id__in=x", "acme", ""); r.status != 400 {
		t.Errorf("a bad value among repeated ones: %s", r)
	}
}

// The document types each filter and field so that a generated TypeScript client compiles as
// written: __in filters are arrays sent as comma-separated lists (form, not exploded), as DRF's
// django-filter reads them; a numeric filter or writable field takes a decimal string or a
// number; a numeric field of a row is a decimal string, as DRF answers it.
func TestOpenAPIFilterAndFieldTypes(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.WriteModule("misc", kindsModule)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, httptest.NewRequest("GET", "http://example.com/api/openapi.json", nil))
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	numberOrDecimal := func(what string, s *openapi3.Schema) {
		t.Helper()
		if len(s.AnyOf) != 2 || !s.AnyOf[0].Value.Type.Is("string") || s.AnyOf[0].Value.Format != "decimal" || !s.AnyOf[1].Value.Type.Is("number") {
			t.Errorf("%s: want anyOf a decimal string and a number, got %s", what, jsonOf(s))
		}
	}
	list := doc.Paths.Find("/api/{tenant}/product/products/").Get
	for _, p := range list.Parameters {
		p := p.Value
		switch {
		case strings.HasSuffix(p.Name, "__in"):
			if p.Style != "form" || p.Explode == nil || *p.Explode || !p.Schema.Value.Type.Is("array") {
				t.Errorf("%s: style %q explode %v schema %s", p.Name, p.Style, p.Explode, jsonOf(p.Schema.Value))
			}
			if p.Name == "price__in" {
				numberOrDecimal(p.Name+" items", p.Schema.Value.Items.Value)
			}
		case strings.HasPrefix(p.Name, "price") && !strings.HasSuffix(p.Name, "__isnull"):
			numberOrDecimal(p.Name, p.Schema.Value)
		}
	}
	for _, name := range []string{"ProductProductsRequest", "PatchedProductProductsRequest"} {
		numberOrDecimal(name+".price", doc.Components.Schemas[name].Value.Properties["price"].Value)
	}
	if s := doc.Components.Schemas["ProductProducts"].Value.Properties["price"].Value; !s.Type.Is("string") || s.Format != "decimal" {
		t.Errorf("a row's price: %s", jsonOf(s))
	}
	// A nullable numeric field takes null too.
	amount := doc.Components.Schemas["MiscThingsRequest"].Value.Properties["amount"].Value
	numberOrDecimal("misc things' amount", amount)
	if !amount.Nullable {
		t.Errorf("misc things' amount is not nullable: %s", jsonOf(amount))
	}
}

func jsonOf(s *openapi3.Schema) string {
	b, _ := s.MarshalJSON()
	return string(b)
}
