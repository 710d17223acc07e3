package controlplane

import (
	"context"
	"fmt"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// What the catalog records of an apply (the tenant's status, its event, the migration steps it
// ran, the seed rows it got and the data API's grants on a new schema) travels with the apply's
// own statements: one batch, one round trip, so that a rollout costs little more than its DDL.

// readyRecord is what an apply that leaves a tenant Ready records.
type readyRecord struct {
	slug           ident.Slug
	schemaName     string
	want           desired // the generation applied, and its modules (for their seed rows)
	hash           string
	fp             string // the fingerprint the apply leads to; "": computed by the record itself
	managed        []byte
	kind, why      string
	stmts          []string   // the plan applied, for the event
	ev             *evolution // its migration steps; nil for none
	open           bool       // the data API's role has its grants on the schema already
	distributeSelf bool       // on Citus: distribute the schema first
}

// readyRecordSQL is the record's UPDATE of the tenant. Its fingerprint is $3, or, when the
// caller does not know it, computed from the catalog by the statement itself (the plan ran
// before it in the same batch) and returned. The managed objects ($4) go to their set, which
// every tenant of a rollout shares: the set is written by the first and only looked up after.
var readyRecordSQL = withManagedSet(`$4::text::jsonb`) + `UPDATE erpctl.tenants SET %s, desired_hash = $2, fingerprint = %s, managed = '{}', managed_key = ` + managedSetKey + `,
		last_error = NULL, blocked_sql = NULL, failures = 0, next_attempt_at = NULL,
		last_reconciled_at = now(), updated_at = now(), generation = $5%s WHERE slug = $1 RETURNING fingerprint`

// managedSQL is what erpctl manages in the schema of the tenant t of a query of erpctl.tenants:
// the objects the row holds itself when it has any (a row an earlier erpctl wrote, perhaps
// while this one ran beside it, or restored from its archive), else its set.
const managedSQL = `CASE WHEN t.managed <> '{}' THEN t.managed
	ELSE coalesce((SELECT objects FROM erpctl.managed_sets WHERE key = t.managed_key), '{}') END`

// withManagedSet begins an UPDATE of erpctl.tenants that gives a tenant the managed objects of
// the expression objects: it puts them in their set, and the UPDATE sets managed_key =
// managedSetKey. A set is named by the md5 of its objects as PostgreSQL prints them, so the same
// objects have one name whoever wrote them.
func withManagedSet(objects string) string {
	return `WITH m AS (SELECT ` + objects + ` AS objects),
	s AS (INSERT INTO erpctl.managed_sets (key, objects) SELECT md5(objects::text), objects FROM m ON CONFLICT (key) DO NOTHING)
	`
}

// managedSetKey is the name of the set withManagedSet put in (a statement begun with it).
const managedSetKey = `(SELECT md5(objects::text) FROM m)`

// statements returns the statements that record r: the distribution on Citus, the steps, the
// seed rows, the status, the grants and the event. The status's UPDATE returns the fingerprint
// recorded, at index fpAt of the batch's results.
func (p *Plane) readyStatements(ctx context.Context, tx *schema.Tx, r readyRecord) (stmts []schema.Stmt, fpAt int, err error) {
	if r.distributeSelf {
		if d := p.distributeStmt(r.schemaName); d != nil {
			stmts = append(stmts, *d)
		}
	}
	if r.ev != nil {
		if s := stepsRecord(r.slug, r.ev); s != nil {
			stmts = append(stmts, *s)
		}
	}
	seeds, err := p.seedStatements(ctx, tx, r.slug, r.want.reg)
	if err != nil {
		return nil, 0, err
	}
	stmts = append(stmts, seeds...)
	fpExpr, fpArg := "$3", any(r.fp)
	if r.fp == "" {
		fpExpr = "(" + schema.FingerprintSQL("$3") + ")"
		fpArg = r.schemaName
	}
	applied := ""
	if len(r.stmts) > 0 {
		applied = `, last_applied_at = now()`
	}
	fpAt = len(stmts)
	stmts = append(stmts, schema.Stmt{
		SQL:     fmt.Sprintf(readyRecordSQL, setStatus(StatusReady, ReasonUpToDate), fpExpr, applied),
		Args:    []any{r.slug.String(), r.hash, fpArg, string(r.managed), genArg(r.want.gen)},
		Prepare: true,
	})
	if len(r.stmts) == 0 {
		return stmts, fpAt, nil
	}
	if role := p.APIRole(ctx); role != "" && !r.open {
		for _, g := range apiGrants(r.schemaName, role) {
			stmts = append(stmts, schema.Stmt{SQL: g})
		}
	}
	stmts = append(stmts, eventStmt(r.slug, r.want.gen, r.kind, r.why, strings.Join(r.stmts, ";\n"), "applied"))
	return stmts, fpAt, nil
}

// eventStmt records an event of the tenant's transaction; its duration is the transaction's so
// far, as PostgreSQL clocks it, since the event goes in the same batch as what it records.
func eventStmt(slug ident.Slug, gen int64, kind, why, stmts, outcome string) schema.Stmt {
	var sqlArg, whyArg *string
	if why != "" {
		whyArg = &why
	}
	if stmts != "" {
		sqlArg = &stmts
	}
	return schema.Stmt{
		SQL: `INSERT INTO erpctl.events (tenant, kind, sql, duration_ms, outcome, reason, generation)
		VALUES ($1, $2, $3, extract(epoch FROM clock_timestamp() - now()) * 1000, $4, $5, $6)`,
		Args:    []any{slug.String(), kind, sqlArg, outcome, whyArg, genArg(gen)},
		Prepare: true,
	}
}

// genArg is a generation as a statement's argument: NULL for none (a preview's modules).
func genArg(gen int64) any {
	if gen > 0 {
		return gen
	}
	return nil
}

// stepsRecord records the steps ev ran and those it did not need; nil when there are none.
func stepsRecord(slug ident.Slug, ev *evolution) *schema.Stmt {
	var ids, outcomes []string
	for _, s := range append(append([]modules.Step{}, ev.before...), ev.after...) {
		ids, outcomes = append(ids, s.ID()), append(outcomes, "ran")
	}
	for _, s := range ev.notNeeded {
		ids, outcomes = append(ids, s.ID()), append(outcomes, "not_needed")
	}
	if len(ids) == 0 {
		return nil
	}
	return &schema.Stmt{
		SQL: `INSERT INTO erpctl.migration_steps (tenant, step, outcome)
		SELECT $1, s, o FROM unnest($2::text[], $3::text[]) AS u(s, o) ON CONFLICT DO NOTHING`,
		Args:    []any{slug.String(), ids, outcomes},
		Prepare: true,
	}
}
