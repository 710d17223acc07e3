package api

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ---- responses

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

var jsonContentType = []string{"application/json"}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// writeDetail writes DRF's {"detail": "..."}.
func writeDetail(w http.ResponseWriter, status int, msg string) {
	bp := getBuf()
	b := append(appendJSONString(append((*bp)[:0], `{"detail":`...), msg), '}')
	writeBody(w, status, b)
	*bp = b
	putBuf(bp)
}

// writeFieldErrors writes DRF's 400 {"field": ["message"]}.
func writeFieldErrors(w http.ResponseWriter, errs fieldErrors) {
	bp := getBuf()
	b := errs.appendJSON((*bp)[:0])
	writeBody(w, http.StatusBadRequest, b)
	*bp = b
	putBuf(bp)
}

// serverError logs err and writes a 500 that does not repeat it.
func (a *Handler) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		writeDetail(w, http.StatusServiceUnavailable, "The request was cancelled.")
		return
	}
	if unavailable(err) {
		a.log.Warn("api: "+what+": the database is unavailable", "method", r.Method, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, "The service is unavailable; try again later.")
		return
	}
	a.log.Error("api: "+what, "method", r.Method, "route", r.Pattern, "err", err)
	writeDetail(w, http.StatusInternalServerError, "A server error occurred.")
}

// unavailable says whether err is the database out of reach: no connection could be made, or
// the one in use broke (a restart, a failover), rather than a fault of the request.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF), pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &pgErr):
		// admin_shutdown, crash_shutdown, cannot_connect_now
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return false
}

// baseURL is where links point: the configured public URL, else the scheme and the Host the
// client used (which ServeHTTP has checked against the allowed hosts, when there is a list).
func (a *Handler) baseURL(r *http.Request) string {
	if a.publicURL != "" {
		return a.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (rc *reqCtx) collectionPath() string {
	res := rc.t.res
	return "/api/" + rc.tenant.slug.String() + "/" + res.Module + "/" + res.Name + "/"
}

// ---- GET /api/{tenant}/

func (a *Handler) root(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	base := a.baseURL(r) + "/api/" + rc.tenant.slug.String() + "/"
	bp := getBuf()
	b := append((*bp)[:0], '{')
	for i, res := range rc.tenant.reg.Resources(rc.tenant.modules) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, res.Module+"/"+res.Name)
		b = append(b, ':')
		b = appendJSONString(b, base+res.Module+"/"+res.Name+"/")
	}
	b = append(b, '}')
	writeBody(w, http.StatusOK, b)
	*bp = b
	putBuf(bp)
}

// ---- GET /api/{tenant}/{module}/{resource}/

func (a *Handler) list(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q, errs, detail := parseListQuery(rc.t.res, r.URL.RawQuery)
	if refused(w, detail, errs) {
		return
	}
	if q.badPage {
		writeDetail(w, http.StatusNotFound, msgInvalidPage)
		return
	}
	t := rc.t
	if q.lastPage && !a.findLastPage(w, r, rc, q) {
		return
	}
	if t.bigRows.Load() && t.idIdx >= 0 {
		a.listByIDs(w, r, rc, q)
		return
	}
	stmt, args := t.listStatement(q, q.limit, q.offset)
	rows, err := rc.query(r.Context(), stmt, args...)
	if err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return
	}
	defer rows.Close()
	var count int64
	empty := true
	if rows.Next() {
		raw := rows.RawValues()
		var ok bool
		if count, ok = rawInt64(rows.FieldDescriptions()[0].Format, raw[0]); !ok || len(raw) < 2 {
			rows.Close()
			a.serverError(w, r, "list", errors.New("unexpected count in list result"))
			return
		}
		empty = t.rowIsNull(raw[1:])
	}
	if empty && q.page > 1 {
		// Past the last page: DRF's PageNumberPagination answers 404 (page 1 may be empty).
		rows.Close()
		writeDetail(w, http.StatusNotFound, msgInvalidPage)
		return
	}
	bp := getBuf()
	defer putBuf(bp)
	b := a.appendPageHead((*bp)[:0], r, q, count)
	// The page is read into memory up to the request's budget (fair.Request.Budget); the rows
	// past it give only their ids, and are read again by id once what was read is written. So a
	// client that reads slowly never holds a connection, and a request holds about its budget
	// (or one row, when a row is larger) however large the page. Sizes are as the server sends
	// them; JSON adds its quotes and escapes.
	budget := int(rc.fr.Budget())
	var rest []pendingRow
	n := int64(0)
	for more := !empty; more; more = rows.Next() {
		// After the first row, a row that would take the answer past the budget goes later, and
		// every row after it.
		raw := rows.RawValues()[1:]
		if size := rawSize(raw); n > 0 && t.idIdx >= 0 && (len(rest) > 0 || len(b)+size > budget) {
			id, _ := rawInt64(rows.FieldDescriptions()[t.idIdx+1].Format, raw[t.idIdx])
			rest = append(rest, pendingRow{id: id, size: size})
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = t.appendRow(b, rows, 1)
		n++
	}
	rows.Close()
	*bp = b
	if err := rows.Err(); err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return
	}
	rc.fr.Rows += n
	if len(rest) > 0 {
		t.bigRows.Store(true) // the next page of this table is read as ids first
	}
	if len(rest) == 0 {
		b = append(b, ']', '}')
		*bp = b
		rc.fr.Release(int64(len(b)))
		writeBody(w, http.StatusOK, b)
		return
	}
	rc.fr.Release(int64(len(b)))
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = a.listRest(w, r, rc, b[:0], rest, n > 0)
}

// pendingRow is a row of a page read later, by id, and its size as the page's statement sent it.
type pendingRow struct {
	id   int64
	size int
}

// rawSize is a row's size as the server sent it.
func rawSize(raw [][]byte) int {
	n := 0
	for _, v := range raw {
		n += len(v)
	}
	return n
}

// listRest answers the rows of a page that did not fit in the request's memory budget: in parts
// that fit, each read with a slot of the tenant's share and written with none. A row deleted
// meanwhile is left out, as it would be from a page read a moment later. b is the request's
// buffer, returned for reuse.
func (a *Handler) listRest(w http.ResponseWriter, r *http.Request, rc *reqCtx, b []byte, rest []pendingRow, comma bool) []byte {
	ctx := r.Context()
	t := rc.t
	for len(rest) > 0 {
		if err := rc.fr.Continue(ctx); err != nil {
			a.abortList(r, err)
		}
		budget := int(rc.fr.Budget())
		k, size := 1, rest[0].size
		for k < len(rest) && size+rest[k].size <= budget {
			size += rest[k].size
			k++
		}
		ids := make([]int64, k)
		for i := range ids {
			ids[i] = rest[i].id
		}
		rest = rest[k:]
		rows, err := rc.db.Query(ctx, t.byIDs, t.fmts, ids)
		if err != nil {
			a.abortList(r, err)
		}
		for rows.Next() {
			if comma {
				b = append(b, ',')
			}
			b = t.appendRow(b, rows, 0)
			comma = true
			rc.fr.Rows++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			a.abortList(r, err)
		}
		rc.fr.Release(int64(len(b)))
		if _, err := w.Write(b); err != nil {
			return b[:0] // the client is gone; the server closes the connection
		}
		b = b[:0]
	}
	w.Write([]byte("]}"))
	return b
}

// abortList cuts the connection of a page whose status is sent: the client sees a broken
// answer rather than a short page.
func (a *Handler) abortList(r *http.Request, err error) {
	if r.Context().Err() == nil {
		a.log.Error("api: list: failed mid-answer", "route", r.Pattern, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// listStatement is the count and a page in one statement: one row per object, each led by the
// count, or one row of count and NULLs when the page is empty.
func (t *tableSQL) listStatement(q *listQuery, limit, offset int64) (string, []any) {
	return t.pageStatement(t.listMid, t.listFmts, q, limit, offset)
}

// idsFmts are the result formats of a list of ids and sizes: the count, the id, the size.
var idsFmts = pgx.QueryResultFormats{binaryFormat, binaryFormat, binaryFormat}

// pageStatement is a list statement with mid between its count and its page's WHERE.
func (t *tableSQL) pageStatement(mid string, fmts pgx.QueryResultFormats, q *listQuery, limit, offset int64) (string, []any) {
	n := len(q.args)
	stmt := t.listHead + q.where + mid + q.where + q.order +
		" LIMIT $" + strconv.Itoa(n+1) + " OFFSET $" + strconv.Itoa(n+2) + t.listTail
	args := make([]any, 0, n+3)
	return stmt, append(append(append(args, fmts), q.args...), limit, offset)
}

// listByIDs answers a page of a table known for large rows (tableSQL.bigRows): the count and the
// page's ids and sizes first, then the rows by id in parts that fit the request's memory budget.
func (a *Handler) listByIDs(w http.ResponseWriter, r *http.Request, rc *reqCtx, q *listQuery) {
	t := rc.t
	stmt, args := t.pageStatement(t.listIDsMid, idsFmts, q, q.limit, q.offset)
	rows, err := rc.query(r.Context(), stmt, args...)
	if err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return
	}
	defer rows.Close()
	var count int64
	var rest []pendingRow
	total, ok := 0, true
	for rows.Next() && ok {
		raw := rows.RawValues()
		if count, ok = rawInt64(binaryFormat, raw[0]); !ok || raw[1] == nil {
			continue // the count of an empty page
		}
		id, ok1 := rawInt64(binaryFormat, raw[1])
		size, ok2 := rawInt64(binaryFormat, raw[2])
		ok = ok1 && ok2
		rest = append(rest, pendingRow{id: id, size: int(size)})
		total += int(size)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return
	}
	if !ok {
		a.serverError(w, r, "list", errors.New("unexpected ids in list result"))
		return
	}
	if len(rest) == 0 && q.page > 1 {
		writeDetail(w, http.StatusNotFound, msgInvalidPage)
		return
	}
	if int64(total) <= rc.fr.Budget() {
		t.bigRows.Store(false) // its rows are no longer large: next time, one statement
	}
	bp := getBuf()
	defer putBuf(bp)
	b := a.appendPageHead((*bp)[:0], r, q, count)
	rc.fr.Release(int64(len(b)))
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = a.listRest(w, r, rc, b[:0], rest, false)
}

// findLastPage turns page=last into the number of the last page, counting the rows first (the
// list statement with an empty page); on failure it has written the answer.
func (a *Handler) findLastPage(w http.ResponseWriter, r *http.Request, rc *reqCtx, q *listQuery) bool {
	stmt, args := rc.t.listStatement(q, 0, 0)
	rows, err := rc.query(r.Context(), stmt, args...)
	if err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return false
	}
	var count int64
	ok := rows.Next()
	if ok {
		count, ok = rawInt64(rows.FieldDescriptions()[0].Format, rows.RawValues()[0])
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.dbError(w, r, rc, opRead, err, q.argNames)
		return false
	}
	if !ok {
		a.serverError(w, r, "list", errors.New("unexpected count in list result"))
		return false
	}
	q.page = max(1, (count+q.limit-1)/q.limit)
	q.offset = (q.page - 1) * q.limit
	return true
}

// appendPageHead appends a page's envelope up to its first result: the count and the links.
func (a *Handler) appendPageHead(b []byte, r *http.Request, q *listQuery, count int64) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, count, 10)
	b = a.appendLinks(b, r, q, count)
	return append(b, `,"results":[`...)
}

// appendLinks appends a page's "next" and "previous", as the pagination the request uses
// builds them, from the query string q parsed. Each link sets or removes every paging parameter
// it changes, so one parse serves both.
func (a *Handler) appendLinks(b []byte, r *http.Request, q *listQuery, count int64) []byte {
	b = append(b, `,"next":`...)
	// offset < count-limit, not offset+limit < count: a huge offset must not wrap to page one.
	hasNext := q.offset < count-q.limit
	base := a.baseURL(r)
	if q.page > 0 {
		b = appendPageNumberURL(b, base, r, q.vals, q.page+1, hasNext)
		b = append(b, `,"previous":`...)
		return appendPageNumberURL(b, base, r, q.vals, q.page-1, q.page > 1)
	}
	b = appendPageURL(b, base, r, q.vals, q.limit, q.offset+q.limit, hasNext)
	b = append(b, `,"previous":`...)
	return appendPageURL(b, base, r, q.vals, q.limit, max(q.offset-q.limit, 0), q.offset > 0)
}

// rawInt64 decodes a bigint result value in either format.
func rawInt64(format int16, raw []byte) (int64, bool) {
	if format == binaryFormat {
		if len(raw) != 8 {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(raw)), true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// appendPageURL appends the absolute URL of another page, as DRF's LimitOffsetPagination
// builds it (offset left out on the first page), or null. q is the request's query string,
// which it changes.
func appendPageURL(b []byte, base string, r *http.Request, q url.Values, limit, offset int64, ok bool) []byte {
	if !ok {
		return append(b, "null"...)
	}
	q.Set("limit", strconv.FormatInt(limit, 10))
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	} else {
		q.Del("offset")
	}
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return appendJSONString(b, base+u.RequestURI())
}

// msgInvalidPage is DRF's answer to a page number that is no page.
const msgInvalidPage = "Invalid page."

// appendPageNumberURL appends the absolute URL of page number page, as DRF's
// PageNumberPagination builds it (page left out for page 1; page_size and filters kept), or null.
// q is the request's query string, which it changes.
func appendPageNumberURL(b []byte, base string, r *http.Request, q url.Values, page int64, ok bool) []byte {
	if !ok {
		return append(b, "null"...)
	}
	if page > 1 {
		q.Set("page", strconv.FormatInt(page, 10))
	} else {
		q.Del("page")
	}
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	return appendJSONString(b, base+u.RequestURI())
}

// ---- GET /api/{tenant}/{module}/{resource}/{id}/

func (a *Handler) retrieve(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	rows, err := rc.query(r.Context(), rc.t.getByID, rc.t.fmts, rc.id)
	if err != nil {
		a.dbError(w, r, rc, opRead, err, nil)
		return
	}
	a.writeOneRow(w, r, rc, rows, http.StatusOK, opRead, nil)
}

// writeOneRow answers with the one row rows holds (a RETURNING or a get by id), or 404.
func (a *Handler) writeOneRow(w http.ResponseWriter, r *http.Request, rc *reqCtx, rows pgx.Rows, status int, op dbOp, argNames []string) {
	bp := getBuf()
	defer putBuf(bp)
	b := (*bp)[:0]
	found := rows.Next()
	var id int64
	if found {
		b = rc.t.appendRow(b, rows, 0)
		if i := rc.t.idIdx; i >= 0 {
			id, _ = rawInt64(rows.FieldDescriptions()[i].Format, rows.RawValues()[i])
		}
	}
	rows.Close()
	*bp = b
	if err := rows.Err(); err != nil {
		a.dbError(w, r, rc, op, err, argNames)
		return
	}
	if op != opRead {
		a.p.NoteWrite(nil)
	}
	if !found {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	if status == http.StatusCreated && id > 0 {
		w.Header().Set("Location", a.baseURL(r)+rc.collectionPath()+strconv.FormatInt(id, 10)+"/")
	}
	rc.fr.Rows++
	rc.fr.Release(int64(len(b)))
	writeBody(w, status, b)
}

// ---- POST /api/{tenant}/{module}/{resource}/

func (a *Handler) create(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, ok := a.readBody(w, r)
	if !ok {
		return
	}
	vals, errs, perr := decodeRequest(rc.t.res, r.Header.Get("Content-Type"), body, true)
	rc.input = vals
	if refused(w, perr, errs) {
		return
	}
	stmt, args, argNames := rc.t.writeSQL(false, vals, rc.actor, 0)
	rows, err := rc.query(r.Context(), stmt, append([]any{rc.t.fmts}, args...)...)
	if err != nil {
		a.dbError(w, r, rc, opWrite, err, argNames)
		return
	}
	a.writeOneRow(w, r, rc, rows, http.StatusCreated, opWrite, argNames)
}

// ---- PUT and PATCH /api/{tenant}/{module}/{resource}/{id}/

func (a *Handler) update(w http.ResponseWriter, r *http.Request, rc *reqCtx, partial bool) {
	// As DRF does, a missing object is a 404 before anything is said about the body.
	refuse := func(write func()) {
		if a.exists(w, r, rc) {
			write()
		}
	}
	body, ok := a.readBodyOrDefer(w, r, rc)
	if !ok {
		return
	}
	vals, errs, perr := decodeRequest(rc.t.res, r.Header.Get("Content-Type"), body, !partial)
	rc.input = vals
	switch {
	case perr != "":
		refuse(func() { writeDetail(w, http.StatusBadRequest, perr) })
		return
	case len(errs) > 0:
		refuse(func() { writeFieldErrors(w, errs) })
		return
	}
	stmt, args, argNames := rc.t.writeSQL(true, vals, rc.actor, rc.id)
	rows, err := rc.query(r.Context(), stmt, append([]any{rc.t.fmts}, args...)...)
	if err != nil {
		a.dbError(w, r, rc, opWrite, err, argNames)
		return
	}
	a.writeOneRow(w, r, rc, rows, http.StatusOK, opWrite, argNames)
}

// readBodyOrDefer reads an update's body; when the body is refused, a missing object still
// answers 404 first.
func (a *Handler) readBodyOrDefer(w http.ResponseWriter, r *http.Request, rc *reqCtx) ([]byte, bool) {
	rec := &deferredWriter{header: http.Header{}}
	body, ok := a.readBody(rec, r)
	if ok {
		return body, true
	}
	if a.exists(w, r, rc) {
		rec.replay(w)
	}
	return nil, false
}

// deferredWriter holds a small error response until it is known to be the answer.
type deferredWriter struct {
	header http.Header
	status int
	body   []byte
}

func (d *deferredWriter) Header() http.Header { return d.header }
func (d *deferredWriter) WriteHeader(s int)   { d.status = s }
func (d *deferredWriter) Write(b []byte) (int, error) {
	d.body = append(d.body, b...)
	return len(b), nil
}

func (d *deferredWriter) replay(w http.ResponseWriter) {
	for k, v := range d.header {
		w.Header()[k] = v
	}
	w.WriteHeader(d.status)
	w.Write(d.body)
}

// exists reports whether the request's object exists; when it does not, or the check fails,
// it has written the answer.
func (a *Handler) exists(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	var ok bool
	err := rc.queryRow(r.Context(), rc.t.exists, rc.id).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return false
	}
	if err != nil {
		a.dbError(w, r, rc, opRead, err, nil)
		return false
	}
	return true
}

// ---- DELETE /api/{tenant}/{module}/{resource}/{id}/

func (a *Handler) destroy(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	tag, err := rc.exec(r.Context(), rc.t.delByID, rc.id)
	if err != nil {
		a.dbError(w, r, rc, opDelete, err, nil)
		return
	}
	rc.fr.Release(0)
	a.p.NoteWrite(nil)
	if tag.RowsAffected() == 0 {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// refused writes the 400 for a request whose input did not parse (detail) or did not validate
// (errs), and says whether it did.
func refused(w http.ResponseWriter, detail string, errs fieldErrors) bool {
	switch {
	case detail != "":
		writeDetail(w, http.StatusBadRequest, detail)
	case len(errs) > 0:
		writeFieldErrors(w, errs)
	default:
		return false
	}
	return true
}
