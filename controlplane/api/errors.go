package api

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/fair"
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
	if th, ok := fair.AsThrottled(err); ok {
		writeThrottled(w, th) // its tenant's share of the pool was taken, and its queue full
		return
	}
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
		rc.fr.Release(0) // a repair waits for the reconciler, not for a connection of the API
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
		if t, ok := referencingTable(rc, quoted(pgErr.Detail, `referenced from table "`)); ok {
			from = t
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
		name, cols, def := a.checkColumns(r.Context(), rc, cmp.Or(pgErr.ConstraintName, quoted(pgErr.Message, `check constraint "`)))
		if len(cols) == 1 && isColumn(res, cols[0]) {
			errs.add(cols[0], checkMessage(name, cols[0], def))
		} else {
			errs.add("non_field_errors", checkMessage(name, "", def))
		}
	case code == "23502":
		col := cmp.Or(pgErr.ColumnName, quoted(pgErr.Message, `null value in column "`))
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
	case code == statementTimeout && r.Context().Err() == nil:
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, msgTimeout)
		return
	case code == "40001" || code == "40P01" || code == "55P03" || code == statementTimeout || strings.HasPrefix(code, "53"):
		w.Header().Set("Retry-After", "1")
		writeDetail(w, http.StatusServiceUnavailable, "The database is busy; try again.")
		return
	default:
		a.serverError(w, r, "query", err)
		return
	}
	writeFieldErrors(w, errs)
}

// boundRE matches a check that bounds one column by a number, as pg_get_constraintdef prints it:
// CHECK ((qty >= 0)), CHECK ((price >= (0)::numeric)), CHECK ((debt <= '-1'::integer)).
var boundRE = regexp.MustCompile(`^CHECK \(\(("?[a-z_][a-z0-9_]*"?) (>=|>|<=|<) \(?'?(-?[0-9]+(?:\.[0-9]+)?)'?\)?(?:::[a-z ]+(?:\([0-9, ]+\))?)?\)\)(?: NOT VALID)?$`)

// checkMessage words a violated check as DRF would: a bound of column col by a number as
// Django's MinValueValidator and MaxValueValidator say it, anything else as Django says a
// constraint is violated, by its name. The check's SQL is never shown.
func checkMessage(name, col, def string) string {
	if m := boundRE.FindStringSubmatch(def); m != nil && col != "" && strings.Trim(m[1], `"`) == col {
		words := map[string]string{">=": "greater than or equal to", ">": "greater than", "<=": "less than or equal to", "<": "less than"}
		return "Ensure this value is " + words[m[2]] + " " + m[3] + "."
	}
	if name == "" {
		return "This value violates a check constraint."
	}
	return "Constraint “" + name + "” is violated."
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

// checkColumns finds the declared name, the columns and the definition of the check constraint
// a violation names, from the catalog. Citus names a shard's constraint with the shard id
// appended.
func (a *Handler) checkColumns(ctx context.Context, rc *reqCtx, name string) (string, []string, string) {
	rows, err := rc.query(ctx, `SELECT c.conname, pg_get_constraintdef(c.oid),
			coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
				WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)), '{}')
		FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'c'`, rc.t.qname)
	if err != nil {
		return "", nil, ""
	}
	defer rows.Close()
	var cols []string
	def, found := "", ""
	for rows.Next() {
		var cname, d string
		var cs []string
		if err := rows.Scan(&cname, &d, &cs); err != nil {
			return "", nil, ""
		}
		// The constraint itself wins over one whose shard's name it could be.
		if shardOf(name, cname) && (found == "" || cname == name) {
			cols, def, found = cs, d, cname
		}
	}
	return found, cols, def
}

// On Citus, an error a worker raised reaches the coordinator's client with its SQLSTATE,
// message and detail only: no schema, table, column or constraint field. Its messages name
// shards, whose names are the table's or the constraint's with "_<shard id>" appended. What the
// fields would say is then read from the message, and a name is matched against the names the
// tenant's modules declare, never shown as it came.

// quoted is the name inside the double quotes that follow prefix in msg ("" when there is none).
func quoted(msg, prefix string) string {
	_, rest, ok := strings.Cut(msg, prefix)
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return ""
	}
	return name
}

// shardOf reports whether name is declared, or one of its Citus shards ("declared_102008").
func shardOf(name, declared string) bool {
	rest, ok := strings.CutPrefix(name, declared)
	return ok && (rest == "" || rest[0] == '_' && isDigits(rest[1:]))
}

// referencingTable is the table of the tenant's modules that name (a table, or a shard of one,
// as a foreign key violation reports it) is, among those with a foreign key to the request's
// table. A table of that very name wins over one whose shard it could be ("items_2024").
func referencingTable(rc *reqCtx, name string) (string, bool) {
	found := ""
	for _, res := range rc.tenant.reg.Resources(rc.tenant.modules) {
		if name == "" || !shardOf(name, res.Table) || !slices.ContainsFunc(res.Columns, func(c modules.Column) bool {
			return c.References == rc.t.res.Table
		}) {
			continue
		}
		if res.Table == name {
			return name, true
		}
		found = res.Table
	}
	return found, found != ""
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
