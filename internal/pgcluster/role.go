package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// roleAttributes are what Role may and may not do. CREATEROLE is left out on purpose: up to
// PostgreSQL 15 a role with it may grant itself pg_execute_server_program or pg_read_server_files,
// which is as good as a superuser. What erpctl needs from a superuser (the data API's role, change
// tracking) is done once through AdminURL instead.
const roleAttributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

// systemSchemas are left to their owners when a database is handed to Role.
const systemSchemasCond = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'`

// takeoverQueries list the statements that give Role what the superuser ($1) owns in the database
// an earlier erpctl made: schemas, tables, views and sequences (but those owned by a column, which
// follow their table), routines, and types (but array and row types, which follow theirs).
// Objects of extensions stay as they are. Event trigger functions stay the superuser's: whoever
// owns one could make it run their code as the next superuser who runs DDL; the control plane
// hands them to a role of their own (see controlplane.Config.AdminURL).
var takeoverQueries = []string{
	`SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $2::text) FROM pg_catalog.pg_namespace n
		WHERE n.nspowner = $1 AND ` + systemSchemasCond + ` ORDER BY 1`,
	`SELECT format('ALTER %s %I.%I OWNER TO %I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
			WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname, $2::text)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relowner = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ` + systemSchemasCond + `
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
			AND d.objid = c.oid AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i'))))
		ORDER BY 1`,
	`SELECT format('ALTER ROUTINE %I.%I(%s) OWNER TO %I', n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), $2::text)
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE p.proowner = $1 AND p.prorettype <> 'pg_catalog.event_trigger'::pg_catalog.regtype AND ` + systemSchemasCond + `
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
		ORDER BY 1`,
	`SELECT format('ALTER %s %I.%I OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, $2::text)
		FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
		WHERE t.typowner = $1 AND t.typtype IN ('c', 'd', 'e', 'r') AND ` + systemSchemasCond + `
		AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
		AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
		ORDER BY 1`,
}

// provision makes Role and DefaultDatabase, owned by it, when they are missing, and hands the
// database of an earlier erpctl, which the superuser owns with everything in it, to Role.
func (c *Cluster) provision(ctx context.Context, port int) error {
	conn, err := c.connect(ctx, port, "postgres")
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := c.ensureRole(ctx, conn); err != nil {
		return err
	}
	var owner string
	err = conn.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = $1`, DefaultDatabase).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DefaultDatabase}.Sanitize()+" OWNER "+pgx.Identifier{Role}.Sanitize())
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database
			return fmt.Errorf("create database %s: %w", DefaultDatabase, err)
		}
		if err == nil {
			return nil
		}
	case err != nil:
		return fmt.Errorf("look for database %s: %w", DefaultDatabase, err)
	case owner == Role:
		return nil
	}
	if err := c.takeOver(ctx, port); err != nil {
		return fmt.Errorf("hand database %s to role %s: %w", DefaultDatabase, Role, err)
	}
	return nil
}

// ensureRole makes Role, or brings it back to its attributes and password (the password file is
// written first, so that a role always has the password its file says).
func (c *Cluster) ensureRole(ctx context.Context, conn *pgx.Conn) error {
	pw := c.readRolePassword()
	if pw == "" {
		var err error
		if pw, err = newPassword(); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(c.Home, rolePassFile), []byte(pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("write password file: %w", err)
		}
		c.mu.Lock()
		c.rolePass = pw
		c.mu.Unlock()
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $1)`, Role).Scan(&exists); err != nil {
		return fmt.Errorf("look for role %s: %w", Role, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	// The password is hex: it needs no quoting beyond the quotes.
	if _, err := conn.Exec(ctx, verb+" ROLE "+pgx.Identifier{Role}.Sanitize()+" "+roleAttributes+" PASSWORD '"+pw+"'"); err != nil {
		return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), Role, err)
	}
	return nil
}

// takeOver gives Role, in one transaction, the database and what the superuser owns in it.
func (c *Cluster) takeOver(ctx context.Context, port int) error {
	conn, err := c.connect(ctx, port, DefaultDatabase)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var super uint32
		if err := tx.QueryRow(ctx, `SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1`, Superuser).Scan(&super); err != nil {
			return fmt.Errorf("look for role %s: %w", Superuser, err)
		}
		var stmts []string
		for _, q := range takeoverQueries {
			rows, err := tx.Query(ctx, q, super, Role)
			if err != nil {
				return fmt.Errorf("list what %s owns: %w", Superuser, err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("list what %s owns: %w", Superuser, err)
			}
			stmts = append(stmts, got...)
		}
		stmts = append(stmts, "ALTER DATABASE "+pgx.Identifier{DefaultDatabase}.Sanitize()+" OWNER TO "+pgx.Identifier{Role}.Sanitize())
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

func (c *Cluster) readRolePassword() string { return c.readSecret(&c.rolePass, rolePassFile) }
