package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/modules"
)

type dbOp int

const (
	opRead dbOp = iota
	opWrite
	opDelete
)

// paramRE finds the bind parameter PostgreSQL names when it cannot convert one.
var paramRE = regexp.MustCompile(`parameter \$(\d+)`)

// dbError answers a failed statement. Constraint violations and bad values become DRF's 400
// {"field": ["message"]}, found by SQLSTATE and column (the error's column, the Detail's
// "Key (col)=", or the parameter it names), never by constraint name alone. argNames gives the
// field (a write) or query parameter (a list) of each bind parameter.
func (a *Handler) dbError(w http.ResponseWriter, r *http.Request, rc *reqCtx, op dbOp, err error, argNames []string) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || r.Context().Err() != nil {
			writeDetail(w, http.StatusServiceUnavailable, "The request was cancelled or timed out.")
			return
		}
		a.serverError(w, r, "query", err)
		return
	}
	if op != opRead {
		a.p.NoteWrite(err)
	}
	if _, refused := controlplane.WriteRefusal(err); refused {
		// A full disk, a read-only database: every write fails alike for a while; /readyz says
		// which, the client only that it may try again.
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, "The database does not accept writes right now; try again later.")
		return
	}
	res := rc.t.res
	if d, ok := driftOf(rc, r.Method, pgErr); ok {
		a.driftError(w, rc, d)
		return
	}
	var errs fieldErrors
	switch code := pgErr.Code; {
	case code == "54000":
		// An index row over PostgreSQL's limit (a value of a few KB in a unique text column).
		// The error names only the index: the longest text given is the one to blame.
		errs.add(longestText(res, rc.input), "Ensure this value is shorter: it is too long to be indexed.")
	case code == "23505":
		cols, _ := detailKey(pgErr.Detail)
		switch {
		case len(cols) == 1 && isColumn(res, cols[0]):
			errs.add(cols[0], singular(res.Table)+" with this "+label(cols[0], false)+" already exists.")
		case len(cols) > 1:
			errs.add("non_field_errors", "The fields "+strings.Join(cols, ", ")+" must make a unique set.")
		default:
			errs.add("non_field_errors", "A "+singular(res.Table)+" with these values already exists.")
		}
	case code == "23503" && op == opDelete:
		from := "other rows"
		if i := strings.Index(pgErr.Detail, `referenced from table "`); i >= 0 {
			rest := pgErr.Detail[i+len(`referenced from table "`):]
			if j := strings.IndexByte(rest, '"'); j >= 0 {
				from = shardless(rest[:j])
			}
		}
		writeDetail(w, http.StatusConflict, "Cannot delete this "+singular(res.Table)+": "+from+" still refer to it.")
		return
	case code == "23503":
		cols, vals := detailKey(pgErr.Detail)
		if len(cols) == 1 && isColumn(res, cols[0]) {
			v := ""
			if len(vals) == 1 {
				v = vals[0]
			}
			errs.add(cols[0], "Invalid pk "+strconv.Quote(v)+" - object does not exist.")
		} else {
			errs.add("non_field_errors", "A referenced object does not exist.")
		}
	case code == "23514":
		cols, def := a.checkColumns(r.Context(), rc, pgErr.ConstraintName)
		msg := "Ensure this value satisfies " + def + "."
		if def == "" {
			msg = "This value violates a check constraint."
		}
		if len(cols) == 1 && isColumn(res, cols[0]) {
			errs.add(cols[0], msg)
		} else {
			errs.add("non_field_errors", strings.Replace(msg, "this value", "the values", 1))
		}
	case code == "23502":
		col := pgErr.ColumnName
		if !isColumn(res, col) {
			col = "non_field_errors"
		}
		errs.add(col, msgNull)
	case strings.HasPrefix(code, "22"):
		col := paramName(pgErr.Where, argNames)
		if col == "" {
			col = "non_field_errors"
		}
		errs.add(col, dataErrorMessage(code, res, col))
	case code == "40001" || code == "40P01" || code == "55P03" || code == "57014" || strings.HasPrefix(code, "53"):
		w.Header().Set("Retry-After", "1")
		writeDetail(w, http.StatusServiceUnavailable, "The database is busy; try again.")
		return
	default:
		a.serverError(w, r, "query", err)
		return
	}
	writeFieldErrors(w, errs)
}

func isColumn(res *modules.Resource, name string) bool {
	_, ok := res.Column(name)
	return ok
}

// detailKey parses the "Key (a, b)=(1, 2) ..." of a unique or foreign key violation.
func detailKey(detail string) (cols, vals []string) {
	rest, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return nil, nil
	}
	i := strings.Index(rest, ")=(")
	if i < 0 {
		return nil, nil
	}
	for _, c := range strings.Split(rest[:i], ", ") {
		cols = append(cols, strings.Trim(c, `"`))
	}
	rest = rest[i+3:]
	if j := strings.LastIndex(rest, ") "); j >= 0 {
		rest = rest[:j]
	} else {
		rest = strings.TrimSuffix(rest, ")")
	}
	if len(cols) == 1 {
		vals = []string{rest}
	} else {
		vals = strings.Split(rest, ", ")
	}
	return cols, vals
}

// paramName finds the field or query parameter of the bind parameter PostgreSQL names in where.
func paramName(where string, argNames []string) string {
	m := paramRE.FindStringSubmatch(where)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 || n > len(argNames) {
		return ""
	}
	return argNames[n-1]
}

// dataErrorMessage says what is wrong with a value PostgreSQL refused (SQLSTATE class 22).
func dataErrorMessage(code string, res *modules.Resource, name string) string {
	var kind modules.Kind
	if i := strings.LastIndex(name, "__"); i > 0 {
		name = name[:i] // a filter: field__lookup
	}
	if c, ok := res.Column(name); ok {
		kind = c.Kind
	}
	switch code {
	case "22021", "22P05":
		return msgNullChar
	case "22003":
		return "Ensure this value is within the range of its type."
	case "22001":
		return "Ensure this field is not longer than its type allows."
	case "22007", "22008":
		if kind == modules.KindDate {
			return msgInvalidDate
		}
		return msgInvalidTime
	}
	switch kind {
	case modules.KindInt:
		return msgInvalidInt
	case modules.KindFloat, modules.KindNumeric:
		return msgInvalidNum
	case modules.KindJSON:
		return "Value must be valid JSON."
	}
	return msgInvalidValue
}

// checkColumns finds the columns and definition of the check constraint a violation names,
// from the catalog. Citus names a shard's constraint with the shard id appended.
func (a *Handler) checkColumns(ctx context.Context, rc *reqCtx, name string) ([]string, string) {
	rows, err := a.db.Query(ctx, `SELECT c.conname, pg_get_constraintdef(c.oid),
			coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
				WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)), '{}')
		FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'c'`, rc.t.qname)
	if err != nil {
		return nil, ""
	}
	defer rows.Close()
	for rows.Next() {
		var cname, def string
		var cols []string
		if err := rows.Scan(&cname, &def, &cols); err != nil {
			return nil, ""
		}
		if name == cname || (strings.HasPrefix(name, cname+"_") && isDigits(name[len(cname)+1:])) {
			return cols, def
		}
	}
	return nil, ""
}

// shardless is a table name as the user knows it. On Citus a worker reports the shard it ran on,
// "order_lines_102008": the shard id is appended after an underscore. Citus numbers shards from
// 102008 up, so only a suffix of six or more digits is taken as one; "orders_2024" stays whole.
func shardless(name string) string {
	i := strings.LastIndexByte(name, '_')
	if i <= 0 || len(name)-i-1 < 6 || !isDigits(name[i+1:]) {
		return name
	}
	return name[:i]
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// singular is a table's name as DRF names a model in messages: "stock_items" → "stock item".
func singular(table string) string {
	s := strings.ReplaceAll(table, "_", " ")
	switch {
	case strings.HasSuffix(s, "ies"):
		return s[:len(s)-3] + "y"
	case strings.HasSuffix(s, "sses"), strings.HasSuffix(s, "xes"), strings.HasSuffix(s, "ches"), strings.HasSuffix(s, "shes"):
		return s[:len(s)-2]
	case strings.HasSuffix(s, "ss"):
		return s
	case strings.HasSuffix(s, "s"):
		return s[:len(s)-1]
	}
	return s
}

// label is a column's name as Django labels a field: "category_id" → "Category id".
func label(name string, capital bool) string {
	if name == "id" {
		return "ID"
	}
	s := strings.ReplaceAll(name, "_", " ")
	if capital && s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// longestText is the field of the longest string among a write's values.
func longestText(res *modules.Resource, input []colArg) string {
	name, n := "non_field_errors", -1
	for _, in := range input {
		if v, ok := in.val.(string); ok && len(v) > n {
			name, n = res.Columns[in.col].Name, len(v)
		}
	}
	return name
}
