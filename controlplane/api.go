package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/singleflight"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// APIOptions tune the data API.
type APIOptions struct {
	Logger    *slog.Logger  // access log and server errors; nil: the plane's logger
	MaxBody   int64         // largest request body in bytes; 0: 1 MiB
	ReadyWait time.Duration // how long a request waits for its tenant to be reconciled; 0: 10s
}

// apiCacheTTL bounds how long the data API trusts what it read of the catalog: a token's tenant
// and name, and a tenant's schema, status and modules. A token revoked or a tenant deleted or
// changed by another process takes effect within it; a token revoked through this process's
// RevokeToken takes effect at once.
const apiCacheTTL = 2 * time.Second

// The limits of list pages.
const (
	defaultPageLimit = 50
	maxPageLimit     = 1000
)

// api is the data API of one plane. It keeps its caches for its own lifetime.
type api struct {
	p         *Plane
	log       *slog.Logger
	maxBody   int64
	readyWait time.Duration
	mux       *http.ServeMux

	tokens  ttlCache[[32]byte, tokenEntry]
	tenants ttlCache[string, *tenantState]
	tables  tableCache
	flight  singleflight.Group // one on-demand reconcile per tenant at a time
	openapi openapiCache
}

// APIHandler serves the data API (see DESIGN.md, "Data API"):
//
//	GET  /api/openapi.json                              the OpenAPI description (no token needed)
//	GET  /api/{tenant}/                                 the tenant's resources and their URLs
//	GET  /api/{tenant}/{module}/{resource}/             list, with limit/offset, filters, ordering
//	POST /api/{tenant}/{module}/{resource}/             create
//	GET|PUT|PATCH|DELETE /api/{tenant}/{module}/{resource}/{id}/
//	OPTIONS on any of the above                         DRF-style metadata
//
// Every tenant request needs "Authorization: Bearer TOKEN" with a token of that tenant.
func (p *Plane) APIHandler(o APIOptions) http.Handler {
	a := &api{p: p, log: o.Logger, maxBody: o.MaxBody, readyWait: o.ReadyWait}
	if a.log == nil {
		a.log = p.log
	}
	if a.maxBody <= 0 {
		a.maxBody = 1 << 20
	}
	if a.readyWait <= 0 {
		a.readyWait = 10 * time.Second
	}
	a.tokens.max, a.tenants.max = 100_000, 100_000
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("/api/openapi.json", a.serveOpenAPI)
	a.mux.HandleFunc("/api/{tenant}/{$}", a.serveTenant(routeRoot))
	a.mux.HandleFunc("/api/{tenant}/{module}/{resource}/{$}", a.serveTenant(routeList))
	a.mux.HandleFunc("/api/{tenant}/{module}/{resource}/{id}/{$}", a.serveTenant(routeDetail))
	a.mux.HandleFunc("/", a.serveFallback)
	return a
}

// ServeHTTP routes the request and writes its access log line.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	a.mux.ServeHTTP(sw, r)
	ctx := r.Context()
	if !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	tenant := r.PathValue("tenant")
	if ident.ValidateSlug(tenant) != nil {
		tenant = ""
	}
	// Never the Authorization header or the query string: neither belongs in a log.
	a.log.LogAttrs(ctx, slog.LevelInfo, "api request",
		slog.String("method", r.Method),
		slog.String("route", r.Pattern),
		slog.String("tenant", tenant),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)))
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveFallback answers every path no route matches with a JSON 404. (A path that only lacks
// its trailing slash never gets here: http.ServeMux redirects it, keeping the method.)
func (a *api) serveFallback(w http.ResponseWriter, r *http.Request) {
	writeDetail(w, http.StatusNotFound, "Not found.")
}

type routeKind int

const (
	routeRoot routeKind = iota
	routeList
	routeDetail
)

var allowed = map[routeKind]string{
	routeRoot:   "GET, HEAD, OPTIONS",
	routeList:   "GET, POST, HEAD, OPTIONS",
	routeDetail: "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
}

// reqCtx is what the routing of one tenant request established.
type reqCtx struct {
	tenant *tenantState
	actor  string // the token's name: created_by and updated_by
	t      *tableSQL
	id     int64
}

// serveTenant resolves, in this order and before any SQL runs against the tenant: the slug
// (invalid: 404), the token (missing or bad: 401), the token's tenant (another tenant or none:
// the same 404), the tenant's readiness (reconciled on demand; Blocked: 503), the resource
// (module not enabled or unknown: 404) and the method (405).
func (a *api) serveTenant(kind routeKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug := r.PathValue("tenant")
		if ident.ValidateSlug(slug) != nil {
			writeDetail(w, http.StatusNotFound, "Not found.")
			return
		}
		tok, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		if tok.tenant != slug {
			writeDetail(w, http.StatusNotFound, "Not found.")
			return
		}
		ts, ok := a.readyTenant(w, r, slug)
		if !ok {
			return
		}
		rc := &reqCtx{tenant: ts, actor: tok.name}
		if kind != routeRoot {
			module, name := r.PathValue("module"), r.PathValue("resource")
			res, ok := ts.reg.Resource(module, name)
			if !ok || !slices.Contains(ts.modules, module) {
				writeDetail(w, http.StatusNotFound, "Not found.")
				return
			}
			rc.t = a.tables.get(ts.reg, ts.schema, res)
		}
		if kind == routeDetail {
			id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
			if err != nil || id <= 0 {
				writeDetail(w, http.StatusNotFound, "Not found.")
				return
			}
			rc.id = id
		}
		w.Header().Set("Allow", allowed[kind])
		switch m := r.Method; {
		case m == http.MethodOptions:
			a.options(w, r, rc, kind)
		case kind == routeRoot && (m == http.MethodGet || m == http.MethodHead):
			a.root(w, r, rc)
		case kind == routeList && (m == http.MethodGet || m == http.MethodHead):
			a.list(w, r, rc)
		case kind == routeList && m == http.MethodPost:
			a.create(w, r, rc)
		case kind == routeDetail && (m == http.MethodGet || m == http.MethodHead):
			a.retrieve(w, r, rc)
		case kind == routeDetail && (m == http.MethodPut || m == http.MethodPatch):
			a.update(w, r, rc, m == http.MethodPatch)
		case kind == routeDetail && m == http.MethodDelete:
			a.destroy(w, r, rc)
		default:
			writeDetail(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", m))
		}
	}
}

// ---- authentication

type tokenEntry struct {
	valid        bool
	tenant, name string
}

// authenticate reads the bearer token and finds its tenant and name; on failure it has written
// the 401.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request) (tokenEntry, bool) {
	fail := func(msg string) (tokenEntry, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		writeDetail(w, http.StatusUnauthorized, msg)
		return tokenEntry{}, false
	}
	h := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(strings.TrimSpace(h), " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		return fail("Authentication credentials were not provided.")
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > 256 || strings.ContainsAny(secret, " \t") {
		return fail("Invalid token.")
	}
	hash := hashToken(secret)
	epoch := a.p.authEpoch.Load()
	now := time.Now()
	e, ok := a.tokens.get(hash, now, epoch)
	if !ok {
		var err error
		e, err = a.lookupToken(r.Context(), hash)
		if err != nil {
			a.serverError(w, r, "look up token", err)
			return tokenEntry{}, false
		}
		a.tokens.put(hash, e, now.Add(apiCacheTTL), epoch)
	}
	if !e.valid {
		return fail("Invalid token.")
	}
	return e, true
}

func (a *api) lookupToken(ctx context.Context, hash [32]byte) (tokenEntry, error) {
	e := tokenEntry{valid: true}
	err := a.p.pool.QueryRow(ctx, `SELECT tenant, name FROM erpctl.tokens WHERE hash = $1 AND revoked_at IS NULL`,
		hash[:]).Scan(&e.tenant, &e.name)
	if errors.Is(err, pgx.ErrNoRows) {
		return tokenEntry{}, nil
	}
	return e, err
}

// ---- tenant readiness

// tenantState is what the API knows of a tenant for up to apiCacheTTL.
type tenantState struct {
	slug, schema string
	reg          *modules.Registry // the registry its modules and resources come from
	modules      []string
	ready        bool
	// Not ready: notFound, or the 503's reason; retry says whether a reconcile may fix it.
	notFound bool
	reason   string
	retry    bool
}

// readyTenant returns the tenant, reconciling it first when it is not Ready; on failure it has
// written the 404 or 503.
func (a *api) readyTenant(w http.ResponseWriter, r *http.Request, slug string) (*tenantState, bool) {
	ctx := r.Context()
	ts, ok := a.tenants.get(slug, time.Now(), 0)
	if ok && ts.reg != a.p.Registry() {
		ok = false // the modules were reloaded: the desired state may have changed
	}
	if !ok {
		var err error
		if ts, err = a.loadTenant(ctx, slug); err != nil {
			a.serverError(w, r, "read tenant", err)
			return nil, false
		}
		if ts.retry {
			// Not Ready, and a reconcile may fix it: one reconcile per tenant at a time, shared by
			// every request waiting for it, bounded by ReadyWait.
			reg := ts.reg
			call := a.flight.DoChan(slug, func() (any, error) { return a.reconcileTenant(ctx, reg, slug), nil })
			select {
			case res := <-call:
				ts = res.Val.(*tenantState)
			case <-ctx.Done():
				writeDetail(w, http.StatusServiceUnavailable, "The request was cancelled while the tenant was being prepared.")
				return nil, false
			}
		}
		// A tenant that is not ready stays so for the TTL too: at most one reconcile per TTL.
		a.tenants.put(slug, ts, time.Now().Add(apiCacheTTL), 0)
	}
	switch {
	case ts.ready:
		return ts, true
	case ts.notFound:
		writeDetail(w, http.StatusNotFound, "Not found.")
	default:
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, ts.reason)
	}
	return nil, false
}

// loadTenant reads a tenant from the catalog. It is ready when its status is Ready and what was
// last applied is the desired state of the current module registry.
func (a *api) loadTenant(ctx context.Context, slug string) (*tenantState, error) {
	reg := a.p.Registry()
	ts := &tenantState{slug: slug, reg: reg}
	var (
		status, desiredHash, blockedSQL string
		followAll                       bool
		chosen                          []string
	)
	err := a.p.pool.QueryRow(ctx, `SELECT schema_name, status, follow_all, modules, desired_hash, coalesce(blocked_sql, '')
		FROM erpctl.tenants WHERE slug = $1`, slug).Scan(&ts.schema, &status, &followAll, &chosen, &desiredHash, &blockedSQL)
	if errors.Is(err, pgx.ErrNoRows) {
		ts.notFound = true
		return ts, nil
	}
	if err != nil {
		return nil, err
	}
	enabled, eerr := enabledModules(reg, followAll, chosen)
	current := eerr == nil && desiredHash == reg.Hash(enabled)
	ts.modules = enabled
	switch {
	case current && status == StatusReady:
		ts.ready = true
	case current && status == StatusBlocked:
		// Reconciling again would only block again; a change of the modules changes the hash.
		ts.reason = blockedReason(slug, blockedSQL)
	default:
		ts.reason = fmt.Sprintf("Tenant %q is not ready (%s); try again later.", slug, status)
		ts.retry = true
	}
	return ts, nil
}

func blockedReason(slug, stmts string) string {
	msg := fmt.Sprintf("Tenant %q is blocked: its schema needs a destructive change that is only applied on request "+
		"(erpctl reconcile %s --allow-destructive)", slug, slug)
	if stmts = strings.TrimSpace(stmts); stmts != "" {
		msg += ": " + stmts
	}
	return msg + "."
}

// reconcileTenant runs p.Reconcile for a request. It outlives a cancelled request (the others
// waiting for it still want it) but not ReadyWait. reg is the registry the tenant was read with.
func (a *api) reconcileTenant(ctx context.Context, reg *modules.Registry, slug string) *tenantState {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.readyWait)
	defer cancel()
	res, err := a.p.Reconcile(ctx, slug, ReconcileOptions{})
	notReady := &tenantState{slug: slug, reg: reg, reason: fmt.Sprintf("Tenant %q is not ready yet; try again later.", slug)}
	switch {
	case errors.Is(err, ErrNotFound):
		return &tenantState{slug: slug, reg: reg, notFound: true}
	case err != nil:
		a.log.Error("api: reconcile tenant on demand", "tenant", slug, "err", err)
		return notReady
	case res.Status == StatusBlocked:
		return &tenantState{slug: slug, reg: reg, reason: blockedReason(slug, strings.Join(res.Destructive, ";\n"))}
	case res.Status != StatusReady:
		if res.Action == ActionSkipped && res.Status == "" {
			return &tenantState{slug: slug, reg: reg, notFound: true}
		}
		if ctx.Err() == nil {
			a.log.Error("api: reconcile tenant on demand", "tenant", slug, "status", res.Status, "err", res.Error)
		}
		return notReady
	}
	ts, err := a.loadTenant(ctx, slug)
	if err != nil {
		a.log.Error("api: read tenant after reconcile", "tenant", slug, "err", err)
		return notReady
	}
	if ts.retry {
		return notReady // changed again meanwhile
	}
	return ts
}

// forgetTenant drops what the API knows of a tenant, after a query found its schema gone.
func (a *api) forgetTenant(slug string) { a.tenants.del(slug) }

// ---- caches

// ttlCache is a map whose entries expire (by the monotonic clock that time.Now carries), and whose entries of an older epoch are misses. It
// never grows past max entries: a full cache drops its expired entries, then everything.
type ttlCache[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]ttlEntry[V]
	max int
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
	epoch   uint64
}

func (c *ttlCache[K, V]) get(k K, now time.Time, epoch uint64) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) || e.epoch != epoch {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[K, V]) put(k K, v V, expires time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[K]ttlEntry[V]{}
	}
	if len(c.m) >= c.max {
		now := time.Now()
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: expires, epoch: epoch}
}

func (c *ttlCache[K, V]) del(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
