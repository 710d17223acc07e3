package controlplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// Readiness is what the data API must know of a tenant before it runs a statement in its schema.
type Readiness struct {
	Found      bool
	Schema     string
	Registry   *modules.Registry // the registry Modules and the desired state come from
	Modules    []string          // what the tenant has, dependencies included
	Status     string
	Reason     string // one of the Reason constants
	Current    bool   // what was last applied is the desired state of Registry
	BlockedSQL string // qualified, for operators; never for clients
}

// Ready reports whether requests may run against the tenant now.
func (r *Readiness) Ready() bool {
	return r.Found && r.Current && r.Status == StatusReady && r.Reason == ReasonUpToDate
}

// Reconcilable reports whether reconciling the tenant now may make it ready: not for a tenant
// that is blocked in its current desired state, which would only block again.
func (r *Readiness) Reconcilable() bool {
	return r.Found && !r.Ready() && !(r.Current && (r.Reason == ReasonDestructiveChange || r.Reason == ReasonDataCheckFailed))
}

// Readiness reads a tenant from the catalog and judges it against the current module registry.
// A tenant that does not exist is Found false, with no error.
func (p *Plane) Readiness(ctx context.Context, slug ident.Slug) (*Readiness, error) {
	reg := p.Registry()
	r := &Readiness{Registry: reg}
	var (
		desiredHash string
		followAll   bool
		chosen      []string
	)
	err := p.pool.QueryRow(ctx, `SELECT schema_name, status, status_reason, follow_all, modules, desired_hash,
		coalesce(blocked_sql, '') FROM erpctl.tenants WHERE slug = $1`, slug.String()).
		Scan(&r.Schema, &r.Status, &r.Reason, &followAll, &chosen, &desiredHash, &r.BlockedSQL)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant %q: %w", slug, err)
	}
	r.Found = true
	enabled, err := enabledModules(reg, followAll, chosen)
	r.Current = err == nil && desiredHash == reg.Hash(enabled)
	r.Modules = enabled
	return r, nil
}
