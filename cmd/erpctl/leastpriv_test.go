//go:build unix

package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// An ERPCTL_HOME made by an earlier erpctl, which ran as the superuser (no erpctl role, the
// database and everything in it the superuser's, change tracking installed by the superuser), is
// handed to the erpctl role on first use: tenants, tokens, events and statuses are kept, nothing
// is left the superuser's, and a third tenant and a reconcile work.
func TestEarlierHomeIsHandedToItsRole(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home, cluster := embeddedHome(t, ctx, 0o755) // the postgres user must reach it when we are root
	// Back to what an earlier erpctl left: no role, a database the superuser owns.
	admin := func(db, q string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, cluster.AdminURL(db))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	admin("postgres", `DROP DATABASE erpctl WITH (FORCE)`)
	admin("postgres", `DROP ROLE erpctl`)
	admin("postgres", `CREATE DATABASE erpctl`)
	if err := os.Remove(filepath.Join(home, "pg.erpctl.password")); err != nil {
		t.Fatal(err)
	}

	c := &cli{t: t, url: cluster.AdminURL(pgcluster.DefaultDatabase), env: map[string]string{}}
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex", "--modules", "product")
	c.ok("token", "create", "acme", "--name", "acme-bot")
	c.ok("token", "create", "globex", "--name", "globex-bot")
	c.sql(`ALTER TABLE tenant_globex.products DROP COLUMN description`)
	c.ok("reconcile", "globex")
	// Change tracking as an earlier daemon, running as the superuser, installed it.
	c.sql(`CREATE OR REPLACE FUNCTION erpctl.note_schema_change() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN END'`)
	c.sql(`CREATE EVENT TRIGGER erpctl_schema_changed ON ddl_command_end EXECUTE FUNCTION erpctl.note_schema_change()`)
	state := func() string {
		var s string
		if err := c.db().QueryRow(ctx, `SELECT (SELECT string_agg(concat_ws(' ', slug, status, status_reason, fingerprint), ', ' ORDER BY slug) FROM erpctl.tenants)
			|| ' | ' || (SELECT string_agg(concat_ws(' ', tenant, name, md5(hash::text)), ', ' ORDER BY tenant) FROM erpctl.tokens)
			|| ' | ' || (SELECT count(*) FROM erpctl.events)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := state()

	// The new erpctl, on the home.
	c.env[envHome] = home
	r := c.exec("db", "url")
	if r.code != 0 {
		t.Fatalf("db url: %d %s", r.code, r.stderr)
	}
	u, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil || u.User.Username() != pgcluster.Role {
		t.Fatalf("db url = %q (%v), want the %s role's", r.stdout, err, pgcluster.Role)
	}
	if r := c.exec("tenant", "list"); r.code != 0 || !strings.Contains(r.stdout, "acme") || !strings.Contains(r.stdout, "globex") {
		t.Fatalf("tenant list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if got := state(); got != before {
		t.Fatalf("the catalog changed on takeover:\n%s\nwant\n%s", got, before)
	}
	var left string
	if err := c.db().QueryRow(ctx, `SELECT coalesce(string_agg(what, ', ' ORDER BY what), '') FROM (
		SELECT 'schema ' || nspname AS what FROM pg_namespace WHERE nspowner = 'postgres'::regrole AND (nspname = 'erpctl' OR nspname LIKE 'tenant\_%')
		UNION ALL SELECT 'relation ' || c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relowner = 'postgres'::regrole AND (n.nspname = 'erpctl' OR n.nspname LIKE 'tenant\_%')
		UNION ALL SELECT 'function ' || p.oid::regproc || ' of ' || pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'erpctl' AND pg_get_userbyid(p.proowner) NOT LIKE 'erpctl\_track\_%'
		UNION ALL SELECT 'database' FROM pg_database WHERE datname = 'erpctl' AND datdba <> 'erpctl'::regrole
		UNION ALL SELECT 'event trigger ' || evtname FROM pg_event_trigger WHERE evtname LIKE 'erpctl%' AND pg_get_userbyid(
			(SELECT proowner FROM pg_proc WHERE oid = evtfoid)) NOT LIKE 'erpctl\_track\_%') o`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "" {
		t.Fatalf("not handed over: %s", left)
	}
	var member bool
	if err := c.db().QueryRow(ctx, `SELECT pg_has_role('erpctl', (SELECT value FROM erpctl.meta WHERE key = 'api_role'), 'MEMBER')`).Scan(&member); err != nil || !member {
		t.Fatalf("the erpctl role is no member of the data API's role: %v %v", member, err)
	}

	// It works as the role: a third tenant, a module change on one tenant, a reconcile of all.
	for _, args := range [][]string{
		{"tenant", "create", "initech"},
		{"tenant", "enable-module", "globex", "inventory"},
		{"reconcile", "--all"},
		{"debug", "tables", "globex"},
		{"token", "list", "acme"},
	} {
		if r := c.exec(args...); r.code != 0 {
			t.Fatalf("erpctl %s: %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if n := c.count(`SELECT count(*) FROM erpctl.tenants WHERE status = 'Ready'`); n != 3 {
		t.Fatalf("%d Ready tenants, want 3", n)
	}
	if n := c.count(`SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'tenant\_%' AND tableowner <> 'erpctl'`); n != 0 {
		t.Fatalf("%d tenant tables not owned by erpctl", n)
	}
	if n := c.count(`SELECT count(*) FROM erpctl.tokens`); n != 2 {
		t.Fatalf("%d tokens, want 2", n)
	}
}
