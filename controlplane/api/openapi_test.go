package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
