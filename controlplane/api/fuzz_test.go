package api

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/modules"
)

func fuzzResource(t testing.TB, module, name string) *modules.Resource {
	t.Helper()
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	res, ok := reg.Resource(module, name)
	if !ok {
		t.Fatalf("no resource %s/%s", module, name)
	}
	return res
}

var (
	placeholderRE = regexp.MustCompile(`\$(\d+)`)
	sqlWordRE     = regexp.MustCompile(`[A-Za-z_]+`)
	sqlWords      = map[string]bool{"WHERE": true, "AND": true, "IS": true, "NOT": true, "NULL": true, "ANY": true,
		"IN": true, "strpos": true, "ORDER": true, "BY": true, "DESC": true,
		// search
		"EXISTS": true, "SELECT": true, "FROM": true, "unnest": true, "text": true, "AS": true, "w": true,
		"lower": true, "concat_ws": true, "LIKE": true, "ALL": true, "ARRAY": true}
)

// checkSQLFragment asserts that a generated fragment holds nothing but quoted declared columns,
// placeholders and the parser's own keywords: no text of the request reaches the SQL.
func checkSQLFragment(t *testing.T, res *modules.Resource, frag string) {
	rest := frag
	for _, c := range res.Columns {
		rest = strings.ReplaceAll(rest, `"t".`+qcol(c.Name), " ")
		rest = strings.ReplaceAll(rest, qcol(c.Name), " ")
	}
	rest = strings.ReplaceAll(rest, `"w"."w"`, " ")
	rest = strings.ReplaceAll(rest, `"w"`, " ")
	rest = strings.ReplaceAll(rest, `::text[]`, " text ")
	rest = strings.ReplaceAll(rest, `concat_ws(',',`, " concat_ws(")
	rest = placeholderRE.ReplaceAllString(rest, " ")
	if strings.Trim(rest, " ()=<>,_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0") != "" {
		t.Fatalf("fragment %q: unexpected characters in %q", frag, rest)
	}
	for _, w := range sqlWordRE.FindAllString(rest, -1) {
		if !sqlWords[w] {
			t.Fatalf("fragment %q: unexpected word %q", frag, w)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10&offset=5", "limit=0", "limit=-3", "limit=100000", "offset=abc", "limit=1&limit=2",
		"ordering=-price,name", "ordering=price,,-id", "ordering=-colour", "ordering=name;drop table x", `ordering="name"`,
		"price__gt=1.5&sku__in=a,b", "price__in=1,2.5,1e2", "price__lte=NaN", "id__in=1,2,3", "id__in=", "id=9223372036854775808",
		"description__isnull=true", "category_id__isnull=0", "name__contains=%25_", "name__contains=%00",
		"created_at__gte=2024-01-01T00:00:00Z", "created_at__lt=2024-01-01 10:00", "updated_at=garbage",
		"a=%zz", "sku__between=1", "sku__in__in=1", "__in=1", "format=json", "format=xml", "x'; drop table y; --=1",
		"search=anvil", "search=a,b%20c", "search=%00", "search=", "page=2&page_size=10", "page=0", "page=2.0", "page=x",
		"page_size=0", "page=9223372036854775807&page_size=1000", "limit=5&page=3", "_=123&_=4", "colour=%ff",
	} {
		f.Add(s)
	}
	res := fuzzResource(f, "product", "products")
	f.Fuzz(func(t *testing.T, raw string) {
		q, errs, detail := parseListQuery(res, raw)
		if q == nil {
			if len(errs) == 0 && detail == "" {
				t.Fatal("refused without a reason")
			}
			if !json.Valid(errs.appendJSON(nil)) {
				t.Fatalf("errors are not JSON: %s", errs.appendJSON(nil))
			}
			return
		}
		if len(errs) > 0 || detail != "" {
			t.Fatal("both a query and errors")
		}
		if q.limit < 1 || q.limit > maxPageLimit || q.offset < 0 {
			t.Fatalf("limit %d offset %d", q.limit, q.offset)
		}
		seen := map[int]bool{}
		for _, m := range placeholderRE.FindAllStringSubmatch(q.where, -1) {
			n, _ := strconv.Atoi(m[1])
			if n < 1 || n > len(q.args) || seen[n] {
				t.Fatalf("placeholder $%d of %d args in %q", n, len(q.args), q.where)
			}
			seen[n] = true
		}
		if len(q.argNames) != len(q.args) {
			t.Fatalf("%d argument names for %d args", len(q.argNames), len(q.args))
		}
		if len(seen) != len(q.args) {
			t.Fatalf("%d placeholders for %d args in %q", len(seen), len(q.args), q.where)
		}
		if q.where != "" && !strings.HasPrefix(q.where, " WHERE ") || !strings.HasPrefix(q.order, " ORDER BY ") {
			t.Fatalf("where %q order %q", q.where, q.order)
		}
		checkSQLFragment(t, res, q.where)
		checkSQLFragment(t, res, q.order)
		for _, a := range q.args {
			switch v := a.(type) {
			case int64, float64, bool, time.Time, pgtype.UUID:
			case string:
				if strings.IndexByte(v, 0) >= 0 {
					t.Fatalf("an argument with NUL: %q", v)
				}
			case []int64, []float64, []bool, []time.Time, []string, []pgtype.Numeric, []pgtype.UUID:
			default:
				t.Fatalf("argument of type %T", a)
			}
		}
	})
}

func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `"x"`, `1`, `null`, `{`, `{"sku": "A", "name": "B"}`, ` {"sku": "A", "name": "B"} `,
		`{"sku": "A", "name": "B", "price": 9.5, "category_id": 3, "description": null}`,
		`{"sku": "A", "name": "B", "price": "12345678901.5"}`, `{"sku": "A", "name": "B", "price": "1e-5"}`,
		`{"sku": "A", "name": "B", "price": "-0.00"}`, `{"sku": "A", "name": "B", "price": 1e400}`,
		`{"sku": 5, "name": true}`, `{"sku": "A\u0000"}`, `{"sku": null}`, `{"id": 3, "created_by": "x"}`,
		`{"colour": "red", "sku": "A", "name": "B"}`, `{"category_id": "7"}`, `{"category_id": 7.0}`, `{"category_id": 7.5}`,
		`{"category_id": 99999999999999999999}`, `{"category_id": [1]}`, `{"sku": "A", "sku": "B"}`, `{"sku": "\ud800"}`,
		`{"name": "` + strings.Repeat("n", 300) + `"}`, `{"price": "` + strings.Repeat("9", 1200) + `"}`,
		"{\"\xff\": 1}", `{"a": {"b": [1, 2, {"c": null}]}}`, `{"sku": "A"} trailing`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	products := fuzzResource(f, "product", "products")
	stock := fuzzResource(f, "inventory", "stock-items")
	f.Fuzz(func(t *testing.T, body []byte, requireAll bool) {
		for _, res := range []*modules.Resource{products, stock} {
			vals, errs, perr := decodeBody(res, body, requireAll)
			if perr != "" {
				if vals != nil || errs != nil || !strings.HasPrefix(perr, "JSON parse error - ") {
					t.Fatalf("parse error %q with %v %v", perr, vals, errs)
				}
				continue
			}
			if len(errs) > 0 {
				if vals != nil {
					t.Fatal("values and errors")
				}
				out := errs.appendJSON(nil)
				var back map[string][]string
				if err := json.Unmarshal(out, &back); err != nil {
					t.Fatalf("errors %s are not JSON: %v", out, err)
				}
				for _, fe := range errs {
					if len(fe.msgs) == 0 {
						t.Fatalf("no message for %q", fe.field)
					}
					if utf8.ValidString(fe.field) && len(back[fe.field]) != len(fe.msgs) {
						t.Fatalf("field %q did not survive encoding: %s", fe.field, out)
					}
				}
				continue
			}
			var obj map[string]json.RawMessage
			if len(body) > 0 {
				if err := json.Unmarshal(body, &obj); err != nil {
					t.Fatalf("accepted a body that is not an object: %q", body)
				}
			}
			last := -1
			given := map[string]bool{}
			for _, v := range vals {
				if v.col <= last || v.col >= len(res.Columns) {
					t.Fatalf("columns out of order: %v", vals)
				}
				last = v.col
				c := &res.Columns[v.col]
				given[c.Name] = true
				if c.ReadOnly {
					t.Fatalf("read-only column %s written", c.Name)
				}
				if _, ok := obj[c.Name]; !ok {
					t.Fatalf("column %s written but not in the body", c.Name)
				}
				if v.val == nil {
					if !c.Null {
						t.Fatalf("null for non-null %s", c.Name)
					}
					continue
				}
				switch c.Kind {
				case modules.KindInt:
					n, ok := v.val.(int64)
					lo, hi := intRange(c.SQLType)
					if !ok || n < lo || n > hi {
						t.Fatalf("%s: %v (%T)", c.Name, v.val, v.val)
					}
				case modules.KindNumeric:
					s, ok := v.val.(string)
					if !ok {
						t.Fatalf("%s: %T", c.Name, v.val)
					}
					d, ok := parseDecimal(s)
					if !ok || d.checkPrecision(c.MaxDigits, c.Scale) != "" || strings.ContainsAny(s, "eE+") {
						t.Fatalf("%s: %q", c.Name, s)
					}
					var n pgtype.Numeric
					if err := n.Scan(s); err != nil {
						t.Fatalf("%s: %q does not scan as numeric: %v", c.Name, s, err)
					}
				case modules.KindText:
					s, ok := v.val.(string)
					if !ok || strings.IndexByte(s, 0) >= 0 {
						t.Fatalf("%s: %q", c.Name, v.val)
					}
				}
			}
			if requireAll {
				for _, c := range res.Columns {
					if c.Required() && !given[c.Name] {
						t.Fatalf("required %s missing but accepted", c.Name)
					}
				}
			}
		}
	})
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, out          string
		maxDigits, scale int
		msg              string
	}{
		{"9.5", "9.5", 12, 2, ""},
		{"009.50", "9.50", 12, 2, ""},
		{"-0.00", "0.00", 12, 2, ""},
		{"1e2", "100", 12, 2, ""},
		{"1.5E-1", "0.15", 12, 2, ""},
		{".5", "0.5", 12, 2, ""},
		{"5.", "5", 12, 2, ""},
		{"+7", "7", 12, 2, ""},
		{"9.999", "", 12, 2, "Ensure that there are no more than 2 decimal places."},
		{"1234567890123", "", 12, 2, "Ensure that there are no more than 12 digits in total."},
		{"12345678901.5", "", 12, 2, "Ensure that there are no more than 10 digits before the decimal point."},
		{"0.001", "", 12, 2, "Ensure that there are no more than 2 decimal places."},
	}
	for _, c := range cases {
		d, ok := parseDecimal(c.in)
		if !ok {
			t.Errorf("%q does not parse", c.in)
			continue
		}
		if msg := d.checkPrecision(c.maxDigits, c.scale); msg != c.msg {
			t.Errorf("%q: %q, want %q", c.in, msg, c.msg)
		}
		if c.msg == "" && d.String() != c.out {
			t.Errorf("%q: %q, want %q", c.in, d.String(), c.out)
		}
	}
	for _, bad := range []string{"", ".", "-", "1e", "1e+", "NaN", "Infinity", "1_000", "0x10", "1.2.3", " 1", "1e99999"} {
		if _, ok := parseDecimal(bad); ok {
			t.Errorf("%q parses", bad)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `q"uote\`, "ctl\x00\x01\n\r\t\x1f", "é ü 日本", "\u2028\u2029", "bad\xffutf8", "<&>"} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, b, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Errorf("%q → %s → %q", s, b, back)
		}
	}
}

func TestAppendTimestamp(t *testing.T) {
	t.Parallel()
	for _, ts := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC),
		time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 100000000, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 1000, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		for _, zone := range []bool{true, false} {
			layout := naiveLayout
			if zone {
				layout = timeLayout
			}
			if got, want := string(appendTimestamp(nil, ts, zone)), ts.Format(layout); got != want {
				t.Errorf("%v zone %v: %s, want %s", ts, zone, got, want)
			}
		}
	}
}
