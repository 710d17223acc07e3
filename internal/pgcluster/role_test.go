//go:build unix

package pgcluster

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestRole checks that erpctl's URL is the non-superuser role that owns the database, that the
// role can use it, and that it cannot reach the operating system or other roles' secrets; then
// that a database an earlier erpctl made (no role, everything the superuser's) is handed to the
// role in place, with its rows.
func TestRole(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	home := newHome(t)
	c := OpenWithOptions(home, Options{Ephemeral: true})
	if err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(c.URL(DefaultDatabase))
	if err != nil {
		t.Fatal(err)
	}
	if u.User.Username() != Role {
		t.Fatalf("URL user = %s, want %s", u.User.Username(), Role)
	}
	if fi, err := os.Stat(filepath.Join(home, rolePassFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("role password file: %v, %v; want mode 0600", err, fi)
	}
	admin := c.AdminURL(DefaultDatabase)
	if got := query(t, ctx, admin, `SELECT concat_ws(' ', current_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
		pg_get_userbyid(d.datdba)) FROM pg_roles r, pg_database d WHERE r.rolname = 'erpctl' AND d.datname = 'erpctl'`); got != "postgres f f f t erpctl" {
		t.Fatalf("admin user; erpctl role's super, createrole, createdb, login; database owner = %q", got)
	}
	execSQL(t, ctx, c.URL(DefaultDatabase), `CREATE SCHEMA mine; CREATE TABLE mine.t (id serial PRIMARY KEY, v text); INSERT INTO mine.t (v) VALUES ('x')`)
	refused(t, c.URL(DefaultDatabase),
		`COPY (SELECT 1) TO PROGRAM 'true'`,
		`ALTER SYSTEM SET work_mem = '1GB'`,
		`SELECT rolpassword FROM pg_authid`,
		`GRANT pg_execute_server_program TO erpctl`,
		`CREATE ROLE sneaky SUPERUSER`,
		`CREATE EXTENSION file_fdw`,
	)

	t.Run("earlier home", func(t *testing.T) {
		// What an earlier erpctl left: no role, a database the superuser owns with everything in it.
		execSQL(t, ctx, c.AdminURL("postgres"), `DROP DATABASE erpctl WITH (FORCE)`)
		execSQL(t, ctx, c.AdminURL("postgres"), `DROP OWNED BY erpctl; DROP ROLE erpctl`)
		execSQL(t, ctx, c.AdminURL("postgres"), `CREATE DATABASE erpctl`)
		if err := os.Remove(filepath.Join(home, rolePassFile)); err != nil {
			t.Fatal(err)
		}
		execSQL(t, ctx, admin, `CREATE SCHEMA erpctl;
			CREATE TABLE erpctl.tenants (slug text PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY);
			INSERT INTO erpctl.tenants (slug) VALUES ('acme'), ('globex');
			CREATE SCHEMA tenant_acme; CREATE SCHEMA tenant_globex;
			CREATE TYPE tenant_acme.state AS ENUM ('open', 'shut');
			CREATE DOMAIN tenant_globex.qty AS integer CHECK (VALUE >= 0);
			CREATE TABLE tenant_acme.orders (id serial PRIMARY KEY, s tenant_acme.state) PARTITION BY RANGE (id);
			CREATE TABLE tenant_acme.orders_1 PARTITION OF tenant_acme.orders FOR VALUES FROM (1) TO (1000);
			INSERT INTO tenant_acme.orders (s) VALUES ('open');
			CREATE TABLE tenant_globex.items (id bigserial PRIMARY KEY, q tenant_globex.qty);
			INSERT INTO tenant_globex.items (q) VALUES (3);
			CREATE SEQUENCE tenant_globex.numbers;
			CREATE VIEW tenant_globex.v AS SELECT id FROM tenant_globex.items;
			CREATE FUNCTION erpctl.f(a int) RETURNS int LANGUAGE sql AS 'SELECT a';
			CREATE FUNCTION erpctl.note() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'`)

		fresh := OpenWithOptions(home, Options{Ephemeral: true})
		if err := fresh.Ensure(ctx); err != nil {
			t.Fatalf("Ensure on an earlier home: %v", err)
		}
		left := query(t, ctx, admin, `SELECT coalesce(string_agg(what, ', ' ORDER BY what), '') FROM (
			SELECT 'schema ' || nspname AS what FROM pg_namespace WHERE nspowner = 'postgres'::regrole AND nspname IN ('erpctl', 'tenant_acme', 'tenant_globex')
			UNION ALL SELECT 'relation ' || oid::regclass FROM pg_class WHERE relowner = 'postgres'::regrole AND relnamespace::regnamespace::text IN ('erpctl', 'tenant_acme', 'tenant_globex')
			UNION ALL SELECT 'function ' || oid::regproc FROM pg_proc WHERE proowner = 'postgres'::regrole AND pronamespace::regnamespace::text = 'erpctl'
			UNION ALL SELECT 'type ' || oid::regtype FROM pg_type WHERE typowner = 'postgres'::regrole AND typnamespace::regnamespace::text IN ('erpctl', 'tenant_acme', 'tenant_globex')
			UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datname = 'erpctl' AND datdba <> 'erpctl'::regrole) o`)
		// The event trigger function stays the superuser's (see takeoverQueries).
		if left != "function erpctl.note" {
			t.Fatalf("still the superuser's: %s", left)
		}
		// The role now uses and changes it all, and the rows are kept.
		role := fresh.URL(DefaultDatabase)
		execSQL(t, ctx, role, `INSERT INTO erpctl.tenants (slug) VALUES ('initech');
			INSERT INTO tenant_acme.orders (s) VALUES ('shut'); INSERT INTO tenant_globex.items (q) VALUES (4);
			SELECT nextval('tenant_globex.numbers');
			ALTER TABLE tenant_acme.orders ADD COLUMN note text; ALTER TYPE tenant_acme.state ADD VALUE 'lost';
			CREATE OR REPLACE VIEW tenant_globex.v AS SELECT id, q FROM tenant_globex.items;
			CREATE SCHEMA tenant_initech`)
		if got := query(t, ctx, role, `SELECT (SELECT string_agg(slug || n, ',' ORDER BY n) FROM erpctl.tenants) || ' ' ||
			(SELECT string_agg(id || ':' || s, ',' ORDER BY id) FROM tenant_acme.orders) || ' ' ||
			(SELECT string_agg(id || ':' || q, ',' ORDER BY id) FROM tenant_globex.items)`); got != "acme1,globex2,initech3 1:open,2:shut 1:3,2:4" {
			t.Errorf("rows after the takeover = %q", got)
		}
		refused(t, role, `COPY (SELECT 1) TO PROGRAM 'true'`, `ALTER FUNCTION erpctl.note() OWNER TO erpctl`)
		// A second Ensure finds nothing to do.
		if err := OpenWithOptions(home, Options{Ephemeral: true}).Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// refused runs each statement as url's user and checks that PostgreSQL refuses it for want of
// privilege.
func refused(t *testing.T, url string, stmts ...string) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		_, err := conn.Exec(ctx, s)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && !strings.Contains(pgErr.Message, "permission denied")) {
			t.Errorf("%s: %v, want permission denied (42501)", s, err)
		}
	}
}
