package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane/console"
	"github.com/erpctl/erpctl/internal/ident"
)

// pages are every page of the console, with a tenant of the fixture.
var pages = []string{"/", "/tenants", "/tenants?status=Ready", "/tenants/acme", "/tenants/acme/tables", "/rollouts", "/generations", "/generations/diff?from=1&to=1"}

func TestOnlyOperatorsOpenTheConsole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex")
	_, tenantToken, err := f.P.CreateToken(f.Ctx, ident.MustParseSlug("acme"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := f.P.Operators().Create(f.Ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.P.Operators().Revoke(f.Ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		// A browser without a session is sent to sign in; a script gets 401.
		res, _ := f.get(p)
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
			t.Fatalf("GET %s without credentials: %d %s", p, res.StatusCode, res.Header.Get("Location"))
		}
		for name, tok := range map[string]string{"a tenant token": tenantToken, "a revoked operator token": revoked.Secret,
			"a login code": f.op.LoginCode, "nothing": ""} {
			for _, accept := range []string{"application/json", "text/html"} {
				res, body := f.get(p, "Authorization", "Bearer "+tok, "Accept", accept)
				if res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "acme") {
					t.Fatalf("GET %s (%s) with %s: %d\n%s", p, accept, name, res.StatusCode, body)
				}
			}
		}
		// DRF's "Token" scheme, which the data API takes, is no bearer here.
		if res, _ := f.get(p, "Authorization", "Token "+f.token); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET %s with the Token scheme: %d", p, res.StatusCode)
		}
		if res, body := f.get(p, "Authorization", "Bearer "+f.token); res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s as an operator: %d\n%s", p, res.StatusCode, body)
		}
	}
	// A POST with a tenant token changes nothing.
	f.Exec(`DROP TABLE tenant_acme.categories CASCADE`)
	if res, _ := f.do(http.DefaultClient, "POST", "/tenants/acme/fix", url.Values{}, "Authorization", "Bearer "+tenantToken); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("fix with a tenant token: %d", res.StatusCode)
	}
	if slices.Contains(f.Tables("tenant_acme"), "categories") {
		t.Fatal("a tenant token's fix changed the tenant")
	}
	// The login form refuses a tenant's token.
	jar := loginForm(t, f, tenantToken)
	if res, _ := f.do(jar, "GET", "/", nil); res.Request.URL.Path != "/login" {
		t.Fatalf("after signing in with a tenant token the fleet page answered at %s", res.Request.URL)
	}
}

// loginForm signs in through the login form with token, as a browser does, and returns the
// browser.
func loginForm(t *testing.T, f *fixture, token string) *http.Client {
	t.Helper()
	client, _ := f.browserClient()
	res, body := f.do(client, "GET", "/login", nil)
	csrf := between(body, `name="csrf" value="`, `"`)
	if res.StatusCode != http.StatusOK || csrf == "" {
		t.Fatalf("login page: %d\n%s", res.StatusCode, body)
	}
	f.do(client, "POST", "/login", url.Values{"csrf": {csrf}, "token": {token}})
	return client
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

func TestLoginLinkAndForm(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex")
	link := strings.TrimPrefix(f.loginURL("bob"), f.srv.URL)

	client, _ := f.browserClient()
	res, body := f.do(client, "GET", link, nil)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/" || !strings.Contains(body, "bob") {
		t.Fatalf("login link: %d at %s", res.StatusCode, res.Request.URL)
	}
	// The cookie is HttpOnly and SameSite, and the code is gone from the address.
	res, _ = f.get(link)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the login link worked twice: %d", res.StatusCode)
	}
	other, _ := f.browserClient()
	res, _ = f.do(other, "GET", link, nil)
	if res.Request.URL.Path != "/login" {
		t.Fatalf("a used link signed a second browser in at %s", res.Request.URL)
	}

	raw, _ := f.get(strings.TrimPrefix(f.loginURL("carol"), f.srv.URL))
	ck := raw.Cookies()
	i := slices.IndexFunc(ck, func(c *http.Cookie) bool { return c.Name == "erpctl_console" })
	if raw.StatusCode != http.StatusSeeOther || raw.Header.Get("Location") != "/" || i < 0 || !ck[i].HttpOnly ||
		ck[i].SameSite != http.SameSiteStrictMode || ck[i].Value == "" {
		t.Fatalf("login link answer: %d %q %+v", raw.StatusCode, raw.Header.Get("Location"), ck)
	}
	if raw.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(raw.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("headers: %v", raw.Header)
	}

	// Behind a TLS proxy (the console's URL is https) the cookie is Secure too.
	behind, err := console.New(console.Config{Plane: f.P, Generations: f.P.Generations(), Operators: f.P.Operators(), SecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.P.Operators().Create(f.Ctx, "proxied")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	behind.ServeHTTP(rec, httptest.NewRequest("GET", "/login?code="+code.LoginCode, nil))
	if ck := rec.Result().Cookies(); rec.Code != http.StatusSeeOther || len(ck) == 0 || !slices.ContainsFunc(ck, func(c *http.Cookie) bool {
		return c.Name == "erpctl_console" && c.Secure && c.HttpOnly
	}) {
		t.Fatalf("behind a TLS proxy: %d %+v", rec.Code, ck)
	}

	// The form: with the operator token, to the page asked for; without its CSRF token, refused.
	client = loginForm(t, f, f.token)
	if res, body := f.do(client, "GET", "/tenants", nil); res.Request.URL.Path != "/tenants" || !strings.Contains(body, "alice") {
		t.Fatalf("after the login form: %s", res.Request.URL)
	}
	fresh, _ := f.browserClient()
	f.do(fresh, "GET", "/login", nil)
	res, _ = f.do(fresh, "POST", "/login", url.Values{"token": {f.token}, "csrf": {"guess"}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("login form without its CSRF token: %d", res.StatusCode)
	}
	// Sign out ends the session for good.
	client, csrf := f.browserSession()
	res, _ = f.do(client, "POST", "/logout", url.Values{"csrf": {csrf}})
	if res.Request.URL.Path != "/login" {
		t.Fatalf("sign out: at %s", res.Request.URL)
	}
	if res, _ := f.do(client, "GET", "/", nil); res.Request.URL.Path != "/login" {
		t.Fatal("still signed in after signing out")
	}
	// next stays on the console.
	for next, want := range map[string]string{"/tenants?status=Ready": "/tenants", "https://evil.example/": "/", "//evil.example/": "/", "/\\evil": "/"} {
		c, _ := f.browserClient()
		_, body := f.do(c, "GET", "/login?next="+url.QueryEscape(next), nil)
		res, _ := f.do(c, "POST", "/login", url.Values{"csrf": {between(body, `name="csrf" value="`, `"`)}, "token": {f.token},
			"next": {between(body, `name="next" value="`, `"`)}})
		if res.Request.URL.Host != strings.TrimPrefix(f.srv.URL, "http://") || res.Request.URL.Path != want {
			t.Fatalf("next %q: at %s", next, res.Request.URL)
		}
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex")
	client, csrf := f.browserSession()
	f.Exec(`DROP TABLE tenant_acme.categories CASCADE`)
	events := f.Count(`SELECT count(*) FROM erpctl.events`)
	for name, form := range map[string]url.Values{"no token": {}, "a wrong token": {"csrf": {csrf + "x"}}, "alice's bearer token": {"csrf": {f.token}}} {
		res, body := f.do(client, "POST", "/tenants/acme/fix", form)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("fix with %s: %d\n%s", name, res.StatusCode, body)
		}
	}
	if slices.Contains(f.Tables("tenant_acme"), "categories") || f.Count(`SELECT count(*) FROM erpctl.events`) != events {
		t.Fatal("a POST without the CSRF token changed something")
	}
	// Another session's CSRF token is not this one's.
	_, other := f.browserSession()
	if res, _ := f.do(client, "POST", "/tenants/acme/fix", url.Values{"csrf": {other}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("fix with another session's CSRF token: %d", res.StatusCode)
	}
	// With it: fixed, recorded with the operator's name; globex untouched.
	globex := f.Checksums("tenant_globex")
	res, body := f.do(client, "POST", "/tenants/acme/fix", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/tenants/acme" || !strings.Contains(body, "Fixed") {
		t.Fatalf("fix: %d at %s\n%s", res.StatusCode, res.Request.URL, body)
	}
	if !slices.Contains(f.Tables("tenant_acme"), "categories") {
		t.Fatal("the fix did not bring the table back")
	}
	if n := f.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'acme' AND kind = 'repair' AND reason LIKE '%operator browser%console%'`); n != 1 {
		t.Fatalf("%d repair events naming the operator", n)
	}
	if f.Checksums("tenant_globex") != globex || f.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'globex' AND kind = 'repair'`) != 0 {
		t.Fatal("fixing acme touched globex")
	}
	// A script with the bearer header needs no CSRF token: it carries no ambient credential.
	f.Exec(`DROP TABLE tenant_globex.categories CASCADE`)
	res, body = f.do(http.DefaultClient, "POST", "/tenants/globex/fix", url.Values{}, "Authorization", "Bearer "+f.token)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"action": "applied"`) || !slices.Contains(f.Tables("tenant_globex"), "categories") {
		t.Fatalf("fix by a script: %d\n%s", res.StatusCode, body)
	}
	if res, _ := f.do(http.DefaultClient, "POST", "/tenants/nope/fix", url.Values{}, "Authorization", "Bearer "+f.token); res.StatusCode != http.StatusNotFound {
		t.Fatalf("fix of a tenant that does not exist: %d", res.StatusCode)
	}
}

func TestJSONTwins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex", "initech")
	if _, _, err := f.P.CreateToken(f.Ctx, ident.MustParseSlug("acme"), "robot"); err != nil {
		t.Fatal(err)
	}
	_, globexSecret, _ := f.P.CreateToken(f.Ctx, ident.MustParseSlug("globex"), "other")
	// A row of acme's: the console shows metadata, never rows.
	f.Exec(`INSERT INTO tenant_acme.categories (name) VALUES ('secret-row-text')`)

	has := func(what string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Fatalf("%s has no %q: %v", what, k, m)
			}
		}
	}
	var fleet map[string]any
	f.getJSON("/", &fleet)
	has("fleet", fleet, "tenants", "by_status", "by_generation", "latest_generation", "failures", "repairs")
	if fleet["tenants"] != 3.0 {
		t.Fatalf("fleet: %v", fleet)
	}

	var page struct {
		Count    int              `json:"count"`
		Next     *string          `json:"next"`
		Previous *string          `json:"previous"`
		Results  []map[string]any `json:"results"`
	}
	f.getJSON("/tenants?limit=2&sort=slug&order=desc", &page)
	if page.Count != 3 || len(page.Results) != 2 || page.Results[0]["slug"] != "initech" || page.Next == nil || !strings.HasPrefix(*page.Next, "/tenants?") || page.Previous != nil {
		t.Fatalf("tenants: %+v", page)
	}
	// The fields of erpctl tenant list -o json.
	has("a tenant of the list", page.Results[0], "slug", "schema", "status", "modules", "created_at", "last_reconciled_at", "last_error", "generation")
	f.getJSON(*page.Next, &page)
	if len(page.Results) != 1 || page.Results[0]["slug"] != "acme" || page.Next != nil || page.Previous == nil {
		t.Fatalf("tenants page 2: %+v", page)
	}

	var tenant map[string]any
	f.getJSON("/tenants/acme", &tenant)
	has("tenant", tenant, "slug", "schema", "status", "modules", "generation", "events", "tokens")
	toks := tenant["tokens"].([]any)
	if len(toks) != 1 || toks[0].(map[string]any)["name"] != "robot" {
		t.Fatalf("acme's tokens: %v", toks)
	}
	has("token", toks[0].(map[string]any), "id", "tenant", "name", "created_at", "revoked_at")

	var tables map[string]any
	f.getJSON("/tenants/acme/tables", &tables)
	has("tables", tables, "tenant", "healthy", "tables", "fix_sql")
	has("a table", tables["tables"].([]any)[0].(map[string]any), "module", "table", "status", "details", "fix_sql")

	var gens []map[string]any
	f.getJSON("/generations", &gens)
	if len(gens) != 1 {
		t.Fatalf("generations: %v", gens)
	}
	has("generation", gens[0], "generation", "hash", "published_at", "published_by", "message", "tenants")
	var diff map[string]any
	f.getJSON("/generations/diff?from=1&to=1", &diff)
	if diff["identical"] != true || diff["from"] != "generation 1" {
		t.Fatalf("diff: %v", diff)
	}

	// No page, HTML or JSON, shows a row or any token.
	for _, p := range pages {
		for _, accept := range []string{"text/html", "application/json"} {
			_, body := f.get(p, "Authorization", "Bearer "+f.token, "Accept", accept)
			for _, bad := range []string{"secret-row-text", globexSecret, f.token} {
				if strings.Contains(body, bad) {
					t.Fatalf("%s (%s) shows %q", p, accept, bad)
				}
			}
		}
	}
	_, body := f.get("/tenants/acme", "Authorization", "Bearer "+f.token)
	if strings.Contains(body, ">other<") {
		t.Fatal("acme's page shows globex's token")
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex")
	for path, want := range map[string]int{
		"/tenants?status=Sleeping":       400,
		"/tenants?generation=-1":         400,
		"/tenants?generation=x":          400,
		"/tenants?sort=password":         400,
		"/tenants?order=sideways":        400,
		"/tenants?limit=0":               400,
		"/tenants?after=not-a-cursor":    400,
		"/tenants/nope":                  404,
		"/tenants/Bad_Slug":              404,
		"/tenants/nope/tables":           404,
		"/generations/diff?from=abc":     400,
		"/generations/diff?from=1&to=99": 404,
		"/nothing-here":                  404,
	} {
		for _, accept := range []string{"application/json", "text/html"} {
			res, body := f.get(path, "Authorization", "Bearer "+f.token, "Accept", accept)
			if res.StatusCode != want {
				t.Fatalf("GET %s (%s): %d, want %d\n%s", path, accept, res.StatusCode, want, body)
			}
			if accept == "application/json" && !strings.Contains(body, `"detail"`) {
				t.Fatalf("GET %s: no detail in %s", path, body)
			}
		}
	}
	if res, _ := f.do(http.DefaultClient, "PUT", "/tenants/acme/fix", url.Values{}, "Authorization", "Bearer "+f.token); res.StatusCode == http.StatusOK {
		t.Fatal("PUT fix answered 200")
	}
	for path, want := range map[string]int{"/rollouts/99/approve": 404, "/rollouts/1/frobnicate": 404, "/rollouts/x/pause": 404} {
		if res, body := f.do(http.DefaultClient, "POST", path, url.Values{}, "Authorization", "Bearer "+f.token, "Accept", "application/json"); res.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d\n%s", path, res.StatusCode, want, body)
		}
	}
	if n := f.Count(`SELECT count(*) FROM erpctl.rollout_events`); n != 0 {
		t.Fatalf("bad rollout actions recorded %d events", n)
	}
}
