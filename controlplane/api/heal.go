package api

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// A request never meets a broken tenant: when one of its statements fails because an object the
// tenant's modules declare is missing or changed (a table dropped by hand, a column altered by a
// migration script), the API reconciles the tenant on demand through the Plane, the one writer of
// a schema, waits for it as long as ReadyWait, and runs the request once more. Every statement a
// request runs is one statement that either happened whole or not at all, so running it again is
// safe.

// driftCodes are the SQLSTATEs that say a statement met a schema other than the declared one.
var driftCodes = map[string]string{
	"3F000": "invalid schema name",
	"42P01": "undefined table",
	"42703": "undefined column",
	"42704": "undefined object",
	"42883": "undefined function",
	"42804": "datatype mismatch",
}

// drift is what a statement met: the SQLSTATE and what it says of the object, for the event.
// stalePlan marks a statement a connection had prepared before its table changed: nothing to
// repair, the request just runs again.
type drift struct {
	method, resource string
	code, message    string
	stalePlan        bool
}

// maxStalePlanRuns bounds the runs of a request whose statements meet prepared statements made
// stale by a schema change. pgx drops a statement from the connection it failed on, so each run
// clears one connection; a run may take another connection that still holds its own copy.
const maxStalePlanRuns = 20

// isStalePlan reports whether a statement failed because the connection had prepared it before
// a change of its table's columns ("cached plan must not change result type"): possible only
// where the URL asks for pgx's prepared statements (default_query_exec_mode=cache_statement).
// The routine tells it from other 0A000 errors whatever the server's language.
func isStalePlan(pgErr *pgconn.PgError) bool {
	return pgErr.Code == "0A000" && (pgErr.Routine == "RevalidateCachedQuery" ||
		strings.Contains(pgErr.Message, "cached plan must not change result type"))
}

// String is the repair's cause as the tenant's event records it: for operators, never clients.
func (d *drift) String() string {
	return fmt.Sprintf("data API %s %s: SQLSTATE %s (%s): %s", d.method, d.resource, d.code, driftCodes[d.code], d.message)
}

// driftOf reports whether a failed statement met drift of the request's resource, one the
// tenant's modules declare. Decided by SQLSTATE alone: the statements the API builds name only
// the resource's table and its declared columns, so an undefined table or column is one of those.
func driftOf(rc *reqCtx, method string, pgErr *pgconn.PgError) (*drift, bool) {
	if isStalePlan(pgErr) && rc.t != nil {
		return &drift{method: method, resource: rc.t.res.Module + "/" + rc.t.res.Name, code: pgErr.Code, message: pgErr.Message, stalePlan: true}, true
	}
	if _, ok := driftCodes[pgErr.Code]; !ok || rc.t == nil || !slices.Contains(rc.tenant.modules, rc.t.res.Module) {
		return nil, false
	}
	// The message names the tenant's schema; the event names the tenant already.
	msg := strings.ReplaceAll(pgErr.Message, rc.tenant.schema+".", "")
	return &drift{method: method, resource: rc.t.res.Module + "/" + rc.t.res.Name, code: pgErr.Code, message: msg}, true
}

// driftError answers a statement that met drift: on the first run it records the drift for
// serveHealing and writes nothing; on the run after a repair the drift is still there (another
// change came meanwhile), and the client is asked to come back.
func (a *Handler) driftError(w http.ResponseWriter, rc *reqCtx, d *drift) {
	if !rc.lastTry {
		rc.drift = d
		return
	}
	a.forgetTenant(rc.tenant.slug)
	a.log.Warn("api: drift still there after a repair", "tenant", rc.tenant.slug.String(), "cause", d.String())
	w.Header().Set("Retry-After", "1")
	writeDetail(w, http.StatusServiceUnavailable, fmt.Sprintf("Tenant %q cannot serve %s right now; try again later.", rc.tenant.slug, d.resource))
}

// serveHealing runs the request, and when a statement met drift, repairs the tenant and runs it
// once more. A request that began before another request's repair ended first just runs again:
// its failure may be from before that repair, and concurrent requests on one broken tenant make
// one repair, not one each.
func (a *Handler) serveHealing(w http.ResponseWriter, r *http.Request, rc *reqCtx, kind routeKind) {
	if kind == routeRoot {
		a.dispatch(w, r, rc, kind) // runs no statement in the tenant schema
		return
	}
	body := &replayBody{src: r.Body}
	r.Body = body
	start := time.Now()
	stale := 0
	for try := 0; ; try++ {
		rc.drift = nil
		a.dispatch(w, r, rc, kind)
		if rc.drift == nil {
			return
		}
		body.rewind()
		if rc.drift.stalePlan {
			// The failed statement did nothing; the connection it failed on prepares it anew.
			stale++
			rc.lastTry = rc.lastTry || stale >= maxStalePlanRuns
			try--
			continue
		}
		if ended, ok := a.repaired.get(rc.tenant.slug.String(), time.Now()); try == 0 && ok && ended.After(start) {
			continue
		}
		if !a.repair(w, r, rc) {
			return
		}
		rc.lastTry = true
	}
}

// unrepairedTTL is how long a tenant whose repair did not succeed is answered 503 on drift
// without another repair: one inspection per tenant per that time, however many requests.
const unrepairedTTL = 5 * time.Second

// repaired is what one repair of a tenant left.
type repairOutcome struct {
	ts     *tenantState
	failed string // why the repair did not succeed, for clients; "" when it did
}

// repair reconciles the request's tenant for the drift its statement met, toward the generation
// the tenant has applied, one repair per tenant at a time, and makes rc the state it left. It
// reports false when it has written the answer: 404 for a tenant deleted meanwhile, 503 with a
// reason (the kind of problem, no SQL, no object beyond the resource) when the repair did not
// succeed: the tenant's other resources, whose tables are fine, keep answering.
func (a *Handler) repair(w http.ResponseWriter, r *http.Request, rc *reqCtx) bool {
	ctx, slug, d := r.Context(), rc.tenant.slug, rc.drift
	if why, ok := a.unrepaired.get(slug.String(), time.Now()); ok {
		a.cannotServe(w, slug, d, why)
		return false
	}
	call := a.flight.DoChan("repair/"+slug.String(), func() (any, error) {
		ts, failed := a.reconcileTenant(ctx, slug, d.String())
		now := time.Now()
		a.repaired.put(slug.String(), now, now.Add(time.Minute))
		if failed != "" {
			a.unrepaired.put(slug.String(), failed, now.Add(unrepairedTTL))
		}
		return repairOutcome{ts, failed}, nil
	})
	var out repairOutcome
	select {
	case res := <-call:
		out = res.Val.(repairOutcome)
	case <-ctx.Done():
		writeDetail(w, http.StatusServiceUnavailable, "The request was cancelled while the tenant was being repaired.")
		return false
	}
	ts := out.ts
	if ts.notFound || ts.ready {
		a.putState(ts, time.Now())
	}
	var res *modules.Resource
	declared := false
	if ts.reg != nil {
		res, declared = ts.reg.Resource(rc.t.res.Module, rc.t.res.Name)
	}
	switch {
	case ts.notFound || (ts.ready && (!declared || !slices.Contains(ts.modules, res.Module))):
		writeDetail(w, http.StatusNotFound, "Not found.")
		return false
	case out.failed != "":
		a.cannotServe(w, slug, d, out.failed)
		return false
	case ts.ready:
		rc.tenant, rc.t = ts, a.tables.get(ts.reg, ts.schema, res)
		return true
	}
	a.cannotServe(w, slug, d, ts.reason)
	return false
}

// cannotServe answers a request whose resource cannot be used until its tenant's schema is
// repaired: 503, saying which resource and why, in words for clients.
func (a *Handler) cannotServe(w http.ResponseWriter, slug ident.Slug, d *drift, why string) {
	w.Header().Set("Retry-After", fmt.Sprint(int(unrepairedTTL.Seconds())))
	writeDetail(w, http.StatusServiceUnavailable, fmt.Sprintf("Tenant %q cannot serve %s right now. %s", slug, d.resource, why))
}

// replayBody keeps what was read of a request body, so that the request can run again.
type replayBody struct {
	src io.ReadCloser
	buf []byte // every byte read from src so far
	pos int    // how much of buf this run has read
}

func (b *replayBody) Read(p []byte) (int, error) {
	if b.pos < len(b.buf) {
		n := copy(p, b.buf[b.pos:])
		b.pos += n
		return n, nil
	}
	n, err := b.src.Read(p)
	b.buf = append(b.buf, p[:n]...)
	b.pos += n
	return n, err
}

func (b *replayBody) Close() error { return b.src.Close() }

// rewind starts the body again from its first byte.
func (b *replayBody) rewind() { b.pos = 0 }
