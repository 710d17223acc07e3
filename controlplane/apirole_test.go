package controlplane_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// The data API's pool runs as a role that reads and writes tenant rows and can do nothing
// else: no DDL, no catalog (tokens), no server programs. A tenant made after the role, and one
// made before it, are both open to it. Behind PgBouncer the role goes with each statement's
// transaction, and holds the same.
func TestAPIRoleIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) { t.Parallel(); apiRoleIsLeastPrivilege(t, cptest.New(t)) })
	t.Run("pgbouncer", func(t *testing.T) { t.Parallel(); apiRoleIsLeastPrivilege(t, cptest.NewPooled(t)) })
}

func apiRoleIsLeastPrivilege(t *testing.T, e *cptest.Env) {
	e.Create("acme")
	e.Create("globex")
	if e.P.APIRole(e.Ctx) == "" {
		t.Fatal("no data API role, though the tests have a superuser")
	}
	pool, err := e.P.APIDB(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var who string
	if err := pool.QueryRow(e.Ctx, `SELECT current_user`).Scan(&who); err != nil || who != e.P.APIRole(e.Ctx) {
		t.Fatalf("the API pool runs as %q (%v)", who, err)
	}
	for _, q := range []string{
		`INSERT INTO tenant_acme.categories (name) VALUES ('tools')`,
		`UPDATE tenant_globex.categories SET name = name`,
		`SELECT count(*) FROM tenant_globex.products`,
		`DELETE FROM tenant_acme.categories WHERE name = 'tools'`,
	} {
		if _, err := pool.Exec(e.Ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		`CREATE TABLE tenant_acme.x (id int)`,
		`ALTER TABLE tenant_acme.products ADD COLUMN x int`,
		`DROP TABLE tenant_globex.categories`,
		`TRUNCATE tenant_acme.products`,
		`SELECT count(*) FROM erpctl.tokens`,
		`SELECT count(*) FROM erpctl.tenants`,
		`COPY (SELECT 1) TO PROGRAM 'true'`,
		`SELECT pg_read_file('postgresql.conf')`,
		`CREATE SCHEMA evil`,
	} {
		_, err := pool.Exec(e.Ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: %v, want insufficient privilege (42501)", q, err)
		}
	}
	// A tenant made now is open to the role too, and the schemas are as their modules say.
	e.Create("initech")
	if _, err := pool.Exec(e.Ctx, `INSERT INTO tenant_initech.categories (name) VALUES ('new')`); err != nil {
		t.Fatalf("a tenant made after the role: %v", err)
	}
	// A table a rollout adds, and a schema the reconciler makes again after a DROP by hand, are
	// open to it too (default privileges; grants on a schema that has none).
	e.WriteModule("crm", "schema \"tenant\" {}\ntable \"leads\" {\n  schema = schema.tenant\n  column \"email\" {\n    type = text\n  }\n}\n")
	for _, s := range []string{"acme", "globex"} {
		if _, err := e.P.EnableModule(e.Ctx, ident.MustParseSlug(s), "crm"); err != nil {
			t.Fatal(err)
		}
	}
	e.Exec(`DROP SCHEMA tenant_globex CASCADE`)
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`INSERT INTO tenant_acme.leads (email) VALUES ('a@x')`, `INSERT INTO tenant_globex.leads (email) VALUES ('g@x')`,
		`INSERT INTO tenant_globex.categories (name) VALUES ('again')`} {
		if _, err := pool.Exec(e.Ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		e.DebugHealthy(s)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.leads`); n != 1 {
		t.Fatalf("acme's leads: %d", n)
	}
}
