package api

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/modules"
)

// listQuery is a list request's query string, validated and turned into SQL. The SQL names
// only the resource's declared columns, quoted; every value is a bind parameter.
type listQuery struct {
	limit, offset int64
	// page is the page number when the request pages as DRF's PageNumberPagination does
	// (page, page_size), 0 when it pages by limit and offset. badPage: the page asked for is
	// not a page number, a 404 once the filters are known to be fine.
	page     int64
	badPage  bool
	lastPage bool   // page=last: the page number is known once the rows are counted
	where    string // "" or " WHERE ..."
	order    string // " ORDER BY ..."
	args     []any
	argNames []string // the query parameter of each argument, for error messages
	// vals is the query string as parsed, which the page links are built from (and change).
	vals url.Values
}

// lookups are the filter suffixes: field__gt=v.
var lookups = []string{"exact", "gt", "gte", "lt", "lte", "in", "contains", "isnull"}

var lookupOps = map[string]string{"exact": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// maxInList bounds field__in lists; maxSearchTerms the words of a search.
const (
	maxInList      = 1000
	maxSearchTerms = 32
)

// pageParams are the query parameters of the two paginations.
type pageParams struct {
	limit, offset, page, pageSize string
	byOffset, byPage              bool
}

// parseListQuery validates a list request's query string against resource res: the paging
// parameters, ordering, search and filters on declared columns. As DRF does, a parameter it
// does not know is ignored (a cache-buster, another client's page parameter), and so is an
// ordering term naming no field. detail is set for a query string that does not parse at all.
func parseListQuery(res *modules.Resource, rawQuery string) (q *listQuery, errs fieldErrors, detail string) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, nil, "Malformed query string."
	}
	q = &listQuery{limit: defaultPageLimit, vals: vals}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	// Sorted, so that the same filters give the same SQL text and reuse a prepared statement.
	slices.Sort(keys)
	var where []string
	var order string
	var pp pageParams
	for _, key := range keys {
		lookup, c := paramColumn(res, key)
		if c == nil && !slices.Contains(reserved, key) {
			continue // not ours: ignored, as DRF ignores it
		}
		vs := vals[key]
		if lookup == "in" && c != nil {
			// A client generated from the OpenAPI document (openapi-fetch) sends an array as the
			// parameter repeated: each one adds to the list, as each comma does.
			vs = []string{strings.Join(vs, ",")}
		}
		if len(vs) != 1 {
			errs.add(key, "Give this parameter only once.")
			continue
		}
		v := vs[0]
		if !utf8.ValidString(v) {
			errs.add(key, "Enter valid UTF-8 text: this parameter's percent-encoded bytes are not UTF-8.")
			continue
		}
		switch key {
		case "limit":
			pp.limit, pp.byOffset = v, true
			continue
		case "offset":
			pp.offset, pp.byOffset = v, true
			continue
		case "page":
			pp.page, pp.byPage = v, true
			continue
		case "page_size":
			pp.pageSize, pp.byPage = v, true
			continue
		case "ordering":
			order = parseOrdering(res, v)
			continue
		case "format":
			if v != "json" {
				errs.add(key, `Only "json" is served.`)
			}
			continue
		case "search":
			clause, arg, msg := searchClause(res, v, len(q.args)+1)
			if msg != "" {
				errs.add(key, msg)
			} else if clause != "" {
				where = append(where, clause)
				q.args, q.argNames = append(q.args, arg...), append(q.argNames, key)
			}
			continue
		}
		clause, args, msg := filterClause(c, lookup, v, len(q.args)+1)
		if msg != "" {
			errs.add(key, msg)
			continue
		}
		where = append(where, clause)
		q.args = append(q.args, args...)
		for range args {
			q.argNames = append(q.argNames, key)
		}
	}
	q.paging(pp, &errs)
	if len(errs) > 0 {
		return nil, errs, ""
	}
	if len(where) > 0 {
		q.where = " WHERE " + strings.Join(where, " AND ")
	}
	if order == "" {
		order = ` ORDER BY "t"."id"`
	}
	q.order = order
	return q, nil, ""
}

// reserved are the query parameters that name no field.
var reserved = []string{"limit", "offset", "page", "page_size", "ordering", "format", "search"}

// paramColumn splits a filter parameter into its column and lookup; c is nil when the field is
// not a column of res (or the lookup is not one of lookups).
func paramColumn(res *modules.Resource, key string) (lookup string, c *modules.Column) {
	field, lookup := key, "exact"
	if i := strings.LastIndex(key, "__"); i > 0 && slices.Contains(lookups, key[i+2:]) {
		field, lookup = key[:i], key[i+2:]
	}
	c, _ = res.Column(field)
	return lookup, c
}

// paging applies the paging parameters. limit/offset are checked and refused as before; with
// neither of them, page/page_size page as DRF's PageNumberPagination does: a page_size that is
// not a positive integer means the default, a page that is not a page number is a 404.
func (q *listQuery) paging(pp pageParams, errs *fieldErrors) {
	if pp.byOffset || !pp.byPage {
		if pp.limit != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(pp.limit), 10, 64)
			switch {
			case err != nil:
				errs.add("limit", msgInvalidInt)
			case n < 1:
				errs.add("limit", "Ensure this value is greater than or equal to 1.")
			default:
				q.limit = min(n, maxPageLimit)
			}
		}
		if pp.offset != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(pp.offset), 10, 64)
			switch {
			case err != nil:
				errs.add("offset", msgInvalidInt)
			case n < 0:
				errs.add("offset", "Ensure this value is greater than or equal to 0.")
			default:
				q.offset = n
			}
		}
		return
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(pp.pageSize), 10, 64); err == nil && n > 0 {
		q.limit = min(n, maxPageLimit)
	}
	q.page = 1
	if pp.page == "" {
		return
	}
	if strings.TrimSpace(pp.page) == "last" {
		q.lastPage = true // DRF's last_page_strings
		return
	}
	n, err := strconv.ParseInt(strings.TrimSpace(pp.page), 10, 64)
	if err != nil {
		// Django's paginator takes a float that is a whole number: "2.0" is page 2.
		f, ferr := strconv.ParseFloat(strings.TrimSpace(pp.page), 64)
		if ferr != nil || f != math.Trunc(f) || f < 1 || f > math.MaxInt64/2 {
			q.badPage = true
			return
		}
		n = int64(f)
	}
	if n < 1 || n-1 > (math.MaxInt64-1)/q.limit {
		q.badPage = true
		return
	}
	q.page, q.offset = n, (n-1)*q.limit
}

// searchClause is DRF's SearchFilter over the resource's writable text columns: every word of
// v (split at spaces and commas) must be contained, case-insensitively, in one of them. It
// binds one parameter, the words as LIKE patterns. "" when v has no words or res no text column.
//
// Its cost is one pass over each row's text, however many words: the text columns are joined
// with ',' (which no word holds, so that no match spans two columns) and lowercased once per row,
// then matched against every pattern. Lowercasing a column once per word instead made a search
// of 32 words over 20 rows of 900 KB take 12 s; this way it takes 0.4 s, nearly all of it the one
// lower() (see docs/api.md). The statement timeout bounds what is left.
func searchClause(res *modules.Resource, v string, n int) (string, []any, string) {
	words := strings.Fields(strings.ReplaceAll(strings.ReplaceAll(v, "\x00", ""), ",", " "))
	if len(words) == 0 {
		return "", nil, ""
	}
	if len(words) > maxSearchTerms {
		return "", nil, "Give at most " + strconv.Itoa(maxSearchTerms) + " search words."
	}
	var cols []string
	for i := range res.Columns {
		if c := &res.Columns[i]; isText(c) && !c.ReadOnly {
			cols = append(cols, `"t".`+qcol(c.Name))
		}
	}
	if len(cols) == 0 {
		return "", nil, ""
	}
	patterns := make([]string, len(words))
	for i, w := range words {
		patterns[i] = "%" + likeEscaper.Replace(w) + "%"
	}
	clause := `lower(concat_ws(',', ` + strings.Join(cols, ", ") + `)) LIKE ALL (ARRAY(SELECT lower("w") FROM unnest($` +
		strconv.Itoa(n) + `::text[]) AS "w"))`
	return clause, []any{patterns}, ""
}

// likeEscaper makes a word match itself in a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// parseOrdering turns "-price,name" into an ORDER BY clause, with id last to make pages stable.
// Columns are qualified with the table's alias "t" (see tableSQL.listHead).
// Terms naming no field, or a JSON field, are dropped, as DRF's OrderingFilter drops them.
func parseOrdering(res *modules.Resource, v string) string {
	var terms []string
	hasID := false
	for _, term := range strings.Split(v, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		desc := strings.HasPrefix(term, "-")
		name := strings.TrimPrefix(term, "-")
		c, ok := res.Column(name)
		if !ok || c.Kind == modules.KindJSON {
			continue
		}
		s := `"t".` + qcol(c.Name)
		if desc {
			s += " DESC"
		}
		terms = append(terms, s)
		hasID = hasID || c.Name == "id"
	}
	if _, ok := res.Column("id"); ok && !hasID {
		terms = append(terms, `"t"."id"`)
	}
	if len(terms) == 0 {
		return ""
	}
	return " ORDER BY " + strings.Join(terms, ", ")
}

// filterClause builds the condition of one filter, its placeholders numbered from n.
func filterClause(c *modules.Column, lookup, v string, n int) (string, []any, string) {
	col := qcol(c.Name)
	ph := "$" + strconv.Itoa(n)
	if lookup == "isnull" {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "t", "yes", "on":
			return col + " IS NULL", nil, ""
		case "false", "0", "f", "no", "off":
			return col + " IS NOT NULL", nil, ""
		}
		return "", nil, msgInvalidBool
	}
	if c.Kind == modules.KindJSON {
		return "", nil, "Only the isnull lookup applies to a JSON field."
	}
	switch lookup {
	case "contains":
		if !isText(c) {
			return "", nil, `The contains lookup applies to text fields only.`
		}
		if strings.IndexByte(v, 0) >= 0 {
			return "", nil, msgNullChar
		}
		// strpos, not LIKE: no wildcard in v means anything.
		return "strpos(" + col + ", " + ph + ") > 0", []any{v}, ""
	case "in":
		parts := strings.Split(v, ",")
		if len(parts) > maxInList {
			return "", nil, "Give at most " + strconv.Itoa(maxInList) + " values."
		}
		vals := make([]any, len(parts))
		for i, p := range parts {
			val, msg := convert(c, strInput(p))
			if msg != "" {
				return "", nil, msg
			}
			vals[i] = val
		}
		if arr, ok := typedArray(c, vals); ok {
			return col + " = ANY(" + ph + ")", []any{arr}, ""
		}
		// A type pgx has no array of here: one parameter each, parsed by PostgreSQL.
		phs := make([]string, len(vals))
		for i := range vals {
			phs[i] = "$" + strconv.Itoa(n+i)
		}
		return col + " IN (" + strings.Join(phs, ", ") + ")", vals, ""
	}
	val, msg := convert(c, strInput(v))
	if msg != "" {
		return "", nil, msg
	}
	return col + " " + lookupOps[lookup] + " " + ph, []any{val}, ""
}

// typedArray makes the array parameter of an IN list from converted values, when pgx has an
// array of their type; ok is false for values PostgreSQL should parse one by one.
func typedArray(c *modules.Column, vals []any) (any, bool) {
	if len(vals) == 0 {
		return nil, false
	}
	switch vals[0].(type) {
	case int64:
		return collect[int64](vals)
	case float64:
		return collect[float64](vals)
	case bool:
		return collect[bool](vals)
	case time.Time:
		return collect[time.Time](vals)
	case pgtype.UUID:
		return collect[pgtype.UUID](vals)
	case string:
		switch {
		case isText(c):
			return collect[string](vals)
		case c.Kind == modules.KindNumeric:
			out := make([]pgtype.Numeric, len(vals))
			for i, v := range vals {
				s, ok := v.(string)
				if !ok || out[i].Scan(s) != nil {
					return nil, false
				}
			}
			return out, true
		}
	}
	return nil, false
}

func collect[T any](vals []any) (any, bool) {
	out := make([]T, len(vals))
	for i, v := range vals {
		t, ok := v.(T)
		if !ok {
			return nil, false
		}
		out[i] = t
	}
	return out, true
}

// fieldErrors are DRF's validation errors, {"field": ["message", ...]}, in the order found.
type fieldErrors []fieldError

type fieldError struct {
	field string
	msgs  []string
}

func (e *fieldErrors) add(field, msg string) {
	for i := range *e {
		if (*e)[i].field == field {
			(*e)[i].msgs = append((*e)[i].msgs, msg)
			return
		}
	}
	*e = append(*e, fieldError{field: field, msgs: []string{msg}})
}

func (e fieldErrors) appendJSON(buf []byte) []byte {
	buf = append(buf, '{')
	for i, fe := range e {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, fe.field)
		buf = append(buf, ':', '[')
		for j, m := range fe.msgs {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, m)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}
