package fair

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// NotifyLimits is the channel a change of a tenant's limits is announced on (its payload the
// slug), so that every daemon applies it at once.
const NotifyLimits = "erpctl_limits"

// UsageRetention is how long the catalog keeps usage buckets.
const UsageRetention = time.Hour

// DB is what the Store needs of the catalog's database: a *pgxpool.Pool.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Store keeps in the catalog the tenants' limit overrides and their recent usage, for every
// daemon and the CLI.
type Store struct{ db DB }

// NewStore returns the store of the catalog db holds (the control plane's pool).
func NewStore(db DB) *Store { return &Store{db: db} }

// Override is tenant slug's override ("" fields: the default). The tenant must exist.
func (s *Store) Override(ctx context.Context, slug ident.Slug) (Override, error) {
	var exists bool
	var rate *string
	var conc *int
	err := s.db.QueryRow(ctx, `SELECT true, l.rate, l.concurrency FROM erpctl.tenants t
		LEFT JOIN erpctl.tenant_limits l ON l.tenant = t.slug WHERE t.slug = $1`, slug.String()).Scan(&exists, &rate, &conc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Override{}, fmt.Errorf("read the limits of tenant %q: %w", slug, controlplane.ErrNotFound)
	case err != nil:
		return Override{}, fmt.Errorf("read the limits of tenant %q: %w", slug, err)
	}
	o, err := overrideOf(rate, conc)
	if err != nil {
		return Override{}, fmt.Errorf("read the limits of tenant %q: %w", slug, err)
	}
	return o, nil
}

// SetOverride records o as tenant slug's override (an empty one removes it) and tells every
// daemon. The tenant must exist.
func (s *Store) SetOverride(ctx context.Context, slug ident.Slug, o Override) error {
	var rate *string
	if o.Rate != nil {
		r := o.Rate.String()
		rate = &r
	}
	// One statement: the tenant's row must exist (and stays until it commits), the override
	// is written or removed, and the daemons are told.
	var found bool
	err := s.db.QueryRow(ctx, `WITH t AS (SELECT slug FROM erpctl.tenants WHERE slug = $1 FOR KEY SHARE),
		del AS (DELETE FROM erpctl.tenant_limits WHERE tenant IN (SELECT slug FROM t) AND $2::text IS NULL AND $3::int IS NULL),
		up AS (INSERT INTO erpctl.tenant_limits (tenant, rate, concurrency)
			SELECT slug, $2, $3 FROM t WHERE $2::text IS NOT NULL OR $3::int IS NOT NULL
			ON CONFLICT (tenant) DO UPDATE SET rate = EXCLUDED.rate, concurrency = EXCLUDED.concurrency, updated_at = now()),
		n AS (SELECT pg_notify($4, $1) FROM t)
		SELECT EXISTS (SELECT FROM t) AND (SELECT count(*) FROM n) = 1`, slug.String(), rate, o.Concurrency, NotifyLimits).Scan(&found)
	if err != nil {
		return fmt.Errorf("set the limits of tenant %q: %w", slug, err)
	}
	if !found {
		return fmt.Errorf("set the limits of tenant %q: %w", slug, controlplane.ErrNotFound)
	}
	return nil
}

// Overrides reads every tenant's override. A row whose rate does not parse (edited by hand) is
// left out, and named in the error returned beside the rest.
func (s *Store) Overrides(ctx context.Context) (map[string]Override, error) {
	rows, err := s.db.Query(ctx, `SELECT tenant, rate, concurrency FROM erpctl.tenant_limits`)
	if err != nil {
		return nil, fmt.Errorf("read tenant limits: %w", err)
	}
	defer rows.Close()
	out := map[string]Override{}
	var bad []error
	for rows.Next() {
		var tenant string
		var rate *string
		var conc *int
		if err := rows.Scan(&tenant, &rate, &conc); err != nil {
			return nil, fmt.Errorf("read tenant limits: %w", err)
		}
		o, err := overrideOf(rate, conc)
		if err != nil {
			bad = append(bad, fmt.Errorf("tenant %q: %w", tenant, err))
			continue
		}
		out[tenant] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenant limits: %w", err)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("read tenant limits: %w", errors.Join(bad...))
	}
	return out, nil
}

func overrideOf(rate *string, conc *int) (Override, error) {
	var o Override
	if rate != nil {
		r := Rate{}
		if *rate != "none" {
			var err error
			if r, err = ParseRate(*rate); err != nil {
				return Override{}, err
			}
		}
		o.Rate = &r
	}
	if conc != nil {
		if *conc < 0 {
			return Override{}, fmt.Errorf("concurrency %d is negative", *conc)
		}
		o.Concurrency = conc
	}
	return o, nil
}

// Publish adds us, the usage a daemon counted since it last published, to the minute at, and
// removes the minutes older than UsageRetention. Rows are written in the order of their tenants,
// so that daemons publishing at once never deadlock.
func (s *Store) Publish(ctx context.Context, at time.Time, us []Usage) error {
	if len(us) > 0 {
		n := len(us)
		tenants := make([]string, n)
		requests, errs, throttled, dbUS, rows := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, u := range us {
			tenants[i], requests[i], errs[i], throttled[i], dbUS[i], rows[i] = u.Tenant, u.Requests, u.Errors, u.Throttled, u.DBTime.Microseconds(), u.Rows
		}
		if _, err := s.db.Exec(ctx, `INSERT INTO erpctl.tenant_usage AS u (minute, tenant, requests, errors, throttled, db_us, rows)
			SELECT date_trunc('minute', $1::timestamptz), x.* FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS x
			ON CONFLICT (minute, tenant) DO UPDATE SET requests = u.requests + EXCLUDED.requests, errors = u.errors + EXCLUDED.errors,
				throttled = u.throttled + EXCLUDED.throttled, db_us = u.db_us + EXCLUDED.db_us, rows = u.rows + EXCLUDED.rows`,
			at, tenants, requests, errs, throttled, dbUS, rows); err != nil {
			return fmt.Errorf("publish the usage of %d tenants: %w", n, err)
		}
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM erpctl.tenant_usage WHERE minute < $1`, at.Add(-UsageRetention)); err != nil {
		return fmt.Errorf("remove old usage: %w", err)
	}
	return nil
}

// TopUsage is one tenant's line of Top.
type TopUsage struct {
	Usage
	RequestsPerSecond float64 `json:"requests_per_second"`
	DBSeconds         float64 `json:"db_seconds"`
	// DBShare is the tenant's part of every tenant's database time in the window.
	DBShare float64 `json:"db_share"`
}

// Top is what Store.Top reads: the busiest tenants of a window.
type Top struct {
	Since   time.Time  `json:"since"`
	Until   time.Time  `json:"until"`
	Seconds float64    `json:"window_seconds"`
	Tenants []TopUsage `json:"tenants"`
}

// topOrder is the ORDER BY of each of SortKeys.
var topOrder = map[string]string{"requests": "requests", "errors": "errors", "throttled": "throttled", "db": "db_us", "rows": "rows"}

// Top reads the n tenants that used the most by sortBy (one of SortKeys) over the whole minutes
// since `since` ago, the current one included, as every daemon published them: among the tenants
// sel matches, when it is not empty (a tenant deleted since then matches none).
func (s *Store) Top(ctx context.Context, since time.Duration, n int, sortBy string, sel labels.Selector) (*Top, error) {
	order, ok := topOrder[sortBy]
	if !ok {
		return nil, fmt.Errorf("sort tenant usage by %q: %w", sortBy, controlplane.ErrInvalid)
	}
	top := &Top{Tenants: []TopUsage{}}
	if err := s.db.QueryRow(ctx, `SELECT date_trunc('minute', now() - make_interval(secs => $1)), now()`, since.Seconds()).Scan(&top.Since, &top.Until); err != nil {
		return nil, fmt.Errorf("read tenant usage: %w", err)
	}
	top.Seconds = top.Until.Sub(top.Since).Seconds()
	args := []any{top.Since}
	selected := "true"
	if !sel.Empty() {
		selected = `tenant IN (SELECT slug FROM erpctl.tenants WHERE ` + sel.SQL("labels", &args) + `)`
	}
	args = append(args, n)
	// The share of database time is of every tenant's, selected or not.
	rows, err := s.db.Query(ctx, `SELECT tenant, requests, errors, throttled, db_us, rows, share
		FROM (SELECT *, db_us::float8 / nullif(sum(db_us) OVER (), 0) AS share
			FROM (SELECT tenant, sum(requests)::bigint AS requests, sum(errors)::bigint AS errors, sum(throttled)::bigint AS throttled,
				sum(db_us)::bigint AS db_us, sum(rows)::bigint AS rows
				FROM erpctl.tenant_usage WHERE minute >= $1 GROUP BY tenant) AS u) AS u
		WHERE `+selected+`
		ORDER BY `+order+` DESC, db_us DESC, tenant LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("read tenant usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u TopUsage
		var dbUS int64
		var share *float64
		if err := rows.Scan(&u.Tenant, &u.Requests, &u.Errors, &u.Throttled, &dbUS, &u.Rows, &share); err != nil {
			return nil, fmt.Errorf("read tenant usage: %w", err)
		}
		u.DBTime = time.Duration(dbUS) * time.Microsecond
		u.DBSeconds = u.DBTime.Seconds()
		if share != nil {
			u.DBShare = *share
		}
		if top.Seconds > 0 {
			u.RequestsPerSecond, _ = strconv.ParseFloat(strconv.FormatFloat(float64(u.Requests)/top.Seconds, 'f', 2, 64), 64)
		}
		top.Tenants = append(top.Tenants, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tenant usage: %w", err)
	}
	return top, nil
}
