package api_test

import (
	"bytes"
	"testing"

	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/internal/ident"
)

// Delete archives: at once acme's URLs answer 404 and its token 401, while globex is served
// as before; restore serves exactly acme's rows again, with its old token.
func TestAPIArchiveAndRestore(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools", "description": "Ünïcödé"}`)
	a.must(201, "POST", "/api/globex/product/categories/", "globex", `{"name": "Globex tools"}`)
	before := a.do("GET", categoriesURL, "acme", "")
	globexBefore := a.do("GET", "/api/globex/product/categories/", "globex", "")

	if _, err := a.P.ArchiveTenant(a.Ctx, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	// What the daemon's listener does on the archive's NOTIFY to erpctl_tokens.
	a.h.ForgetTokens()
	if r := a.do("GET", categoriesURL, "acme", ""); r.status != 401 {
		t.Errorf("acme's token after delete: %s", r)
	}
	for _, p := range []string{"/api/acme/", categoriesURL} {
		if r := a.do("GET", p, "globex", ""); r.status != 404 {
			t.Errorf("%s with globex's token after delete: %s", p, r)
		}
	}
	if r := a.do("GET", "/api/globex/product/categories/", "globex", ""); r.status != 200 || !bytes.Equal(r.body, globexBefore.body) {
		t.Errorf("globex after acme's delete: %s", r)
	}

	if _, err := a.P.RestoreTenant(a.Ctx, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	a.h.ForgetTokens()
	if after := a.do("GET", categoriesURL, "acme", ""); after.status != 200 || !bytes.Equal(after.body, before.body) {
		t.Fatalf("acme after restore: %s\nbefore: %s", after, before)
	}
	a.must(201, "POST", categoriesURL, "acme", `{"name": "After restore"}`)
}
