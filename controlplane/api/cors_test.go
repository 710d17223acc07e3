package api_test

import (
	"testing"

	"github.com/erpctl/erpctl/controlplane/api"
)

// A browser front end on an allowed origin gets its preflight answered without a token and the
// CORS headers on every answer; another origin gets neither, and a preflight from it is an
// ordinary OPTIONS, which needs a token.
func TestCORS(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{CORSOrigins: []string{"https://app.example.com"}})
	const app = "https://app.example.com"
	globex := "/api/globex/product/products/"
	preflight := func(origin, path string) apiResp {
		return doWith(a.h, "OPTIONS", path, "", "", "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type")
	}
	for _, path := range []string{productsURL, globex, "/api/acme/"} {
		r := preflight(app, path)
		if r.status != 200 || r.hdr.Get("Access-Control-Allow-Origin") != app || r.hdr.Get("Access-Control-Max-Age") == "" ||
			r.hdr.Get("Access-Control-Allow-Methods") == "" || len(r.body) != 0 {
			t.Fatalf("preflight %s: %s %v", path, r, r.hdr)
		}
	}
	r := a.do("POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil"}`, "Origin", app)
	if r.status != 201 || r.hdr.Get("Access-Control-Allow-Origin") != app || r.hdr.Get("Vary") != "Origin" ||
		r.hdr.Get("Access-Control-Expose-Headers") == "" {
		t.Fatalf("POST from the app: %s %v", r, r.hdr)
	}
	// globex sees nothing of acme's, origin or not.
	if m := a.must(200, "GET", globex, "globex", ""); m["count"] != float64(0) {
		t.Fatalf("globex: %v", m)
	}
	before := a.rowCounts()
	// A token is still needed for everything but the preflight, and still of that tenant.
	if r := a.do("POST", globex, "acme", `{"sku": "X", "name": "X"}`, "Origin", app); r.status != 404 ||
		r.hdr.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("acme's token on globex from the app: %s", r)
	}
	if r := a.do("GET", productsURL, "", "", "Origin", app); r.status != 401 || r.hdr.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("no token from the app: %s %v", r, r.hdr)
	}
	// Another origin: no CORS headers; its preflight is an OPTIONS without a token.
	for _, origin := range []string{"https://evil.example.com", "http://app.example.com", "null"} {
		r := preflight(origin, productsURL)
		if r.status != 401 || r.hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %s %v", origin, r, r.hdr)
		}
		if r := a.do("GET", productsURL, "acme", "", "Origin", origin); r.status != 200 || r.hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET from %s: %v", origin, r.hdr)
		}
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
	// Without origins configured, nothing changes.
	plain := newHandler(a.P, api.Config{})
	if r := doWith(plain, "OPTIONS", productsURL, "", "", "Origin", app, "Access-Control-Request-Method", "GET"); r.status != 401 ||
		r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no CORS configured: %s %v", r, r.hdr)
	}
}
