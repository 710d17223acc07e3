package main

import (
	"strings"
	"testing"

	"github.com/erpctl/erpctl/internal/pgtest"
)

// Behind PgBouncer in transaction mode, with the direct URL given as docs/operations.md says,
// every command works run after run (pgx's statement cache once made the second command fail
// with "prepared statement already exists"), and the two tenants stay apart.
func TestCLIBehindPgBouncer(t *testing.T) {
	t.Parallel()
	direct, admin := pgtest.NewOwnedDB(t)
	c := &cli{t: t, url: pgtest.Pooled(t, direct), direct: direct,
		env: map[string]string{"ERPCTL_DIRECT_DATABASE_URL": direct, "ERPCTL_ADMIN_DATABASE_URL": admin}}
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex", "--modules", "product")
	contains(t, "tenant list", c.ok("tenant", "list").stdout, "acme", "globex")
	for range 2 {
		contains(t, "reconcile", c.ok("reconcile", "--all").stdout, "2 unchanged")
	}
	c.sql(`INSERT INTO tenant_acme.products (sku, name) VALUES ('A1', 'Hammer')`)
	c.sql(`ALTER TABLE tenant_globex.products DROP COLUMN description`)
	contains(t, "debug tables --fix", c.ok("debug", "tables", "globex", "--fix").stdout, "description", "Tenant globex: healthy")
	contains(t, "debug tables", c.ok("debug", "tables", "acme").stdout, "products")
	if !strings.Contains(c.ok("token", "create", "acme", "--name", "bot").stdout, "erp_") {
		t.Fatal("token create printed no token")
	}
	contains(t, "tenant show", c.ok("tenant", "show", "globex", "-o", "json").stdout, `"status": "Ready"`)
	if n := c.count(`SELECT count(*) FROM tenant_globex.products`); n != 0 {
		t.Fatalf("globex has %d products, want none (acme's row crossed?)", n)
	}
	if n := c.count(`SELECT count(*) FROM tenant_acme.products WHERE sku = 'A1'`); n != 1 {
		t.Fatalf("acme has %d of its products", n)
	}
	if n := c.count(`SELECT count(*) FROM information_schema.columns WHERE table_schema = 'tenant_globex' AND table_name = 'products' AND column_name = 'description'`); n != 1 {
		t.Fatal("debug tables --fix did not bring globex's column back")
	}
	// A bad setting is a clear error, and nothing is done.
	c.env["ERPCTL_DIRECT_DATABASE_URL"] = "postgres://%zz"
	r := c.run("tenant", "create", "initech")
	if r.code != 2 || !strings.Contains(r.stderr, "invalid --direct-database-url") {
		t.Fatalf("a bad direct URL: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := c.count(`SELECT count(*) FROM erpctl.tenants`); n != 2 {
		t.Fatalf("%d tenants after a refused create", n)
	}
}
