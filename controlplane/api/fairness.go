package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane/fair"
)

// No tenant and no client can starve the others (see package fair): a request is admitted
// against its tenant's limits once its token is known; its first statement waits for a slot of
// its tenant's share of the pool; its answer is read whole (or in parts of the request's memory
// budget) and its slot given back before it is written, so that a client that reads slowly holds
// memory, within its tenant's share, and never a connection.

// admit starts the request's fairness bookkeeping for its tenant; on refusal it has written the
// 429. An admitted request ends with done.
func (a *Handler) admit(w http.ResponseWriter, rc *reqCtx, tenant string) bool {
	if err := a.fair.Admit(&rc.fr, tenant); err != nil {
		th, _ := fair.AsThrottled(err)
		writeThrottled(w, th)
		return false
	}
	return true
}

// done ends the request's bookkeeping with the status it was answered with.
func (rc *reqCtx) done(w http.ResponseWriter) {
	status := http.StatusOK
	if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
		status = sw.status
	}
	rc.fr.Done(status)
}

// writeThrottled answers as DRF's throttles do: 429, Retry-After, and "Request was throttled.
// Expected available in N seconds."
func writeThrottled(w http.ResponseWriter, th *fair.Throttled) {
	w.Header().Set("Retry-After", strconv.Itoa(th.Seconds()))
	writeDetail(w, http.StatusTooManyRequests, th.Detail())
}

// query, queryRow and exec run a statement of the request once it holds a slot of its tenant's
// share; a refused wait is a *fair.Throttled, which dbError answers with a 429.
func (rc *reqCtx) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := rc.fr.Acquire(ctx); err != nil {
		return nil, err
	}
	return rc.db.Query(ctx, sql, args...)
}

func (rc *reqCtx) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := rc.fr.Acquire(ctx); err != nil {
		return errRow{err}
	}
	return rc.db.QueryRow(ctx, sql, args...)
}

func (rc *reqCtx) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := rc.fr.Acquire(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return rc.db.Exec(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// statementTimeout is the SQLSTATE of a statement cancelled: by the server's statement timeout
// when the request is still there to answer.
const statementTimeout = "57014"

// msgTimeout answers a statement stopped by the statement timeout. It is a 503, not a 400: the
// same request may well run in time when the database is less busy or the tenant smaller.
const msgTimeout = "The request took longer than the server allows and was stopped; ask for less " +
	"(a smaller page, narrower filters, fewer or longer search words) or try again later."
