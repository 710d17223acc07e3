package api_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"regexp"
	"slices"
	"strings"
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

// listSKUs GETs a list and returns the page and the skus of its rows.
func (a *apiEnv) listSKUs(path, tenant string) (map[string]any, []string) {
	a.T.Helper()
	m := a.must(200, "GET", path, tenant, "")
	var skus []string
	for _, r := range m["results"].([]any) {
		skus = append(skus, r.(map[string]any)["sku"].(string))
	}
	return m, skus
}

// DRF ignores query parameters it does not know and ordering terms naming no field; it pages
// by page/page_size as PageNumberPagination does, and searches text as SearchFilter does.
func TestDRFQueryParameters(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	globex := "/api/globex/product/products/"
	for i := 1; i <= 25; i++ {
		a.must(201, "POST", productsURL, "acme", fmt.Sprintf(`{"sku": "P-%02d", "name": "Product %d"}`, i, 26-i))
	}
	for i := 1; i <= 3; i++ {
		a.must(201, "POST", globex, "globex", fmt.Sprintf(`{"sku": "G-%d", "name": "Globex %d"}`, i, i))
	}
	base := "http://example.com" + productsURL

	// Unknown parameters, lookups and ordering terms are ignored; repeated unknowns too.
	m, skus := a.listSKUs(productsURL+"?_=123&_=124&colour=red&price__between=1&ordering=-colour,sku&limit=3&%ff=%fe", "acme")
	if m["count"] != float64(25) || !slices.Equal(skus, []string{"P-01", "P-02", "P-03"}) {
		t.Fatalf("unknown parameters: %v %v", m["count"], skus)
	}
	if next := m["next"].(string); !strings.Contains(next, "colour=red") || !strings.Contains(next, "offset=3") {
		t.Errorf("next drops what the client sent: %s", next)
	}
	if _, skus := a.listSKUs(productsURL+"?ordering=nope,-name&limit=2", "acme"); !slices.Equal(skus, []string{"P-17", "P-18"}) {
		t.Errorf("ordering with an unknown term: %v", skus) // names sort as text: "Product 9", "Product 8"
	}

	// page/page_size: DRF's envelope and links.
	m, skus = a.listSKUs(productsURL+"?page=2&page_size=10", "acme")
	if m["count"] != float64(25) || len(skus) != 10 || skus[0] != "P-11" ||
		m["next"] != base+"?page=3&page_size=10" || m["previous"] != base+"?page_size=10" {
		t.Fatalf("page 2: %v %v %v %v", m["count"], m["next"], m["previous"], skus)
	}
	m, skus = a.listSKUs(productsURL+"?page=3&page_size=10&ordering=-id", "acme")
	if len(skus) != 5 || skus[0] != "P-05" || m["next"] != nil || m["previous"] != base+"?ordering=-id&page=2&page_size=10" {
		t.Fatalf("page 3: %v %v %v", m["next"], m["previous"], skus)
	}
	m, skus = a.listSKUs(productsURL+"?page=1", "acme")
	if len(skus) != 25 || m["next"] != nil || m["previous"] != nil {
		t.Fatalf("page 1 of the default size: %v %v %d", m["next"], m["previous"], len(skus))
	}
	if _, skus = a.listSKUs(productsURL+"?page=1.0&page_size=abc", "acme"); len(skus) != 25 {
		t.Errorf("page 1.0 with a bad page_size (the default): %d rows", len(skus))
	}
	if _, skus = a.listSKUs(productsURL+"?page=2.0&page_size=10", "acme"); len(skus) != 10 || skus[0] != "P-11" {
		t.Errorf("page 2.0: %v", skus)
	}
	m, _ = a.listSKUs(productsURL+"?page_size=2", "acme")
	if m["next"] != base+"?page=2&page_size=2" {
		t.Errorf("page_size alone: next %v", m["next"])
	}
	m, skus = a.listSKUs(productsURL+"?page=1&sku=nope", "acme")
	if m["count"] != float64(0) || len(skus) != 0 {
		t.Errorf("an empty first page: %v", m)
	}
	// limit/offset win when both are given.
	if m, skus = a.listSKUs(productsURL+"?page=3&limit=2&offset=2", "acme"); !slices.Equal(skus, []string{"P-03", "P-04"}) {
		t.Errorf("limit and page: %v %v", skus, m["next"])
	}
	// page=last, as DRF's last_page_strings: the last page, and its links by number.
	m, skus = a.listSKUs(productsURL+"?page=last&page_size=10", "acme")
	if len(skus) != 5 || skus[0] != "P-21" || m["next"] != nil || m["previous"] != base+"?page=2&page_size=10" {
		t.Fatalf("last page: %v %v %v", m["next"], m["previous"], skus)
	}
	if m, skus = a.listSKUs(productsURL+"?page=last&sku=nope", "acme"); m["count"] != float64(0) || len(skus) != 0 {
		t.Errorf("last page of nothing: %v", m)
	}
	if _, skus = a.listSKUs(globex+"?page=last&page_size=2", "globex"); !slices.Equal(skus, []string{"G-3"}) {
		t.Errorf("globex last page: %v", skus)
	}
	m, skus = a.listSKUs(globex+"?page=2&page_size=2", "globex")
	if m["count"] != float64(3) || !slices.Equal(skus, []string{"G-3"}) {
		t.Fatalf("globex page 2: %v %v", m["count"], skus)
	}

	// Bad pages: 404 "Invalid page."; a bad filter is still a 400 first, as in DRF.
	before := a.rowCounts()
	for _, q := range []string{"?page=4&page_size=10", "?page=0", "?page=Last", "?page=first", "?page=-1", "?page=x", "?page=1.5", "?page=2&sku=nope",
		"?page=9223372036854775807&page_size=1000"} {
		r := a.do("GET", productsURL+q, "acme", "")
		if r.status != 404 {
			t.Errorf("%s: %s, want 404", q, r)
			continue
		}
		jsonEqual(t, q, r.body, `{"detail": "Invalid page."}`)
	}
	r := a.do("GET", productsURL+"?page=x&price__gt=abc", "acme", "")
	jsonEqual(t, "bad page and filter", r.body, `{"price__gt": ["A valid number is required."]}`)
	if r := a.do("GET", globex+"?page=3&page_size=2", "globex", ""); r.status != 404 {
		t.Errorf("globex past the end: %s", r)
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
}

func TestDRFSearch(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	globex := "/api/globex/product/products/"
	a.must(201, "POST", productsURL, "acme", `{"sku": "HAM-1", "name": "Claw Hammer", "description": "forged STEEL"}`)
	a.must(201, "POST", productsURL, "acme", `{"sku": "HAM-2", "name": "Sledge hammer"}`)
	a.must(201, "POST", productsURL, "acme", `{"sku": "SAW-1", "name": "Hand saw", "description": "Steel blade, 100%"}`)
	a.must(201, "POST", globex, "globex", `{"sku": "G-HAM", "name": "Globex Hammer", "description": "steel"}`)
	cases := []struct {
		q    string
		want []string
	}{
		{"hammer", []string{"HAM-1", "HAM-2"}},
		{"HAMMER", []string{"HAM-1", "HAM-2"}},
		{"ham", []string{"HAM-1", "HAM-2"}}, // the sku is text too
		{"steel", []string{"HAM-1", "SAW-1"}},
		{"hammer%20steel", []string{"HAM-1"}}, // every word, each in any column
		{"hammer,steel", []string{"HAM-1"}},
		{"%20saw%20%20blade%20", []string{"SAW-1"}},
		{"100%25", []string{"SAW-1"}}, // no wildcards
		{"%25", []string{"SAW-1"}},
		{"_", nil},
		{"%5C", nil},
		{"1claw", nil}, // "HAM-1" and "Claw Hammer": no match spans two columns
		{"globex", nil},
		{"acme-bot", nil}, // server-set columns are not searched
		{"", []string{"HAM-1", "HAM-2", "SAW-1"}},
		{"hammer&ordering=-sku", []string{"HAM-2", "HAM-1"}},
		{"steel&sku__contains=SAW", []string{"SAW-1"}},
		{"hammer&page_size=1&page=2", []string{"HAM-2"}},
	}
	for _, c := range cases {
		m, skus := a.listSKUs(productsURL+"?search="+c.q, "acme")
		if !slices.Equal(skus, c.want) {
			t.Errorf("search=%s: %v, want %v", c.q, skus, c.want)
		}
		if !strings.Contains(c.q, "page") && m["count"] != float64(len(c.want)) {
			t.Errorf("search=%s: count %v", c.q, m["count"])
		}
	}
	if _, skus := a.listSKUs(globex+"?search=hammer", "globex"); !slices.Equal(skus, []string{"G-HAM"}) {
		t.Errorf("globex: %v", skus)
	}
	// A table without text columns to search: search is ignored, as without search_fields.
	if m := a.must(200, "GET", stockURL+"?search=x", "acme", ""); m["count"] != float64(0) {
		t.Errorf("stock items: %v", m)
	}
	before := a.rowCounts()
	r := a.do("GET", productsURL+"?search="+strings.Repeat("w%20", 33), "acme", "")
	if r.status != 400 {
		t.Fatalf("33 words: %s", r)
	}
	jsonEqual(t, "33 words", r.body, `{"search": ["Give at most 32 search words."]}`)
	if r := a.do("GET", productsURL+"?search=a&search=b", "acme", ""); r.status != 400 || r.obj(t)["search"] == nil {
		t.Errorf("two searches: %s", r)
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
}

// DRF's TokenAuthentication sends "Token KEY": it works as "Bearer KEY" does, and a token of
// another tenant is the same 404.
func TestDRFTokenKeyword(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	globex := "/api/globex/product/products/"
	for _, kw := range []string{"Token", "token", "TOKEN"} {
		r := doWith(a.h, "POST", productsURL, kw+" "+a.tok["acme"], `{"sku": "A-`+kw+`", "name": "Anvil"}`)
		if r.status != 201 || r.obj(t)["created_by"] != "acme-bot" {
			t.Fatalf("%s: %s", kw, r)
		}
	}
	if r := doWith(a.h, "GET", globex, "Token "+a.tok["globex"], ""); r.status != 200 || r.obj(t)["count"] != float64(0) {
		t.Fatalf("globex: %s", r)
	}
	before := a.rowCounts()
	// acme's token on globex's URL: 404, nothing written.
	r := doWith(a.h, "POST", globex, "Token "+a.tok["acme"], `{"sku": "X", "name": "X"}`)
	if r.status != 404 {
		t.Fatalf("cross-tenant: %s", r)
	}
	jsonEqual(t, "cross-tenant", r.body, `{"detail": "Not found."}`)
	for _, c := range []struct{ auth, msg string }{
		{"Token", "Invalid token."},
		{"Token ", "Invalid token."},
		{"Token erp_wrong", "Invalid token."},
		{"Token " + a.tok["acme"] + " extra", "Invalid token."},
		{"Tokens " + a.tok["acme"], "Authentication credentials were not provided."},
	} {
		r := doWith(a.h, "POST", productsURL, c.auth, `{"sku": "Y", "name": "Y"}`)
		if r.status != 401 {
			t.Errorf("%q: %s", c.auth, r)
			continue
		}
		jsonEqual(t, c.auth, r.body, fmt.Sprintf(`{"detail": %q}`, c.msg))
		if want := "Token"; strings.HasPrefix(c.auth, "Token ") && r.hdr.Get("WWW-Authenticate") != want {
			t.Errorf("%q: WWW-Authenticate %q, want %q", c.auth, r.hdr.Get("WWW-Authenticate"), want)
		}
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
}

// DRF's ModelSerializer refuses a blank string in a NOT NULL text column (allow_blank false,
// after trimming whitespace); a nullable text column takes one.
func TestDRFBlankText(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	globex := "/api/globex/product/products/"
	p := a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil", "description": ""}`)
	if p["description"] != "" {
		t.Fatalf("a blank nullable text: %v", p)
	}
	a.must(201, "POST", globex, "globex", `{"sku": "G-1", "name": "Globex"}`)
	detail := fmt.Sprintf("%s%d/", productsURL, idOf(t, p))
	before := a.rowCounts()
	cases := []struct{ method, path, tenant, body, want string }{
		{"POST", productsURL, "acme", `{"sku": "", "name": "N"}`, `{"sku": ["This field may not be blank."]}`},
		{"POST", productsURL, "acme", `{"sku": "  \t", "name": ""}`,
			`{"sku": ["This field may not be blank."], "name": ["This field may not be blank."]}`},
		{"PATCH", detail, "acme", `{"name": " "}`, `{"name": ["This field may not be blank."]}`},
		{"PUT", detail, "acme", `{"sku": "A-1", "name": ""}`, `{"name": ["This field may not be blank."]}`},
		{"POST", globex, "globex", `{"sku": "G-2", "name": "\n"}`, `{"name": ["This field may not be blank."]}`},
	}
	for _, c := range cases {
		r := a.do(c.method, c.path, c.tenant, c.body)
		if r.status != 400 {
			t.Errorf("%s %s: %s, want 400", c.method, c.body, r)
			continue
		}
		jsonEqual(t, c.body, r.body, c.want)
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products WHERE name = 'Anvil' AND sku = 'A-1'`); n != 1 {
		t.Fatalf("acme's row changed")
	}
	// A value with spaces around it is kept as sent.
	if m := a.must(200, "PATCH", detail, "acme", `{"name": " Anvil "}`); m["name"] != " Anvil " {
		t.Errorf("name %q", m["name"])
	}
}

// multipartBody is a multipart/form-data body of fields (name, value, ...) and one file part
// when file is not "", and its Content-Type.
func multipartBody(t *testing.T, file string, fields ...string) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if file != "" {
		fw, err := mw.CreateFormFile(file, "x.txt")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte("file content"))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), mw.FormDataContentType()
}

// DRF's default parsers take HTML forms and multipart bodies, read as its serializer fields read
// an HTML form.
func TestDRFFormBodies(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("misc", kindsModule)
	const form = "application/x-www-form-urlencoded"
	globex := "/api/globex/product/products/"
	r := a.do("POST", productsURL, "acme", "sku=F-1&name=Form+thing%21&price=9.5&category_id=&description=&colour=red&name=Form+%C3%A9", "Content-Type", form)
	if r.status != 201 {
		t.Fatalf("form POST: %s", r)
	}
	p := r.obj(t)
	// The last of a repeated name; a blank nullable non-text field is null, a blank nullable text "".
	if p["name"] != "Form é" || p["price"] != "9.50" || p["category_id"] != nil || p["description"] != "" || p["created_by"] != "acme-bot" {
		t.Fatalf("form POST stored %s", r.body)
	}
	detail := fmt.Sprintf("%s%d/", productsURL, idOf(t, p))
	m := a.must(200, "GET", detail, "acme", "")
	r = a.do("PATCH", detail, "acme", "name=Renamed", "Content-Type", form+"; charset=utf-8")
	if r.status != 200 || r.obj(t)["name"] != "Renamed" || r.obj(t)["price"] != m["price"] || r.obj(t)["sku"] != "F-1" {
		t.Fatalf("form PATCH: %s", r)
	}
	body, ct := multipartBody(t, "attachment", "sku", "G-1", "name", "Globex form")
	r = a.do("POST", globex, "globex", body, "Content-Type", ct)
	if r.status != 201 || r.obj(t)["name"] != "Globex form" {
		t.Fatalf("multipart POST: %s", r)
	}
	// Booleans: missing in a full write is false (an unchecked box), null when nullable; a
	// partial write leaves it. JSON fields take JSON text.
	things := "/api/acme/misc/things/"
	r = a.do("POST", things, "acme", `label=a&flag=on&meta={"k":[1,2]}&small=&born=`, "Content-Type", form)
	if r.status != 201 || r.obj(t)["flag"] != true || r.obj(t)["small"] != nil || fmt.Sprint(r.obj(t)["meta"]) != "map[k:[1 2]]" {
		t.Fatalf("things: %s", r)
	}
	thing := fmt.Sprintf("%s%d/", things, idOf(t, r.obj(t)))
	if r := a.do("PATCH", thing, "acme", "label=b", "Content-Type", form); r.status != 200 || r.obj(t)["flag"] != true {
		t.Fatalf("partial: %s", r)
	}
	if r := a.do("PUT", thing, "acme", "label=c", "Content-Type", form); r.status != 200 || r.obj(t)["flag"] != nil {
		t.Fatalf("PUT without the box: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_globex.products WHERE sku = 'F-1'`); n != 0 {
		t.Fatal("acme's row in globex")
	}

	before := a.rowCounts()
	fileBody, fileCT := multipartBody(t, "name", "sku", "Z-1")
	_, noBoundary := multipartBody(t, "", "sku", "Z-2")
	bad := []struct{ path, body, ct, want string }{
		{productsURL, "sku=&name=x", form, `{"sku": ["This field may not be blank."]}`},
		{productsURL, "sku=Z&name=N&price=abc&category_id=x", form,
			`{"price": ["A valid number is required."], "category_id": ["Incorrect type. Expected pk value, received str."]}`},
		{productsURL, "name=N", form, `{"sku": ["This field is required."]}`},
		{productsURL, "sku=%zz&name=N", form, `{"detail": "Form parse error - the body is not valid URL-encoded form data."}`},
		{productsURL, "sku=%ff&name=N", form, `{"sku": ["Enter valid UTF-8 text."]}`},
		{productsURL, fileBody, fileCT, `{"name": ["Files are not accepted: send this value as a form field."]}`},
		{productsURL, "--x\r\nbroken", noBoundary, `{"detail": "Multipart form parse error - the body is not valid multipart data."}`},
		{productsURL, "sku=Z&name=N", "multipart/form-data", `{"detail": "Multipart form parse error - the Content-Type has no boundary."}`},
		{detail, "price=1.234", form, `{"price": ["Ensure that there are no more than 2 decimal places."]}`},
		{things, "label=x&meta={nope", form, `{"meta": ["Value must be valid JSON."]}`},
		{globex, "sku=G-1&name=Again", form, `{"sku": ["product with this sku already exists."]}`},
	}
	for _, b := range bad {
		tenant := "acme"
		if strings.HasPrefix(b.path, "/api/globex/") {
			tenant = "globex"
		}
		method := "POST"
		if b.path == detail {
			method = "PATCH"
		}
		r := a.do(method, b.path, tenant, b.body, "Content-Type", b.ct)
		if r.status != 400 {
			t.Errorf("%s %q: %s, want 400", b.path, b.body, r)
			continue
		}
		jsonEqual(t, b.body, r.body, b.want)
	}
	if r := a.do("POST", productsURL, "acme", "sku=Z", "Content-Type", "text/plain"); r.status != 415 {
		t.Errorf("text/plain: %s", r)
	}
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows changed: %s → %s", before, after)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.things WHERE label = 'c'`); n != 1 {
		t.Fatal("a thing changed")
	}
}

// tsRE is a timestamp as DRF prints one: six fraction digits, Z when it has a zone.
var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z?$`)

// DRF prints datetimes with six fraction digits; so does the API, whatever the value.
func TestDRFTimestampWidth(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("misc", kindsModule)
	want := map[string]string{
		"2024-03-01T10:00:00Z":          "2024-03-01T10:00:00.000000",
		"2024-03-01T10:00:00.5Z":        "2024-03-01T10:00:00.500000",
		"2024-03-01T10:00:00.944+01:00": "2024-03-01T09:00:00.944000",
		"2024-03-01T10:00:00.000001Z":   "2024-03-01T10:00:00.000001",
		"2024-03-01T10:00:00.12345Z":    "2024-03-01T10:00:00.123450",
	}
	for in, out := range want {
		for _, tenant := range []string{"acme", "globex"} {
			r := a.do("POST", "/api/"+tenant+"/misc/things/", tenant, fmt.Sprintf(`{"label": "x", "seen": %q}`, in))
			if r.status != 201 || r.obj(t)["seen"] != out {
				t.Errorf("%s %s: %s, want %s", tenant, in, r, out)
			}
		}
	}
	a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "A"}`)
	a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "G-1", "name": "G"}`)
	a.Exec(`UPDATE tenant_acme.products SET created_at = '2026-12-02T18:12:00.944Z', updated_at = '2026-12-02T18:12:00Z'`)
	p := a.must(200, "GET", productsURL+"1/", "acme", "")
	if p["created_at"] != "2026-12-02T18:12:00.944000Z" || p["updated_at"] != "2026-12-02T18:12:00.000000Z" {
		t.Fatalf("acme: %v %v", p["created_at"], p["updated_at"])
	}
	g := a.must(200, "GET", "/api/globex/product/products/1/", "globex", "")
	if g["created_at"] == p["created_at"] {
		t.Fatal("globex's row changed with acme's")
	}
	for _, path := range []string{productsURL, "/api/acme/misc/things/?limit=1000"} {
		for _, tenant := range []string{"acme", "globex"} {
			path := strings.Replace(path, "/acme/", "/"+tenant+"/", 1)
			m := a.must(200, "GET", path, tenant, "")
			for _, row := range m["results"].([]any) {
				for _, k := range []string{"created_at", "updated_at", "seen"} {
					if v, ok := row.(map[string]any)[k]; ok && !tsRE.MatchString(v.(string)) {
						t.Errorf("%s %s: %q", path, k, v)
					}
				}
			}
		}
	}
	// Bad input: a timestamp that is not one is refused, nothing stored.
	before := a.Count(`SELECT count(*) FROM tenant_acme.things`)
	r := a.do("POST", "/api/acme/misc/things/", "acme", `{"label": "x", "seen": "2024-03-01T10:00:00.1234567890123Zz"}`)
	if r.status != 400 || r.obj(t)["seen"] == nil {
		t.Fatalf("bad timestamp: %s", r)
	}
	if a.Count(`SELECT count(*) FROM tenant_acme.things`) != before {
		t.Fatal("a thing was stored")
	}
}
