// Package controlplane decides: it keeps the tenant catalog, runs the tenant lifecycle and the
// reconciler, and serves the daemon and the data API.
package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/erpctl/erpctl/controlplane/generations"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// Errors callers tell apart with errors.Is. Each is wrapped in a message that names the tenant.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrInvalid       = errors.New("invalid input")
	ErrBlocked       = errors.New("blocked")
	ErrNotReady      = errors.New("not ready")
	ErrUnknownModule = modules.ErrUnknownModule
)

// How long the control plane keeps a database connection, and an idle one (see Open).
const (
	connLifetime = 5 * time.Minute
	connIdleTime = time.Minute
)

// Config says where the control plane's database and extra modules are.
type Config struct {
	DatabaseURL string
	// DirectDatabaseURL, when set, reaches the same database without a transaction pooler
	// (PgBouncer in transaction mode) in between; DatabaseURL is then taken to be such a pooler:
	// no named prepared statements are used on it, and session-bound work (LISTEN) uses this URL.
	DirectDatabaseURL string
	// AdminURL, when set, is a superuser's URL of the same database, used once at Open for what
	// the DatabaseURL's role, which need not be one, may not do: make the data API's role and
	// install change tracking. Open connects with it only while something of that is missing.
	AdminURL   string
	ModulesDir string            // extra module HCL files; "" for the built-ins only
	Registry   *modules.Registry // the modules, already loaded from ModulesDir; nil: Open loads them
	// Actor names this process in what it publishes: "user@host" for the CLI, the daemon's name.
	// "": user@host.
	Actor    string
	Logger   *slog.Logger // nil: discard
	MaxConns int32        // pool size; 0: the URL's pool_max_conns, else 16
	// Tracer, when set, sees every query the control plane's pools send through pgx (the
	// tests look at what a repair reads with it).
	Tracer pgx.QueryTracer
}

// Plane is the control plane over one database.
type Plane struct {
	pool       *pgxpool.Pool
	direct     *pgxpool.Pool // session-bound work; pool itself unless DirectDatabaseURL is set
	db         *sql.DB       // the same pool through database/sql, for Atlas
	planner    *schema.Planner
	modulesDir string
	log        *slog.Logger
	citus      bool // the database is a Citus coordinator's: see citus.go
	// apiMode is how the data API sends its statements (see APIDB); the URL's
	// default_query_exec_mode when it has one.
	apiMode pgx.QueryExecMode
	// prepare: a tenant's transaction prepares the statements that record its apply (see
	// schema.Tx.PrepareArgs); only when pgx itself prepares, so never behind a transaction pooler.
	prepare bool

	gens  *generations.Store
	ops   *operators.Store
	rolls *rollouts.Store
	actor string

	mu      sync.RWMutex
	reg     *modules.Registry // the module files this process loaded: only what it publishes
	regErr  error             // the last failed module load; the registry stays the last good one
	plansMu sync.Mutex
	plans   map[string]*plan // create plans by desired hash
	writes  writeState
	api     apiRoleState
	applied appliedHooks
}

// Open connects, brings the catalog schema up to date and loads the modules.
func Open(ctx context.Context, cfg Config) (*Plane, error) {
	reg := cfg.Registry
	if reg == nil {
		var err error
		if reg, err = modules.Load(cfg.ModulesDir); err != nil {
			return nil, err
		}
	}
	if _, err := rollouts.Parse(reg.Deployment()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	// pgxpool's default (4 on this 2-core machine) serialises the data API behind commits;
	// connections open lazily, so a one-shot CLI command still uses one or two. A
	// pool_max_conns in the URL is the operator's, and stands.
	switch {
	case cfg.MaxConns > 0:
		pcfg.MaxConns = cfg.MaxConns
	case !poolSettingGiven(cfg.DatabaseURL, "pool_max_conns"):
		pcfg.MaxConns = 16
	}
	// A backend keeps what it has read of every relation it touched (its catalog caches) for as
	// long as it lives: a connection that served thousands of tenants holds all of theirs. New
	// connections every few minutes bound that, for the price of a connect. The URL's own
	// settings stand.
	if !poolSettingGiven(cfg.DatabaseURL, "pool_max_conn_lifetime") {
		pcfg.MaxConnLifetime = connLifetime
	}
	// The data API's connections open together, at its first request, and would all close
	// together, each at the same tick of its pool's health check: every backend at once would
	// start again from empty caches, and every request of the next seconds would read the
	// catalog. Spread over five ticks, about a fifth of them do at a time.
	if !poolSettingGiven(cfg.DatabaseURL, "pool_max_conn_lifetime_jitter") {
		pcfg.MaxConnLifetimeJitter = connLifetime
	}
	if !poolSettingGiven(cfg.DatabaseURL, "pool_max_conn_idle_time") {
		pcfg.MaxConnIdleTime = connIdleTime
	}
	// So that an operator tells erpctl's backends from others in pg_stat_activity.
	if _, ok := pcfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "erpctl"
	}
	if cfg.DirectDatabaseURL != "" && pcfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		// A transaction pooler hands each transaction to any server connection, so a prepared
		// statement made on one is missing (or already there) on the next: pgx's default mode
		// gives way to exec mode, unless the URL asks for another. Exec mode still sends one
		// statement per extended-protocol message, so multi-statement strings stay refused.
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	pcfg.ConnConfig.Tracer = cfg.Tracer
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s:%d: %w", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
	}
	direct := pool
	if cfg.DirectDatabaseURL != "" {
		dcfg, err := pgxpool.ParseConfig(cfg.DirectDatabaseURL)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("parse direct database URL: %w", err)
		}
		dcfg.MaxConns = 2
		if direct, err = pgxpool.NewWithConfig(ctx, dcfg); err != nil {
			pool.Close()
			return nil, fmt.Errorf("connect to database directly: %w", err)
		}
	}
	apiMode := APIExecMode
	if poolSettingGiven(cfg.DatabaseURL, "default_query_exec_mode") || cfg.DirectDatabaseURL != "" {
		apiMode = pcfg.ConnConfig.DefaultQueryExecMode
	}
	p := &Plane{
		apiMode:    apiMode,
		prepare:    pcfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement,
		pool:       pool,
		direct:     direct,
		db:         stdlib.OpenDBFromPool(pool),
		modulesDir: cfg.ModulesDir,
		log:        cfg.Logger,
		reg:        reg,
		plans:      map[string]*plan{},
		actor:      cfg.Actor,
	}
	if p.actor == "" {
		p.actor = defaultActor()
	}
	p.gens = generations.New(p.db)
	p.ops = operators.New(pool)
	p.rolls = rollouts.NewStore(p.db)
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if err := p.detectCitus(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if p.planner, err = schema.NewPlanner(p.db, schema.PlannerOptions{ConstraintsApart: p.citus}); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.ensureCatalog(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.ensureGeneration(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if cfg.AdminURL != "" {
		if err := p.setUpPrivileged(ctx, cfg.AdminURL); err != nil {
			p.Close()
			return nil, fmt.Errorf("set up as the superuser: %w", err)
		}
	}
	// Now, outside any tenant's transaction: making the role grants every tenant schema.
	p.APIRole(ctx)
	return p, nil
}

// Close releases the database connections.
func (p *Plane) Close() {
	p.api.mu.Lock()
	for _, pool := range p.api.pools {
		pool.Close()
	}
	p.api.mu.Unlock()
	p.db.Close()
	if p.direct != p.pool {
		p.direct.Close()
	}
	p.pool.Close()
}

// SessionPool reaches the database without a transaction pooler, for session-bound work such
// as LISTEN: the direct URL when one is set, else Pool.
func (p *Plane) SessionPool() *pgxpool.Pool { return p.direct }

// Pool is the connection pool, for the data API.
func (p *Plane) Pool() *pgxpool.Pool { return p.pool }

// NormalizedStates is how many desired states the reconciler keeps as PostgreSQL prints them
// back (one per set of modules in use), and the most it keeps.
func (p *Plane) NormalizedStates() (n, capacity int) { return p.planner.NormalizedCacheLen() }

// LocalModules is the last good registry of the module files this process loaded (the
// built-ins and ModulesDir). Nothing plans against it but a preview of a publish: every writer
// follows the latest published generation (Generations).
func (p *Plane) LocalModules() *modules.Registry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.reg
}

// ReloadModules reads the module files again; when they are unchanged the registry stays the
// same value. On error the last good registry stays in use and ModulesError reports the error
// until a load succeeds.
func (p *Plane) ReloadModules() error {
	reg, err := modules.Reload(p.modulesDir, p.LocalModules())
	if err == nil {
		_, err = rollouts.Parse(reg.Deployment())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.regErr = err
	if err == nil {
		p.reg = reg
	}
	return err
}

// ModulesError is the error of the last module load, nil when it succeeded.
func (p *Plane) ModulesError() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.regErr
}

// Tenant is one tenant as the catalog records it.
type Tenant struct {
	Slug             string     `json:"slug"`
	Name             string     `json:"name"`
	Schema           string     `json:"schema"`
	Status           string     `json:"status"`
	FollowAll        bool       `json:"follow_all"`
	Modules          []string   `json:"modules"` // the modules the tenant has, dependencies included
	CreatedAt        time.Time  `json:"created_at"`
	LastReconciledAt *time.Time `json:"last_reconciled_at"`
	LastAppliedAt    *time.Time `json:"last_applied_at"`
	LastError        *string    `json:"last_error"`
	Reason           string     `json:"reason"`             // why it has its status: one of the Reason constants
	LastTransitionAt *time.Time `json:"last_transition_at"` // when its status last changed
	BlockedSQL       *string    `json:"blocked_sql,omitempty"`
	Failures         int        `json:"failures"`
	NextAttemptAt    *time.Time `json:"next_attempt_at,omitempty"`
	// On Citus only: the node (host:port) that holds the tenant's tables, and the node
	// `tenant move` pinned it to ("" when not pinned). Both are omitted on plain PostgreSQL.
	Node       string `json:"node,omitempty"`
	PinnedNode string `json:"pinned_node,omitempty"`
	// Generation is the module generation the schema was last brought to (nil for a tenant of an
	// older erpctl no reconcile has recorded since); TargetGeneration the latest, while it differs.
	Generation       *int64 `json:"generation"`
	TargetGeneration *int64 `json:"target_generation,omitempty"`
	// Labels are the tenant's Kubernetes-style labels, which selectors and deployment stages match.
	// The tenants of one list share equal Modules, Labels and generations (the values the
	// pointers point to): copy them before changing them.
	Labels labels.Labels `json:"labels"`
}

// Tenant statuses.
const (
	StatusPending = "Pending"
	StatusReady   = "Ready"
	StatusBlocked = "Blocked"
	StatusFailed  = "Failed"
)

// Reasons beside a status, as in a Kubernetes condition: what programs (the data API, the CLI's
// exit codes) decide on, where a status string or a message is for people.
const (
	ReasonNew               = "New"               // Pending: recorded, its schema not made yet
	ReasonUpToDate          = "UpToDate"          // Ready: the schema is the desired state
	ReasonDestructiveChange = "DestructiveChange" // Blocked: only a drop or a narrowing change would make it match
	ReasonApplyFailed       = "ApplyFailed"       // Failed: the last apply errored and was rolled back
	ReasonDataCheckFailed   = "DataCheckFailed"   // Blocked: its rows would make a data-dependent change fail; nothing applied
	ReasonRolloutHalted     = "RolloutHalted"     // Ready or Failed: held at its schema by a halted rollout of a change
)

// Event is one entry of a tenant's history.
type Event struct {
	ID         int64     `json:"id"`
	Tenant     string    `json:"tenant"`
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	SQL        *string   `json:"sql"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Error      *string   `json:"error"`
	Reason     *string   `json:"reason,omitempty"` // why, when something other than a pass asked: a repair's cause
	Generation *int64    `json:"generation,omitempty"`
}

// poolSettingGiven reports whether a connection string, URL or keyword/value, sets pgxpool's
// setting key.
func poolSettingGiven(conn, key string) bool {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Query().Has(key)
	}
	return strings.Contains(conn, key)
}
