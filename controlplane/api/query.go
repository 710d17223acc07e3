package api

import (
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
	where         string // "" or " WHERE ..."
	order         string // " ORDER BY ..."
	args          []any
	argNames      []string // the query parameter of each argument, for error messages
}

// lookups are the filter suffixes: field__gt=v.
var lookups = []string{"exact", "gt", "gte", "lt", "lte", "in", "contains", "isnull"}

var lookupOps = map[string]string{"exact": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

// maxInList bounds field__in lists.
const maxInList = 1000

// parseListQuery validates a list request's query string against resource res: limit, offset,
// ordering and filters on declared columns. Anything else is an error naming the parameter.
// detail is set for a query string that does not parse at all.
func parseListQuery(res *modules.Resource, rawQuery string) (q *listQuery, errs fieldErrors, detail string) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, nil, "Malformed query string."
	}
	q = &listQuery{limit: defaultPageLimit}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	// Sorted, so that the same filters give the same SQL text and reuse a prepared statement.
	slices.Sort(keys)
	var where []string
	var order string
	for _, key := range keys {
		vs := vals[key]
		if len(vs) != 1 {
			errs.add(key, "Give this parameter only once.")
			continue
		}
		v := vs[0]
		if !utf8.ValidString(key) || !utf8.ValidString(v) {
			errs.add(key, "Enter valid UTF-8 text: this parameter's percent-encoded bytes are not UTF-8.")
			continue
		}
		switch key {
		case "limit":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch {
			case err != nil:
				errs.add(key, msgInvalidInt)
			case n < 1:
				errs.add(key, "Ensure this value is greater than or equal to 1.")
			default:
				q.limit = min(n, maxPageLimit)
			}
			continue
		case "offset":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch {
			case err != nil:
				errs.add(key, msgInvalidInt)
			case n < 0:
				errs.add(key, "Ensure this value is greater than or equal to 0.")
			default:
				q.offset = n
			}
			continue
		case "ordering":
			o, msg := parseOrdering(res, v)
			if msg != "" {
				errs.add(key, msg)
			}
			order = o
			continue
		case "format":
			if v != "json" {
				errs.add(key, `Only "json" is served.`)
			}
			continue
		}
		field, lookup := key, "exact"
		if i := strings.LastIndex(key, "__"); i > 0 && slices.Contains(lookups, key[i+2:]) {
			field, lookup = key[:i], key[i+2:]
		}
		c, ok := res.Column(field)
		if !ok {
			errs.add(key, "Unknown query parameter: not a field of "+res.Name+" or a known lookup.")
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

// parseOrdering turns "-price,name" into an ORDER BY clause, with id last to make pages stable.
// Columns are qualified with the table's alias "t" (see tableSQL.listHead).
func parseOrdering(res *modules.Resource, v string) (string, string) {
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
		if !ok {
			return "", "Unknown field " + strconv.Quote(name) + "; order by declared fields only."
		}
		if c.Kind == modules.KindJSON {
			return "", "Cannot order by " + strconv.Quote(name) + ", a JSON field."
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
		return "", ""
	}
	return " ORDER BY " + strings.Join(terms, ", "), ""
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
