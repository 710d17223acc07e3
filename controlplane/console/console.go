// Package console is the operator web console of `erpctl daemon --console-listen`: a page per
// view of the fleet (tenants by status and generation, one tenant with its tables and events,
// rollouts, generations), each with a JSON twin at the same URL (Accept: application/json) that
// carries the same data with the CLI's field names. Pages are server-rendered html/template with
// embedded assets: no CDN, no JavaScript build step. Only operators open it (operator tokens,
// never a tenant's); the console shows a tenant's metadata, never its rows.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/generations"
	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/internal/ident"
)

// Plane is what the console reads of the control plane, and the one thing it asks of it: a fix.
type Plane interface {
	FleetSummary(ctx context.Context) (*controlplane.FleetSummary, error)
	TenantPage(ctx context.Context, q controlplane.TenantQuery) (*controlplane.TenantPage, error)
	GetTenant(ctx context.Context, slug ident.Slug) (*controlplane.Tenant, error)
	TenantEvents(ctx context.Context, slug ident.Slug, limit int) ([]controlplane.Event, error)
	ListTokens(ctx context.Context, slug ident.Slug) ([]controlplane.Token, error)
	DebugTables(ctx context.Context, slug ident.Slug) (*controlplane.TablesReport, error)
	Reconcile(ctx context.Context, slug ident.Slug, o controlplane.ReconcileOptions) (*controlplane.Result, error)
}

// Generations is the module generations' history and sources.
type Generations interface {
	History(ctx context.Context, limit int) ([]generations.Generation, error)
	Get(ctx context.Context, n int64) (*generations.Generation, error)
}

// Operators checks credentials and keeps browser sessions.
type Operators interface {
	Authenticate(ctx context.Context, secret string) (operators.Operator, bool, error)
	UseLoginCode(ctx context.Context, code string) (operators.Operator, bool, error)
	StartSession(ctx context.Context, op operators.Operator) (string, error)
	Session(ctx context.Context, secret string) (operators.Operator, bool, error)
	EndSession(ctx context.Context, secret string) error
}

// Health is the daemon's own state as the fleet page shows it.
type Health struct {
	Passes             int64      `json:"passes"`
	LastPassAt         *time.Time `json:"last_pass_at"`
	LastPassDurationMS float64    `json:"last_pass_duration_ms"`
	DatabaseReachable  bool       `json:"database_reachable"`
	DatabaseWritable   bool       `json:"database_writable"`
	Problems           []string   `json:"problems"`
}

// Config is what the console serves from.
type Config struct {
	Plane       Plane
	Generations Generations
	Operators   Operators
	// Rollouts are the generations' rollouts; nil: the rollout pages say there are none.
	Rollouts Rollouts
	// Health reports the daemon's state; nil: the fleet page has no health panel.
	Health func(ctx context.Context) Health
	Logger *slog.Logger // nil: discard
	// Poll is how often pages that show progress fetch themselves again; 0: 2s.
	Poll time.Duration
	// SecureCookies marks the session cookie Secure even on plain HTTP: the console is reached
	// through a TLS proxy (its URL is https). Over TLS it is Secure anyway.
	SecureCookies bool
}

// Console is the console's HTTP handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages *pages

	// The fleet summary counts every tenant: every open fleet page asks for it each Poll, so it
	// is read at most once a second whatever the number of pages open.
	sumMu sync.Mutex
	sumAt time.Time
	sum   *controlplane.FleetSummary
}

//go:embed static
var staticFS embed.FS

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: pg}
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheForever(files)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.loginForm)
	c.mux.Handle("POST /logout", c.auth(c.logout))
	c.mux.Handle("GET /{$}", c.auth(c.fleet))
	c.mux.Handle("GET /tenants", c.auth(c.tenants))
	c.mux.Handle("GET /tenants/{slug}", c.auth(c.tenant))
	c.mux.Handle("GET /tenants/{slug}/tables", c.auth(c.tenantTables))
	c.mux.Handle("POST /tenants/{slug}/fix", c.auth(c.fix))
	c.mux.Handle("GET /rollouts", c.auth(c.rollouts))
	c.mux.Handle("GET /rollouts/{id}", c.auth(c.rollout))
	c.mux.Handle("POST /rollouts/{id}/{action}", c.auth(c.rolloutAction))
	c.mux.Handle("GET /generations", c.auth(c.generations))
	c.mux.Handle("GET /generations/diff", c.auth(c.generationDiff))
	c.mux.Handle("/", c.auth(func(w http.ResponseWriter, r *http.Request, s *session) {
		c.fail(w, r, s, http.StatusNotFound, "Not found.")
	}))
	return c, nil
}

// ServeHTTP serves the console with the headers every answer carries: nothing of it may be
// framed, cached by a proxy, sniffed or sent on as a referrer (a login link carries a code), and
// only its own scripts and styles run.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
		h.Set("Vary", "Accept, Cookie, Authorization")
	}
	c.mux.ServeHTTP(w, r)
}

// cacheForever serves the embedded assets, whose URLs carry their content's hash.
func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		h.ServeHTTP(w, r)
	})
}

// wantsJSON says whether the request asks for a page's JSON twin.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

// writeJSON writes v as the JSON twin of a page.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// fail answers an error: {"detail": msg} to JSON, an error page to a browser. Server errors are
// logged and shown in general words: their text may name the database.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	if wantsJSON(r) || s == nil {
		if !wantsJSON(r) && s == nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintln(w, msg)
			return
		}
		writeJSON(w, status, map[string]string{"detail": msg})
		return
	}
	c.render(w, r, s, status, "error", "Error", struct {
		Status  int
		Message string
	}{status, msg})
}

// failErr answers err: bad input as 400 with its message, a missing tenant or generation as 404,
// anything else as 500 with the details in the log only.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, s *session, err error) {
	switch {
	case errors.Is(err, controlplane.ErrNotFound), errors.Is(err, generations.ErrNotFound), errors.Is(err, rollouts.ErrNotFound):
		c.fail(w, r, s, http.StatusNotFound, sentence(err))
	case errors.Is(err, rollouts.ErrState):
		c.fail(w, r, s, http.StatusConflict, sentence(err))
	case errors.Is(err, controlplane.ErrInvalid), errors.Is(err, errBadInput):
		c.fail(w, r, s, http.StatusBadRequest, sentence(err))
	case r.Context().Err() != nil:
		// The client went away.
	default:
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		c.fail(w, r, s, http.StatusInternalServerError, "The console could not read the catalog; the daemon's log says why.")
	}
}

var errBadInput = errors.New("bad input")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadInput}, args...)...)
}

// sentence is an error as a person reads it: without the sentinel's words in front.
func sentence(err error) string {
	s := err.Error()
	for _, p := range []string{"bad input: ", "invalid input: ", rollouts.ErrState.Error() + ": "} {
		s = strings.Replace(s, p, "", 1)
	}
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}
