package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
)

// isUnsafeNewEnumValue reports whether err is PostgreSQL refusing to use an enum value added in
// the same transaction (55P04): from PostgreSQL 12 ALTER TYPE ... ADD VALUE runs in a
// transaction, but the value it adds is usable only once that transaction has committed.
func isUnsafeNewEnumValue(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P04"
}

// enumValueStatements picks from a plan the statements that add enum values.
func enumValueStatements(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		if strings.HasPrefix(s, "ALTER TYPE ") && strings.Contains(s, " ADD VALUE ") {
			out = append(out, s)
		}
	}
	return out
}

// addEnumValues commits, in a transaction of its own under the tenant's lock, the enum values a
// plan adds, so that the rest of the plan may use them. Only values are added, never removed,
// so a failure of the rest leaves a tenant with one more value than it had, still a state the
// next plan starts from (the fingerprint hashes enum labels); nothing else is applied early.
func (p *Plane) addEnumValues(ctx context.Context, slug ident.Slug, o ReconcileOptions, stmts []string) error {
	adds := enumValueStatements(stmts)
	if len(adds) == 0 {
		return errors.New("no enum values to add")
	}
	tx, ok, err := p.lockTx(ctx, slug, o, true)
	if err != nil || !ok {
		return fmt.Errorf("add enum values to tenant %s: %w", slug, err)
	}
	defer tx.Rollback()
	if err := p.execPlan(ctx, tx, slug.Schema(), adds); err != nil {
		return fmt.Errorf("add enum values to tenant %s: %w", slug, err)
	}
	// Committed apart from the rest of the plan, they have an event of their own.
	kind, why := o.eventOf(slug)
	if err := insertGenEvent(ctx, tx, slug, o.pass.gen, kind, why, strings.Join(adds, ";\n"), 0, "applied", nil); err != nil {
		return fmt.Errorf("add enum values to tenant %s: %w", slug, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add enum values to tenant %s: %w", slug, err)
	}
	return nil
}

// applyGroupPlanAfterEnums applies a group's plan to one more tenant, first committing the enum
// values the group's first tenant had to commit before its plan (none, mostly). ok is false when
// the tenant needs its own inspection.
func (p *Plane) applyGroupPlanAfterEnums(ctx context.Context, t *tenantRef, gp *groupPlan, o ReconcileOptions) (Result, bool) {
	if len(gp.enumFirst) > 0 && t.currentFP != "" {
		if err := p.addEnumValues(ctx, t.slug, o, gp.enumFirst); err != nil {
			p.log.Debug("enum values of the group plan did not fit; inspecting the tenant itself", "tenant", t.slug, "err", err)
			return Result{}, false
		}
	}
	r, ok := p.applyGroupPlan(ctx, t, gp, o)
	if ok && len(gp.enumFirst) > 0 && t.currentFP != "" && r.Action != ActionSkipped {
		r.SQL = append(slices.Clone(gp.enumFirst), r.SQL...)
	}
	return r, ok
}
