package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

func cacheLen(h *api.Handler, name string) int {
	for _, s := range h.CacheStats() {
		if s.Name == name {
			return s.Len
		}
	}
	return -1
}

// The SQL the API builds is kept per (generation, tenant, resource): reloading unchanged module
// files changes nothing; a new generation is served to a tenant once it has applied it, with SQL
// of its own, and each tenant keeps its own entries.
func TestAPICachesFollowTheGenerations(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	for _, slug := range []string{"acme", "globex"} {
		a.must(200, "GET", "/api/"+slug+"/product/products/", slug, "")
		a.must(200, "GET", "/api/"+slug+"/product/categories/", slug, "")
	}
	if n := cacheLen(a.h, "tables"); n != 4 {
		t.Fatalf("tables cached after 2 tenants x 2 resources: %d", n)
	}
	reg := a.P.LocalModules()
	if err := a.P.ReloadModules(); err != nil || a.P.LocalModules() != reg {
		t.Fatalf("an unchanged reload replaced the registry (%v)", err)
	}
	a.must(200, "GET", "/api/acme/product/products/", "acme", "")
	if n := cacheLen(a.h, "tables"); n != 4 {
		t.Fatalf("tables cached after an unchanged reload: %d, want the same 4", n)
	}

	a.WriteModule("product", strings.Replace(cptest.BuiltinSource(t, "product"),
		"table \"products\" {\n  schema = schema.tenant\n",
		"table \"products\" {\n  schema = schema.tenant\n  column \"barcode\" {\n    type = text\n    null = true\n  }\n", 1))
	// Published, not applied: both tenants are served at the generation they have.
	got := a.must(200, "OPTIONS", "/api/acme/product/products/", "acme", "")
	if strings.Contains(fmt.Sprint(got), "barcode") {
		t.Fatalf("acme is served the new column before it has it: %v", got)
	}
	a.ReconcileAll()
	got = a.must(200, "OPTIONS", "/api/acme/product/products/", "acme", "")
	if !strings.Contains(fmt.Sprint(got), "barcode") {
		t.Fatalf("acme after applying the new generation: %v", got)
	}
	if n := cacheLen(a.h, "tables"); n != 5 {
		t.Fatalf("tables cached after acme's request at the new generation: %d, want 4 of the first and 1 of the second", n)
	}
	a.must(201, "POST", "/api/acme/product/products/", "acme", `{"sku": "a1", "name": "A", "barcode": "123"}`)
	if r := a.do("GET", "/api/globex/product/products/?barcode=123", "globex", ""); r.status != 200 || !strings.Contains(string(r.body), `"count":0`) {
		t.Fatalf("globex after acme's write: %s", r)
	}
	if r := a.do("GET", "/api/acme/product/products/?barcode=123", "acme", ""); r.status != 200 || !strings.Contains(string(r.body), `"count":1`) {
		t.Fatalf("acme's own write: %s", r)
	}
}

// Wrong tokens fill a cache of their own, bounded, unknown tenants none, and never evict a valid
// tenant's entries.
func TestAPINegativeCachesAreBounded(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{Caches: api.CacheSizes{Negatives: 8}})
	a.must(200, "GET", "/api/acme/product/products/", "acme", "")
	for i := range 50 {
		if r := a.do("GET", "/api/acme/product/products/", fmt.Sprintf("raw:Bearer junk-%d", i), ""); r.status != 401 {
			t.Fatalf("junk token %d: %s", i, r)
		}
		if r := a.do("GET", fmt.Sprintf("/api/nobody%d/product/products/", i), "globex", ""); r.status != 404 {
			t.Fatalf("unknown tenant %d: %s", i, r)
		}
	}
	if n := cacheLen(a.h, "wrong_tokens"); n != 8 {
		t.Fatalf("wrong tokens cached: %d, want the bound 8", n)
	}
	// A slug is looked up only for a token of that tenant: unknown slugs cost nothing.
	if n := cacheLen(a.h, "unknown_tenants"); n != 0 {
		t.Fatalf("unknown tenants cached: %d, want none", n)
	}
	if n := cacheLen(a.h, "tokens"); n != 2 {
		t.Fatalf("valid tokens cached: %d, want acme's and globex's", n)
	}
	if n := cacheLen(a.h, "tenants"); n != 1 {
		t.Fatalf("tenants cached: %d, want acme only", n)
	}
	a.must(200, "GET", "/api/acme/product/products/", "acme", "")
}

// While the daemon hears every revocation (WatchTokens(true)), a valid token's lookup is kept
// past cacheTTL: a revocation it did not hear (no ForgetTokens) leaves the token working. Once
// it stops hearing them (its listener's connection lost), every lookup is dropped at once. A
// handler that hears nothing keeps lookups for cacheTTL only.
func TestWatchedTokensAreKeptLonger(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	unwatched, watched := a.h, newHandler(a.P, api.Config{})
	watched.WatchTokens(true)
	ids := map[string]int64{}
	secrets := map[string]string{}
	for _, slug := range []string{"acme", "globex"} {
		tok, secret, err := a.P.CreateToken(a.Ctx, ident.MustParseSlug(slug), "watched")
		if err != nil {
			t.Fatal(err)
		}
		ids[slug], secrets[slug] = tok.ID, secret
	}
	get := func(h *api.Handler, slug, token string) int {
		return doWith(h, "GET", "/api/"+slug+"/", "Bearer "+secrets[token], "").status
	}
	if s1, s2 := get(unwatched, "acme", "acme"), get(watched, "globex", "globex"); s1 != 200 || s2 != 200 {
		t.Fatalf("before the revocations: acme %d, globex %d", s1, s2)
	}
	if s := get(watched, "acme", "globex"); s != 404 {
		t.Fatalf("globex's token on acme: %d, want 404", s)
	}
	for _, slug := range []string{"acme", "globex"} {
		if err := a.P.RevokeToken(a.Ctx, ids[slug]); err != nil { // no handler hears it
			t.Fatal(err)
		}
	}
	time.Sleep(2500 * time.Millisecond) // past cacheTTL
	if s := get(unwatched, "acme", "acme"); s != 401 {
		t.Errorf("acme's revoked token past cacheTTL, unwatched: %d, want 401", s)
	}
	if s := get(watched, "globex", "globex"); s != 200 {
		t.Errorf("globex's token past cacheTTL, watched: %d, want 200 (kept until the revocation is heard)", s)
	}
	watched.WatchTokens(false)
	if s := get(watched, "globex", "globex"); s != 401 {
		t.Errorf("globex's revoked token once unwatched: %d, want 401", s)
	}
	for _, slug := range []string{"acme", "globex"} {
		if r := a.do("GET", "/api/"+slug+"/", slug, ""); r.status != 200 {
			t.Errorf("%s's own token: %s", slug, r)
		}
	}
}
