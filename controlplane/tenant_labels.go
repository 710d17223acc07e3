package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// LabelTenant edits a tenant's labels as kubectl label does: each edit sets or removes one, and
// changing a label's value needs overwrite. The change and an event saying it commit together; a
// refused edit changes nothing.
func (p *Plane) LabelTenant(ctx context.Context, slug ident.Slug, edits []labels.Edit, overwrite bool) (*Tenant, error) {
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT labels FROM erpctl.tenants WHERE slug = $1 FOR UPDATE`, slug.String()).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("tenant %w%s", ErrNotFound, p.archivedHint(ctx, slug))
		}
		if err != nil {
			return err
		}
		var old labels.Labels
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("read labels: %w", err)
		}
		next, err := old.Apply(edits, overwrite)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if next.String() == old.String() {
			return nil
		}
		js, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET labels = $2, updated_at = now() WHERE slug = $1`, slug.String(), string(js)); err != nil {
			return err
		}
		return insertEventWhy(ctx, tx, slug, "label", "labels: "+orNone(old.String())+" → "+orNone(next.String()), "", 0, "applied", nil)
	})
	if err != nil {
		return nil, fmt.Errorf("label tenant %q: %w", slug, err)
	}
	return p.GetTenant(ctx, slug)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
