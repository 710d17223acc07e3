package controlplane_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// As the embedded cluster runs it, the control plane's role owns its database and is no
// superuser: what would reach the operating system, other roles or the server's settings is
// refused at the source, while the whole lifecycle works on two tenants (and a third).
func TestControlPlaneAsItsOwnRole(t *testing.T) {
	t.Parallel()
	e := cptest.NewOwned(t)
	e.Create("acme", "product")
	e.Create("globex", "product")
	pool := e.P.Pool()

	var who string
	var super, createrole bool
	if err := pool.QueryRow(e.Ctx, `SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user`).
		Scan(&who, &super, &createrole); err != nil {
		t.Fatal(err)
	}
	if super || createrole || !strings.HasPrefix(who, "o_") {
		t.Fatalf("the control plane runs as %s (superuser %v, createrole %v)", who, super, createrole)
	}
	// What needs a superuser was done once at Open: the data API's role and change tracking.
	if e.P.APIRole(e.Ctx) == "" {
		t.Fatal("no data API role")
	}
	if ok, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("change tracking: %v %v", ok, err)
	}

	for _, q := range []string{
		`COPY (SELECT 1) TO PROGRAM 'true'`,
		`COPY tenant_acme.products FROM PROGRAM 'true'`,
		`CREATE EXTENSION file_fdw`,
		`ALTER SYSTEM SET work_mem = '1GB'`,
		`SELECT rolpassword FROM pg_authid`,
		`SELECT pg_read_file('postgresql.conf')`,
		`CREATE EVENT TRIGGER sneaky ON ddl_command_end EXECUTE FUNCTION erpctl.note_schema_change()`,
		`GRANT pg_execute_server_program TO CURRENT_USER`,
		`CREATE ROLE sneaky`,
		`CREATE DATABASE sneaky`,
		`ALTER FUNCTION erpctl.note_schema_change() SECURITY INVOKER`,
		`CREATE OR REPLACE FUNCTION erpctl.note_schema_change() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END'`,
	} {
		_, err := pool.Exec(e.Ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: %v, want insufficient privilege (42501)", q, err)
		}
	}

	// A trigger the role hangs on the change tracking table runs, on a superuser's DDL, as the
	// tracker role, which can do nothing: not as the superuser.
	for _, q := range []string{
		`CREATE TABLE public.seen (who text, super bool)`,
		`GRANT INSERT ON public.seen TO PUBLIC`,
		`CREATE FUNCTION public.spy() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
			INSERT INTO public.seen SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user; RETURN NEW; END$$`,
		`CREATE TRIGGER spy BEFORE INSERT OR UPDATE ON erpctl.changed_schemas FOR EACH ROW EXECUTE FUNCTION public.spy()`,
	} {
		if _, err := pool.Exec(e.Ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.Exec(`ALTER TABLE tenant_acme.products ADD COLUMN note text`) // as the superuser
	if got := e.Strings(`SELECT who || ' ' || super FROM public.seen`); len(got) != 1 || !strings.HasPrefix(got[0], "erpctl_track_") || !strings.HasSuffix(got[0], " false") {
		t.Fatalf("the trigger ran as %v, want the tracker role once", got)
	}
	if _, err := pool.Exec(e.Ctx, `DROP TRIGGER spy ON erpctl.changed_schemas; DROP TABLE public.seen; DROP FUNCTION public.spy()`); err != nil {
		t.Fatal(err)
	}
	changed, err := e.P.ChangedTenants(e.Ctx)
	if err != nil || !slices.Equal(identStrings(changed), []string{"acme"}) {
		t.Fatalf("changed tenants after the superuser's DDL on acme: %v %v", changed, err)
	}

	// Reconcile: the column added by hand is not in the modules, so acme stays as it is
	// (a drop is destructive); globex is untouched.
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	e.Exec(`ALTER TABLE tenant_acme.products DROP COLUMN note`)

	// A module change on one tenant, then a repair (debug tables --fix) of drift made by hand on
	// the other.
	e.WriteModule("crm", "schema \"tenant\" {}\ntable \"leads\" {\n  schema = schema.tenant\n  column \"email\" {\n    type = text\n  }\n}\n")
	if _, err := e.P.EnableModule(e.Ctx, ident.MustParseSlug("acme"), "crm"); err != nil {
		t.Fatalf("enable crm on acme: %v", err)
	}
	if _, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{}); err != nil {
		t.Fatalf("reconcile acme: %v", err)
	}
	e.Exec(`ALTER TABLE tenant_globex.products DROP COLUMN description`)
	if rep, err := e.P.DebugTables(e.Ctx, ident.MustParseSlug("globex")); err != nil || rep.Healthy {
		t.Fatalf("debug tables globex after a drop by hand: %v %+v", err, rep)
	}
	if _, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("globex"), controlplane.ReconcileOptions{}); err != nil {
		t.Fatalf("fix globex: %v", err)
	}
	e.DebugHealthy("acme")
	e.DebugHealthy("globex")
	if slices.Contains(e.Tables("tenant_globex"), "leads") || !slices.Contains(e.Tables("tenant_acme"), "leads") {
		t.Fatalf("leads: acme %v, globex %v", e.Tables("tenant_acme"), e.Tables("tenant_globex"))
	}
	if n := e.Count(`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname LIKE 'tenant\_%' AND pg_get_userbyid(c.relowner) <> $1`, who); n != 0 {
		t.Fatalf("%d tenant relations not owned by %s", n, who)
	}

	// Tokens and the data API, on the data API's role: each token reaches its own tenant only.
	pool2, err := e.P.APIDB(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Config{Plane: e.P, DB: pool2})
	secrets := map[string]string{}
	for _, s := range []string{"acme", "globex"} {
		if _, secrets[s], err = e.P.CreateToken(e.Ctx, ident.MustParseSlug(s), s+"-bot"); err != nil {
			t.Fatalf("token for %s: %v", s, err)
		}
	}
	call := func(method, path, tenant, body string) int {
		req := httptest.NewRequest(method, "http://example.com"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secrets[tenant])
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := call("POST", "/api/acme/crm/leads/", "acme", `{"email": "a@example.com"}`); code != http.StatusCreated {
		t.Fatalf("POST acme lead: %d", code)
	}
	if code := call("POST", "/api/globex/product/categories/", "globex", `{"name": "tools"}`); code != http.StatusCreated {
		t.Fatalf("POST globex category: %d", code)
	}
	if code := call("GET", "/api/globex/product/categories/", "acme", ""); code < 400 {
		t.Fatalf("acme's token read globex: %d", code)
	}
	if n := e.Count(`SELECT (SELECT count(*) FROM tenant_acme.leads) * 10 + (SELECT count(*) FROM tenant_globex.categories) + (SELECT count(*) FROM tenant_acme.categories) * 100`); n != 11 {
		t.Fatalf("rows: %d, want one lead in acme and one category in globex", n)
	}

	// A third tenant.
	e.Create("initech")
	e.DebugHealthy("initech")
	if code := call("GET", "/api/acme/crm/leads/", "acme", ""); code != http.StatusOK {
		t.Fatalf("GET acme leads: %d", code)
	}
}

// Without a superuser at all (an external database, a role that owns it), the control plane still
// works: the data API runs as its role, and change tracking reports that it is off.
func TestControlPlaneWithoutASuperuser(t *testing.T) {
	t.Parallel()
	url, _ := pgtest.NewOwnedDB(t)
	p, err := controlplane.Open(context.Background(), controlplane.Config{DatabaseURL: url, ModulesDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open as the database's owner: %v", err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, s := range []string{"acme", "globex"} {
		if _, err := p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(s)}); err != nil {
			t.Fatalf("create %s: %v", s, err)
		}
	}
	if p.APIRole(ctx) != "" {
		t.Fatalf("a data API role %s without CREATEROLE nor superuser", p.APIRole(ctx))
	}
	if ok, err := p.EnableChangeTracking(ctx); err != nil || ok {
		t.Fatalf("change tracking without a superuser: %v %v", ok, err)
	}
	pass, err := p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
	if err != nil || len(pass.Results) != 2 {
		t.Fatalf("reconcile: %v %+v", err, pass)
	}
	if _, err := p.Pool().Exec(ctx, `COPY (SELECT 1) TO PROGRAM 'true'`); err == nil {
		t.Fatal("COPY TO PROGRAM ran as the database's owner")
	}
}

func identStrings(s []ident.Slug) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.String()
	}
	return out
}
