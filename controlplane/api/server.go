package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/singleflight"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// Plane is what the data API needs of the control plane: the latest modules (for the OpenAPI
// document), who a token speaks for, whether a tenant is ready and at which generation, and the
// reconciler for a tenant that is not.
type Plane interface {
	LatestModules(ctx context.Context) (int64, *modules.Registry, error)
	LookupToken(ctx context.Context, hash [sha256.Size]byte) (controlplane.TokenOwner, bool, error)
	Readiness(ctx context.Context, slug ident.Slug) (*controlplane.Readiness, error)
	// TenantVersions reads the versions of many tenants' catalog rows (Readiness.Version) at
	// once, for RevalidateTenants.
	TenantVersions(ctx context.Context, slugs []string) (map[string]int64, error)
	Reconcile(ctx context.Context, slug ident.Slug, o controlplane.ReconcileOptions) (*controlplane.Result, error)
	// NoteWrite is told how each write ended, so that the daemon's readiness can say when the
	// database refuses writes.
	NoteWrite(err error)
	// OnApplied tells the API of each tenant this process changes, so that it serves the tenant's
	// new generation at once instead of when its cache entry expires.
	OnApplied(fn func(slug string))
}

// DB runs the statements of requests against tenant schemas: a *pgxpool.Pool.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// tenantDB is a DB that sends a tenant's statements to the connections that served the tenant
// before, where they are cheaper (controlplane.APIDB's).
type tenantDB interface {
	ForTenant(tenant string) controlplane.Statements
}

// Config is what the data API runs on, and its limits.
type Config struct {
	Plane     Plane
	DB        DB
	Logger    *slog.Logger  // access log and server errors; nil: discard
	MaxBody   int64         // largest request body in bytes; 0: 1 MiB
	ReadyWait time.Duration // how long a request waits for its tenant to be reconciled; 0: 10s
	Caches    CacheSizes
	// PublicURL (scheme://host[:port]) is what every link in an answer (next, previous, Location,
	// the tenant's resource list) is built from. "": the request's own scheme and Host.
	PublicURL string
	// AllowedHosts are the Host headers served, as Django's ALLOWED_HOSTS: "example.com",
	// ".example.com" for it and its subdomains, "*" for any; a port is ignored. Any other Host
	// gets a 400, so that no link points where the client did not ask. nil: any.
	AllowedHosts []string
	// CORSOrigins are the origins ("https://app.example.com", "*" for any) whose browser front
	// ends may call the API; their preflights need no token. nil: none.
	CORSOrigins []string
	// Fair shares DB's connections and the memory of answers between tenants, and applies their
	// limits (see package fair). nil: a scheduler with fair's defaults.
	Fair *fair.Scheduler
	// NoFairness serves without any of that bookkeeping: erpbench measures its cost with it.
	NoFairness bool
}

// cacheTTL bounds how long the data API trusts what it read of the catalog: a token's tenant
// and name, and a tenant's schema, status and modules. A tenant deleted or changed by another
// process takes effect within it; a revoked token at once, where the daemon hears the revocation
// (ForgetTokens), else within it.
const cacheTTL = 2 * time.Second

// watchedTokenTTL is how long a valid token's lookup is kept while the daemon hears every
// revocation (WatchTokens): a revocation reaches the cache by its NOTIFY at once, so the TTL
// only bounds what a lost notification could leave. A data API spread over thousands of
// tenants visits each one less often than every cacheTTL, and each visit looked its token up
// again.
const watchedTokenTTL = time.Minute

// The limits of list pages.
const (
	defaultPageLimit = 50
	maxPageLimit     = 1000
)

// Handler is the data API. It keeps its caches for its own lifetime.
type Handler struct {
	p         Plane
	db        DB
	log       *slog.Logger
	maxBody   int64
	readyWait time.Duration
	mux       *http.ServeMux
	publicURL string
	hosts     []string
	origins   []string

	tokens    *ttlLRU[[32]byte, tokenEntry]
	badTokens *ttlLRU[[32]byte, tokenEntry]
	tenants   *ttlLRU[string, *tenantState]
	noTenants *ttlLRU[string, *tenantState]
	tables    *tableCache
	flight    singleflight.Group // one on-demand reconcile per tenant at a time
	// repaired is when each tenant's last repair ended: a request that began before it retries
	// without asking for another. unrepaired is why a tenant's last repair did not succeed, kept
	// a few seconds: requests that meet the same drift meanwhile are answered without another.
	repaired   *ttlLRU[string, time.Time]
	unrepaired *ttlLRU[string, string]
	openapi    openapiCache
	fair       *fair.Scheduler // nil: no fairness bookkeeping
	// tokensWatched: revocations reach ForgetTokens (WatchTokens), and valid tokens are kept
	// for watchedTokenTTL.
	tokensWatched atomic.Bool
}

// New returns the data API:
//
//	GET  /api/openapi.json                              the OpenAPI description (no token needed)
//	GET  /api/{tenant}/                                 the tenant's resources and their URLs
//	GET  /api/{tenant}/{module}/{resource}/             list, with limit/offset, filters, ordering
//	POST /api/{tenant}/{module}/{resource}/             create
//	GET|PUT|PATCH|DELETE /api/{tenant}/{module}/{resource}/{id}/
//	OPTIONS on any of the above                         DRF-style metadata
//
// Every tenant request needs "Authorization: Bearer TOKEN" (or DRF's "Token TOKEN") with a
// token of that tenant.
func New(cfg Config) *Handler {
	a := &Handler{p: cfg.Plane, db: cfg.DB, log: cfg.Logger, maxBody: cfg.MaxBody, readyWait: cfg.ReadyWait}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxBody <= 0 {
		a.maxBody = 1 << 20
	}
	if a.readyWait <= 0 {
		a.readyWait = 10 * time.Second
	}
	a.publicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	a.hosts = cfg.AllowedHosts
	a.origins = cfg.CORSOrigins
	a.fair = cfg.Fair
	if a.fair == nil && !cfg.NoFairness {
		a.fair = fair.New(fair.Config{})
	}
	sz := cfg.Caches.withDefaults()
	a.tables = newTableCache(sz.Tables)
	a.tenants = newTTLLRU[string, *tenantState]("tenants", sz.Tenants)
	a.noTenants = newTTLLRU[string, *tenantState]("unknown_tenants", sz.Negatives)
	a.tokens = newTTLLRU[[32]byte, tokenEntry]("tokens", sz.Tokens)
	a.badTokens = newTTLLRU[[32]byte, tokenEntry]("wrong_tokens", sz.Negatives)
	a.repaired = newTTLLRU[string, time.Time]("repairs", sz.Tenants)
	a.unrepaired = newTTLLRU[string, string]("failed_repairs", sz.Negatives)
	a.p.OnApplied(func(slug string) {
		a.tenants.del(slug)
		a.noTenants.del(slug)
	})
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("/api/openapi.json", a.serveOpenAPI)
	a.mux.HandleFunc("/api/{tenant}/{$}", a.serveTenant(routeRoot))
	a.mux.HandleFunc("/api/{tenant}/{module}/{resource}/{$}", a.serveTenant(routeList))
	a.mux.HandleFunc("/api/{tenant}/{module}/{resource}/{id}/{$}", a.serveTenant(routeDetail))
	a.mux.HandleFunc("/", a.serveFallback)
	return a
}

// WatchTokens says whether the caller hears every token revocation and calls ForgetTokens for
// it (the daemon, while its NOTIFY listener is connected): valid tokens are then kept for
// watchedTokenTTL instead of cacheTTL. Either way the cached lookups are dropped, since a
// revocation may have gone unheard meanwhile; call it with true once listening has begun.
func (a *Handler) WatchTokens(watched bool) {
	a.tokensWatched.Store(watched)
	a.ForgetTokens()
}

// ForgetTokens drops every cached token lookup, so that a revocation takes effect at once, and
// a restored tenant's tokens (wrong while it was archived) work at once again.
func (a *Handler) ForgetTokens() {
	a.tokens.purge()
	a.badTokens.purge()
}

// ServeHTTP routes the request and writes its access log line.
func (a *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	switch {
	case !hostAllowed(a.hosts, r.Host):
		writeDetail(sw, http.StatusBadRequest, "Invalid Host header.")
	case a.cors(sw, r):
		// a preflight, answered
	default:
		a.mux.ServeHTTP(sw, r)
	}
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
func (a *Handler) serveFallback(w http.ResponseWriter, r *http.Request) {
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
	input  []colArg // a write's decoded body, for errors that name no column
	// drift is set, instead of an answer, when a statement failed on a declared object that is
	// missing or changed: serveHealing repairs the tenant and runs the request again. lastTry is
	// set on the run after a repair, which answers whatever happens.
	drift   *drift
	lastTry bool
	// db runs its statements through query, queryRow and exec, once fr, its share of the pool
	// and of memory, allows.
	db DB
	fr fair.Request
}

// serveTenant resolves, in this order and before any SQL runs against the tenant: the slug
// (invalid: 404), the token (missing or bad: 401), the token's tenant (another tenant or none:
// the same 404), the tenant's limits (429), the tenant's readiness (reconciled on demand; Blocked: 503), the resource
// (module not enabled or unknown: 404) and the method (405).
func (a *Handler) serveTenant(kind routeKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug, err := ident.ParseSlug(r.PathValue("tenant"))
		if err != nil {
			writeDetail(w, http.StatusNotFound, "Not found.")
			return
		}
		tok, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		if tok.tenant != slug.String() {
			writeDetail(w, http.StatusNotFound, "Not found.")
			return
		}
		rc := &reqCtx{actor: tok.name, db: a.db}
		if td, ok := a.db.(tenantDB); ok {
			rc.db = td.ForTenant(tok.tenant)
		}
		if !a.admit(w, rc, tok.tenant) {
			return
		}
		defer rc.done(w)
		ts, ok := a.readyTenant(w, r, slug)
		if !ok {
			return
		}
		rc.tenant = ts
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
		a.serveHealing(w, r, rc, kind)
	}
}

// dispatch runs the request's method on its route.
func (a *Handler) dispatch(w http.ResponseWriter, r *http.Request, rc *reqCtx, kind routeKind) {
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

// ---- authentication

type tokenEntry struct {
	valid        bool
	tenant, name string
}

// authenticate reads the token, "Bearer TOKEN" or DRF's "Token TOKEN", and finds its tenant and
// name; on failure it has written the 401, challenging with the scheme the client used.
func (a *Handler) authenticate(w http.ResponseWriter, r *http.Request) (tokenEntry, bool) {
	if len(r.Header.Values("Authorization")) > 1 {
		// Which one counts is not the server's to guess: a proxy in front may read the last.
		writeDetail(w, http.StatusBadRequest, "Give the Authorization header only once.")
		return tokenEntry{}, false
	}
	h := r.Header.Get("Authorization")
	scheme, secret, _ := strings.Cut(strings.TrimSpace(h), " ")
	drfToken := strings.EqualFold(scheme, "Token")
	fail := func(msg string) (tokenEntry, bool) {
		if drfToken {
			w.Header().Set("WWW-Authenticate", "Token")
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		}
		writeDetail(w, http.StatusUnauthorized, msg)
		return tokenEntry{}, false
	}
	if h == "" || !drfToken && !strings.EqualFold(scheme, "Bearer") {
		return fail("Authentication credentials were not provided.")
	}
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > 256 || strings.ContainsAny(secret, " \t") {
		return fail("Invalid token.")
	}
	hash := controlplane.HashToken(secret)
	now := time.Now()
	e, ok := a.tokens.get(hash, now)
	if !ok {
		e, ok = a.badTokens.get(hash, now)
	}
	if !ok {
		owner, valid, err := a.p.LookupToken(r.Context(), hash)
		if err != nil {
			a.serverError(w, r, "look up token", err)
			return tokenEntry{}, false
		}
		e = tokenEntry{valid: valid, tenant: owner.Tenant, name: owner.Name}
		if valid {
			ttl := cacheTTL
			if a.tokensWatched.Load() {
				ttl = watchedTokenTTL
			}
			a.tokens.put(hash, e, now.Add(ttl))
		} else {
			a.badTokens.put(hash, e, now.Add(cacheTTL))
		}
	}
	if !e.valid {
		return fail("Invalid token.")
	}
	return e, true
}

// ---- tenant readiness

// tenantState is what the API knows of a tenant: trusted for cacheTTL after it was read, and
// for as long after each time RevalidateTenants finds the tenant's catalog row unchanged.
type tenantState struct {
	slug     ident.Slug
	schema   string
	gen      int64             // the generation it is served at: the one it has applied
	reg      *modules.Registry // that generation's modules, where its resources come from
	modules  []string
	ready    bool
	notFound bool
	reason   string // not ready: the 503's message
	version  int64  // of the catalog row it was judged from (Readiness.Version)
	// trusted is until when (UnixNano) the state may be served without reading it again; used is
	// when a request last served it. RevalidateTenants moves trusted on; a state another request
	// replaced meanwhile is no longer in the cache, and moving its time on does nothing.
	trusted, used atomic.Int64
}

// fresh reports whether the state may be served at now, and notes the use.
func (ts *tenantState) fresh(now time.Time) bool {
	if now.UnixNano() >= ts.trusted.Load() {
		return false
	}
	ts.used.Store(now.UnixNano())
	return true
}

// keptStates bounds how long a ready tenant's state stays in the cache, revalidated or not: a
// tenant served after that is read again. The bound of anything RevalidateTenants could miss.
const keptStates = time.Minute

// putState caches ts, read (or reconciled) at now.
func (a *Handler) putState(ts *tenantState, now time.Time) {
	ts.trusted.Store(now.Add(cacheTTL).UnixNano())
	ts.used.Store(now.UnixNano())
	if ts.notFound {
		a.noTenants.put(ts.slug.String(), ts, now.Add(cacheTTL))
		return
	}
	kept := cacheTTL // a tenant that is not ready stays so for the TTL: at most one reconcile per TTL
	if ts.ready {
		kept = keptStates
	}
	a.tenants.put(ts.slug.String(), ts, now.Add(kept))
}

// RevalidateTenants keeps the states of the tenants requests are served for trusted while their
// catalog rows do not change, until ctx ends: every half cacheTTL, one statement reads the row
// versions of every ready tenant served in the last keptStates, and each state whose row is as
// it was read stays trusted for another cacheTTL. A tenant changed by any process (its modules,
// status or generation, or deleted) is read again by its next request, within cacheTTL as
// without it; a data API spread over thousands of tenants, which visits each less often than
// every cacheTTL, no longer reads a tenant's row for each request. Without it running, a state
// is read again once its cacheTTL has passed.
func (a *Handler) RevalidateTenants(ctx context.Context) error {
	t := time.NewTicker(cacheTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.revalidateTenants(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("api: revalidate tenant states; each is read again by its next request", "err", err)
			}
		}
	}
}

// revalidateTenants is one round of RevalidateTenants.
func (a *Handler) revalidateTenants(ctx context.Context) error {
	began := time.Now()
	var (
		slugs  []string
		states []*tenantState
	)
	for _, ts := range a.tenants.values() {
		if ts.ready && began.Sub(time.Unix(0, ts.used.Load())) < keptStates {
			slugs = append(slugs, ts.slug.String())
			states = append(states, ts)
		}
	}
	if len(slugs) == 0 {
		return nil
	}
	versions, err := a.p.TenantVersions(ctx, slugs)
	if err != nil {
		return err
	}
	// Trusted from when the statement began: a change committed after that is seen next round.
	until := began.Add(cacheTTL).UnixNano()
	for i, ts := range states {
		if v, ok := versions[slugs[i]]; ok && v == ts.version {
			ts.trusted.Store(until)
		}
	}
	return nil
}

// readyTenant returns the tenant, reconciling it first when it is not Ready; on failure it has
// written the 404 or 503.
func (a *Handler) readyTenant(w http.ResponseWriter, r *http.Request, slug ident.Slug) (*tenantState, bool) {
	ctx := r.Context()
	now := time.Now()
	ts, ok := a.tenants.get(slug.String(), now)
	if !ok {
		ts, ok = a.noTenants.get(slug.String(), now)
	}
	if !ok || !ts.fresh(now) {
		rd, err := a.p.Readiness(ctx, slug)
		if err != nil {
			a.serverError(w, r, "read tenant", err)
			return nil, false
		}
		ts = stateOf(slug, rd)
		if rd.Reconcilable() {
			// Not Ready, and a reconcile may fix it: one reconcile per tenant at a time, shared by
			// every request waiting for it, bounded by ReadyWait.
			call := a.flight.DoChan(slug.String(), func() (any, error) {
				ts, _ := a.reconcileTenant(ctx, slug, "")
				return ts, nil
			})
			select {
			case res := <-call:
				ts = res.Val.(*tenantState)
			case <-ctx.Done():
				writeDetail(w, http.StatusServiceUnavailable, "The request was cancelled while the tenant was being prepared.")
				return nil, false
			}
		}
		a.putState(ts, time.Now())
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

// stateOf is what a request may do with a tenant in the state rd describes.
func stateOf(slug ident.Slug, rd *controlplane.Readiness) *tenantState {
	ts := &tenantState{slug: slug, schema: rd.Schema, gen: rd.Generation, reg: rd.Registry, modules: rd.Modules, version: rd.Version}
	switch {
	case !rd.Found:
		ts.notFound = true
	case rd.Ready():
		ts.ready = true
	default:
		ts.reason = notReadyReason(slug, rd.Status, rd.Reason)
	}
	return ts
}

// notReadyReason is what a client learns of a tenant that cannot be served: what kind of problem
// it is, and nothing of the schema or the statements, which `erpctl tenant show` gives the
// operator.
func notReadyReason(slug ident.Slug, status, reason string) string {
	switch reason {
	case controlplane.ReasonDataCheckFailed:
		return fmt.Sprintf("Tenant %q is not ready: a change to its tables is held back because some of its rows do not allow it (a data check failed); an operator must fix the rows.", slug)
	case controlplane.ReasonDestructiveChange:
		return fmt.Sprintf("Tenant %q is not ready: only a destructive change would bring its tables to what its modules declare, and an operator must approve it.", slug)
	case controlplane.ReasonApplyFailed:
		return fmt.Sprintf("Tenant %q is not ready: applying a change to its tables failed; try again later.", slug)
	}
	return fmt.Sprintf("Tenant %q is not ready (%s); try again later.", slug, status)
}

// repairReason says in words for clients why a tenant's tables could not be repaired.
func repairReason(reason string) string {
	switch reason {
	case controlplane.ReasonDataCheckFailed:
		return "Repairing its tables needs a change that some of its rows do not allow (a data check failed); an operator must fix the rows."
	case controlplane.ReasonDestructiveChange:
		return "Only a destructive change would repair its tables; an operator must approve it."
	}
	return "Repairing its tables did not succeed; try again later."
}

// reconcileTenant runs the reconciler for a request, toward the generation the tenant has
// applied: a request never moves a tenant to a newer generation (the daemon rolls those out, in
// stages). It outlives a cancelled request (the others waiting for it still want it) but not
// ReadyWait. cause says why when a statement met drift ("" when the tenant was not ready). With
// the state it also returns, when the reconcile did not succeed, why (for clients).
func (a *Handler) reconcileTenant(ctx context.Context, slug ident.Slug, cause string) (*tenantState, string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.readyWait)
	defer cancel()
	notReady := &tenantState{slug: slug, reason: fmt.Sprintf("Tenant %q is not ready yet; try again later.", slug)}
	res, err := a.p.Reconcile(ctx, slug, controlplane.ReconcileOptions{Cause: cause, Target: controlplane.TargetApplied})
	switch {
	case errors.Is(err, controlplane.ErrNotFound):
		return &tenantState{slug: slug, notFound: true}, ""
	case err != nil:
		a.log.Error("api: reconcile tenant on demand", "tenant", slug.String(), "err", err)
		return notReady, notReady.reason
	case res.Action == controlplane.ActionSkipped && res.Status == "":
		return &tenantState{slug: slug, notFound: true}, "" // deleted meanwhile
	}
	rd, err := a.p.Readiness(ctx, slug)
	if err != nil {
		a.log.Error("api: read tenant after reconcile", "tenant", slug.String(), "err", err)
		return notReady, notReady.reason
	}
	ts := stateOf(slug, rd)
	var failed string
	switch res.Action {
	case controlplane.ActionBlocked, controlplane.ActionFailed:
		failed = repairReason(rd.Reason)
	case controlplane.ActionSkipped:
		if ctx.Err() != nil {
			failed = notReady.reason
		}
	}
	if !ts.ready && !ts.notFound {
		if ctx.Err() == nil {
			a.log.Error("api: reconcile tenant on demand", "tenant", slug.String(), "status", res.Status, "err", res.Error)
		}
		if failed == "" {
			failed = ts.reason
		}
	}
	return ts, failed
}

// forgetTenant drops what the API knows of a tenant, after a query found its schema gone.
func (a *Handler) forgetTenant(slug ident.Slug) {
	a.tenants.del(slug.String())
	a.noTenants.del(slug.String())
}

// hostAllowed matches a Host header against allowed, as Django's validate_host does.
func hostAllowed(allowed []string, host string) bool {
	if allowed == nil {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	for _, p := range allowed {
		p = strings.ToLower(p)
		switch {
		case p == "*", p == host:
			return true
		case strings.HasPrefix(p, ".") && (host == p[1:] || strings.HasSuffix(host, p)):
			return true
		}
	}
	return false
}
