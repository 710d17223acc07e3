package controlplane

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/ident"
)

// lastRepair is a tenant's newest event that a repair recorded (an apply, a block or a failure
// with a cause), nil when it has none.
func (p *Plane) lastRepair(ctx context.Context, slug ident.Slug) (*Event, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, tenant, at, kind, sql, duration_ms, outcome, error, reason, generation
		FROM erpctl.events WHERE tenant = $1 AND reason IS NOT NULL
		AND kind IN ('repair', 'blocked', 'failed', 'refused') ORDER BY id DESC LIMIT 1`, slug.String())
	if err != nil {
		return nil, err
	}
	ev, err := pgx.CollectOneRow(rows, pgx.RowToStructByPos[Event])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &ev, nil
}
