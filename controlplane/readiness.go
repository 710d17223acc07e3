package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// Readiness is what the data API must know of a tenant before it runs a statement in its schema.
// The API serves a tenant at the generation it has applied, whatever its status: a tenant Blocked
// or Failed on its way to a newer generation still has every table of its own, unchanged.
type Readiness struct {
	Found      bool
	Schema     string
	Generation int64             // the generation it has applied; 0 when it has none yet
	Registry   *modules.Registry // that generation's modules (the latest's when it has none)
	Modules    []string          // what the tenant has, dependencies included
	Status     string
	Reason     string // one of the Reason constants
	// Current: what the tenant last applied is its modules' desired state at Generation (not so
	// when it has none yet, or its modules changed since).
	Current    bool
	LastError  string // why it is not Ready, for operators; never for clients
	BlockedSQL string // qualified, for operators; never for clients
	// Version is the version of the tenant's catalog row this was judged from (its xmin): every
	// change of the row, by any process, moves it, and nothing else does. TenantVersions reads
	// it for many tenants at once.
	Version int64
}

// Ready reports whether requests may run against the tenant now: it has its tables.
func (r *Readiness) Ready() bool {
	return r.Found && r.Current && (r.Status == StatusReady || r.Status == StatusBlocked || r.Status == StatusFailed)
}

// Reconcilable reports whether reconciling the tenant now (toward the generation it has) may make
// it ready.
func (r *Readiness) Reconcilable() bool {
	return r.Found && !r.Ready()
}

// Readiness reads a tenant from the catalog and judges it against the generation it has applied.
// A tenant that does not exist is Found false, with no error.
func (p *Plane) Readiness(ctx context.Context, slug ident.Slug) (*Readiness, error) {
	r := &Readiness{}
	var (
		desiredHash, lastError string
		followAll              bool
		chosen                 []string
		gen                    sql.NullInt64
	)
	err := p.pool.QueryRow(ctx, `SELECT schema_name, status, status_reason, follow_all, modules, desired_hash,
		coalesce(blocked_sql, ''), coalesce(last_error, ''), generation, `+rowVersion+` FROM erpctl.tenants WHERE slug = $1`, slug.String()).
		Scan(&r.Schema, &r.Status, &r.Reason, &followAll, &chosen, &desiredHash, &r.BlockedSQL, &lastError, &gen, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant %q: %w", slug, err)
	}
	r.Found, r.LastError = true, lastError
	d, err := p.tenantDesired(ctx, nil, gen)
	if err != nil {
		return nil, fmt.Errorf("read tenant %q: %w", slug, err)
	}
	r.Generation, r.Registry = gen.Int64, d.reg
	enabled, err := enabledModules(d.reg, followAll, chosen)
	// A Blocked tenant records the desired state it could not reach, not the one it has: its
	// tables are those of its generation all the same.
	r.Current = err == nil && gen.Valid && (desiredHash == d.reg.Hash(enabled) || r.Status != StatusReady)
	r.Modules = enabled
	return r, nil
}

// rowVersion is a catalog row's version: its xmin, the transaction that wrote the version of the
// row a statement sees. An update that commits makes a new version; a rolled back one, a row lock
// or VACUUM's freezing (which keeps xmin since PostgreSQL 9.4) do not.
const rowVersion = `xmin::text::bigint`

// TenantVersions reads the version of each tenant's catalog row (Readiness.Version) in one
// statement; a tenant that no longer exists is not in the map. A state judged from a row whose
// version has not moved is still the tenant's state, whatever time has passed: the generation
// it names never changes.
func (p *Plane) TenantVersions(ctx context.Context, slugs []string) (map[string]int64, error) {
	rows, err := p.pool.Query(ctx, `SELECT slug, `+rowVersion+` FROM erpctl.tenants WHERE slug = ANY($1::text[])`, slugs)
	if err != nil {
		return nil, fmt.Errorf("read the versions of %d tenants: %w", len(slugs), err)
	}
	out := make(map[string]int64, len(slugs))
	var (
		slug    string
		version int64
	)
	_, err = pgx.ForEachRow(rows, []any{&slug, &version}, func() error {
		out[slug] = version
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the versions of %d tenants: %w", len(slugs), err)
	}
	return out, nil
}
