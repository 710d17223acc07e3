package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane/api"
)

// Bodies and query strings that encoding/json or net/url would quietly repair are refused with
// a 400 that names the problem, and nothing is written to either tenant.
func TestAPIRefusesBrokenText(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	url := "/api/acme/product/categories/"
	for name, body := range map[string]string{
		"invalid UTF-8":       "{\"name\": \"caf\xe9\"}",
		"lone high surrogate": `{"name": "x\ud800y"}`,
		"lone low surrogate":  `{"name": "\udc00"}`,
		"high then not low":   `{"name": "\ud800\u0041"}`,
	} {
		r := a.do("POST", url, "acme", body)
		if r.status != 400 || !strings.Contains(string(r.body), "JSON parse error") {
			t.Errorf("%s: %s", name, r)
		}
	}
	// A real pair and an escaped backslash before "u" are fine.
	a.must(201, "POST", url, "acme", `{"name": "smile \ud83d\ude00"}`)
	a.must(201, "POST", url, "acme", `{"name": "C:\\ud800"}`)
	if r := a.do("GET", url+"?name=%C3%28", "acme", ""); r.status != 400 || !strings.Contains(string(r.body), "UTF-8") {
		t.Errorf("invalid UTF-8 in the query: %s", r)
	}
	if got := a.rowCounts(); !strings.Contains(got, "tenant_acme.categories=2") || !strings.Contains(got, "tenant_globex.categories=0") {
		t.Fatalf("rows after the refused requests: %s", got)
	}
}

// A value too long for its unique index is a 400 naming the field, not a 500.
func TestAPIValueTooLongToIndex(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	// Random text: PostgreSQL compresses a repeated one below the index limit.
	buf := make([]byte, 50_000)
	rand.Read(buf)
	long := hex.EncodeToString(buf)
	r := a.do("POST", "/api/acme/product/products/", "acme", fmt.Sprintf(`{"sku": %q, "name": "Long"}`, long))
	if r.status != 400 || !strings.Contains(string(r.body), `"sku"`) {
		t.Fatalf("100 KB sku: %.300s", r)
	}
	if got := a.rowCounts(); !strings.Contains(got, "tenant_acme.products=0") {
		t.Fatalf("rows after the refused request: %s", got)
	}
}

// Links come from the public URL when one is set; otherwise a Host outside the allowed list is a
// 400, and the other tenant is unaffected.
func TestAPILinksAndHosts(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	for range 3 {
		a.must(201, "POST", "/api/acme/product/categories/", "acme", fmt.Sprintf(`{"name": "c%d"}`, a.Count(`SELECT count(*) FROM tenant_acme.categories`)))
	}
	pub := newHandler(a.P, api.Config{PublicURL: "https://erp.example.com/"})
	r := doWith(pub, "GET", "/api/acme/product/categories/?limit=1", a.auth("acme"), "", "Host", "evil.example")
	if m := r.obj(t); r.status != 200 || m["next"] != "https://erp.example.com/api/acme/product/categories/?limit=1&offset=1" {
		t.Fatalf("next with a public URL: %s", r)
	}
	hosts := newHandler(a.P, api.Config{AllowedHosts: []string{"api.example.com", ".corp.example"}})
	for host, want := range map[string]int{"api.example.com": 200, "api.example.com:8080": 200, "x.corp.example": 200,
		"corp.example": 200, "evil.example": 400, "api.example.com.evil": 400} {
		if r := doWith(hosts, "GET", "/api/globex/product/categories/", a.auth("globex"), "", "Host", host); r.status != want {
			t.Errorf("Host %s: %s, want %d", host, r, want)
		}
	}
	// The last page's next is null even for an offset that would overflow.
	r = a.do("GET", "/api/acme/product/categories/?offset=9223372036854775807", "acme", "")
	if m := r.obj(t); r.status != 200 || m["next"] != nil {
		t.Fatalf("huge offset: %s", r)
	}
}

// With the database out of reach, a request gets a 503 with Retry-After, not a 500.
func TestAPIDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	dead, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	h := api.New(api.Config{Plane: a.P, DB: dead})
	r := doWith(h, "GET", "/api/acme/product/categories/", a.auth("acme"), "")
	if r.status != 503 || r.hdr.Get("Retry-After") == "" || strings.Contains(string(r.body), "127.0.0.1") {
		t.Fatalf("database unreachable: %s", r)
	}
}

// A page of large rows is sent in parts (no Content-Length) and is still one valid DRF page; a
// small page keeps its Content-Length; the other tenant's page is its own.
func TestAPIStreamsLargePages(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.Exec(`INSERT INTO tenant_acme.products (sku, name, description)
		SELECT 'big-' || g, 'Big ' || g, repeat(md5(g::text), 10000) FROM generate_series(1, 12) g`)
	a.Exec(`INSERT INTO tenant_globex.products (sku, name) VALUES ('small', 'Small')`)
	r := a.do("GET", "/api/acme/product/products/?limit=1000", "acme", "")
	m := r.obj(t)
	if r.status != 200 || r.hdr.Get("Content-Length") != "" || len(m["results"].([]any)) != 12 || fmt.Sprint(m["count"]) != "12" {
		t.Fatalf("large page: %d, Content-Length %q, %v results", r.status, r.hdr.Get("Content-Length"), len(m["results"].([]any)))
	}
	if d := m["results"].([]any)[11].(map[string]any)["description"].(string); len(d) != 320_000 {
		t.Fatalf("last row's description: %d bytes", len(d))
	}
	// The table is known for large rows now: its pages are read as ids first, then by id; the
	// answers are the same.
	// The table is known for large rows now: its pages are read as ids first, then by id. The
	// answers are those of a handler that reads them in one statement.
	fresh := func() *api.Handler { return newHandler(a.P, api.Config{}) }
	for _, path := range []string{"?limit=1000", "?limit=5&offset=3&ordering=-sku", "?search=big-1&page_size=2&page=2", "?sku=nope", "?page=9"} {
		a.must(200, "GET", "/api/acme/product/products/?limit=1000", "acme", "") // large rows: ids first next time
		byIDs := a.do("GET", "/api/acme/product/products/"+path, "acme", "")
		whole := doWith(fresh(), "GET", "/api/acme/product/products/"+path, a.auth("acme"), "")
		if byIDs.status != whole.status || string(byIDs.body) != string(whole.body) {
			t.Fatalf("%s by ids: %d, in one statement: %d; bodies equal: %v", path, byIDs.status, whole.status, string(byIDs.body) == string(whole.body))
		}
	}
	r = a.do("GET", "/api/globex/product/products/", "globex", "")
	if m := r.obj(t); r.hdr.Get("Content-Length") == "" || fmt.Sprint(m["count"]) != "1" {
		t.Fatalf("small page: %s", r)
	}
}

// A request with more than one Authorization header is refused with 400 whatever the headers
// hold (a good token then garbage, garbage then a good token, or the tokens of two tenants):
// which of them counts is not the server's to guess. Nothing is written to either tenant.
func TestAPITwoAuthorizationHeaders(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.must(201, "POST", categoriesURL, "acme", `{"name": "Tools"}`)
	before := a.rowCounts()
	good, other := "Bearer "+a.tok["acme"], "Token "+a.tok["globex"]
	for _, pair := range [][2]string{{good, "garbage"}, {"Bearer nope", good}, {good, other}, {good, good}} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/acme/", ""}, {"GET", categoriesURL, ""}, {"GET", categoriesURL + "1/", ""},
			{"POST", categoriesURL, `{"name": "Sneaky"}`}, {"PATCH", categoriesURL + "1/", `{"name": "Sneaky"}`},
			{"DELETE", categoriesURL + "1/", ""}, {"POST", "/api/globex/product/categories/", `{"name": "Sneaky"}`},
		} {
			req := httptest.NewRequest(c.method, "http://example.com"+c.path, strings.NewReader(c.body))
			req.Header.Add("Authorization", pair[0])
			req.Header.Add("Authorization", pair[1])
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			resp := apiResp{status: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
			if resp.status != 400 {
				t.Errorf("%s %s with Authorization %q and %q: %s, want 400", c.method, c.path, pair[0], pair[1], resp)
				continue
			}
			jsonEqual(t, "two Authorization headers", resp.body, `{"detail": "Give the Authorization header only once."}`)
			checkResponse(t, a.doc, httptest.NewRequest(c.method, "http://example.com"+c.path, nil), resp)
		}
	}
	if got := a.rowCounts(); got != before {
		t.Fatalf("rows after the refused requests: %s, were %s", got, before)
	}
	if r := a.do("GET", categoriesURL+"1/", "acme", ""); r.status != 200 {
		t.Fatalf("one header: %s", r)
	}
}

const checksModule = `schema "tenant" {}
table "limits" {
  schema = schema.tenant
  column "price" {
    type    = numeric(12,2)
    default = 0
  }
  column "qty" {
    type    = integer
    default = 1
  }
  column "debt" {
    type    = integer
    default = -1
  }
  column "code" {
    type    = text
    default = "x"
  }
  column "lo" {
    type    = integer
    default = 0
  }
  column "hi" {
    type    = integer
    default = 0
  }
  check "limits_price_check" {
    expr = "price >= 0"
  }
  check "limits_qty_check" {
    expr = "qty > 0"
  }
  check "limits_debt_check" {
    expr = "debt <= -1"
  }
  check "limits_code_check" {
    expr = "code <> 'none'"
  }
  check "limits_range_check" {
    expr = "lo <= hi"
  }
}
`

// A check violation answers in DRF's words: a bound on one column as Django's MinValueValidator
// and MaxValueValidator word it, anything else as Django words a violated constraint. No SQL of
// the check reaches the client, and nothing is written to either tenant.
func TestAPICheckViolationMessages(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("misc", checksModule)
	for _, tenant := range []string{"acme", "globex"} {
		url := "/api/" + tenant + "/misc/limits/"
		a.must(201, "POST", url, tenant, `{}`)
		before := a.rowCounts()
		for body, want := range map[string]string{
			`{"price": "-0.01"}`: `{"price": ["Ensure this value is greater than or equal to 0."]}`,
			`{"qty": 0}`:         `{"qty": ["Ensure this value is greater than 0."]}`,
			`{"debt": 0}`:        `{"debt": ["Ensure this value is less than or equal to -1."]}`,
			`{"code": "none"}`:   `{"code": ["Constraint “limits_code_check” is violated."]}`,
			`{"lo": 2, "hi": 1}`: `{"non_field_errors": ["Constraint “limits_range_check” is violated."]}`,
		} {
			r := a.do("POST", url, tenant, body)
			if r.status != 400 {
				t.Errorf("%s %s: %s, want 400", tenant, body, r)
				continue
			}
			jsonEqual(t, tenant+" "+body, r.body, want)
		}
		if r := a.do("PATCH", url+"1/", tenant, `{"qty": -3}`); r.status != 400 || strings.Contains(string(r.body), "CHECK") || strings.Contains(string(r.body), "qty >") {
			t.Errorf("%s PATCH: %s", tenant, r)
		}
		if got := a.rowCounts(); got != before {
			t.Fatalf("rows after the refused requests: %s, were %s", got, before)
		}
	}
}
