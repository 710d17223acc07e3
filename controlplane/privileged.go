package controlplane

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// setUpPrivileged does, as the superuser of adminURL, what the control plane's own role may not:
// it makes the data API's role and grants it to the control plane's role (so that role needs no
// CREATEROLE, which up to PostgreSQL 15 lets a role grant itself pg_execute_server_program), and
// installs change tracking. It runs once: when both are in place, it costs one query and no
// connection.
func (p *Plane) setUpPrivileged(ctx context.Context, adminURL string) error {
	var owner string
	var member bool
	var owned int
	if err := p.pool.QueryRow(ctx, `SELECT current_user,
		EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = `+apiRoleExpr+` AND pg_catalog.pg_has_role(current_user, oid, 'MEMBER')),
		(SELECT count(*) FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc f ON f.oid = e.evtfoid
			WHERE e.evtname = ANY($1) AND pg_catalog.pg_get_userbyid(f.proowner) = `+trackerRoleExpr+`)`,
		changeTriggerNames).Scan(&owner, &member, &owned); err != nil {
		return fmt.Errorf("check what needs a superuser: %w", err)
	}
	if member && owned == len(changeTriggers) {
		return nil
	}
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return fmt.Errorf("connect as the superuser: %w", err)
	}
	defer db.Close()
	tx, err := schema.Begin(ctx, db)
	if err != nil {
		return fmt.Errorf("connect as the superuser: %w", err)
	}
	defer tx.Rollback()
	var super bool
	if err := tx.QueryRowContext(ctx, `SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return fmt.Errorf("read the superuser's role: %w", err)
	}
	if !super {
		return fmt.Errorf("the admin URL's role is no superuser")
	}
	if err := tx.ExecStatements(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, catalogLockKey)); err != nil {
		return err
	}
	var api string
	var have bool
	if err := tx.QueryRowContext(ctx, `SELECT r, EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) FROM (SELECT `+
		apiRoleExpr+` AS r) t`).Scan(&api, &have); err != nil {
		return fmt.Errorf("read the data API's role: %w", err)
	}
	var stmts []string
	if !have {
		stmts = append(stmts, "CREATE ROLE "+ident.Quote(api)+" NOLOGIN NOINHERIT")
	}
	stmts = append(stmts, "GRANT "+ident.Quote(api)+" TO "+ident.Quote(owner))
	if err := tx.ExecStatements(ctx, stmts...); err != nil {
		return fmt.Errorf("make the data API's role %s: %w", api, err)
	}
	if err := installTracking(ctx, tx); err != nil {
		return fmt.Errorf("install change tracking: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	p.log.Info("set up as the superuser what the control plane's role may not do", "role", owner, "api_role", api)
	return nil
}
