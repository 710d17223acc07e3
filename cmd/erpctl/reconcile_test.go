package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/modules"
)

// module new writes a file that loads; a new module reaches tenants that follow every module;
// plan groups tenants with the same SQL; reconcile applies it.
func TestModuleNewPlanReconcile(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, s := range []string{"acme", "globex", "initech"} {
		c.ok("tenant", "create", s)
	}
	c.ok("tenant", "create", "hooli", "--modules", "product")
	c.modulesDir = filepath.Join(t.TempDir(), "modules") // module new creates it

	r := c.ok("module", "new", "crm")
	path := filepath.Join(c.modulesDir, "crm.hcl")
	contains(t, "module new output", r.stdout, path, "crm_items")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "starter", string(src), `schema "tenant" {}`, `table "crm_items"`, "tenant-aware columns are added\n# automatically")
	reg, err := modules.Load(c.modulesDir)
	if err != nil {
		t.Fatalf("the starter module does not load: %v", err)
	}
	m, ok := reg.Module("crm")
	if !ok || m.Builtin || len(m.Tables) != 1 || m.Tables[0] != "crm_items" {
		t.Fatalf("crm module: %+v", m)
	}
	c.expect(2, "already exists", "module", "new", "crm")
	c.expect(2, "built-in module", "module", "new", "product")
	c.expect(2, "invalid module name", "module", "new", "Crm")
	c.expect(2, "invalid module name", "module", "new", "crm-x")
	c.expect(2, "invalid module name", "module", "new", "9crm")
	dir := c.modulesDir
	c.modulesDir = ""
	c.expect(2, "--modules-dir", "module", "new", "sales")
	c.modulesDir = dir
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("modules dir: %v", entries)
	}

	contains(t, "module list", c.ok("module", "list").stdout, "crm", path, "crm_items")
	contains(t, "module show", c.ok("module", "show", "crm").stdout, "crm_items", "/api/{tenant}/crm/crm-items/", "read-only", "required")

	// The three tenants that follow every module need the same SQL; hooli needs none.
	r = c.ok("plan", "--all")
	contains(t, "plan", r.stdout, "differ from generation 1", "3 tenants (acme, globex, initech):", `CREATE TABLE "crm_items"`, "1 tenant: no changes")
	if strings.Count(r.stdout, "CREATE TABLE") != 1 {
		t.Fatalf("plan did not group identical plans:\n%s", r.stdout)
	}
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'crm_items'`); n != 0 {
		t.Fatal("plan applied something")
	}
	contains(t, "plan acme", c.ok("plan", "acme").stdout, "1 tenant (acme):", "CREATE TABLE")

	hooli := c.snapshot("tenant_hooli")
	c.expect(2, "differ from module generation 1", "reconcile", "--all")
	r = c.ok("reconcile", "--all", "--publish", "-m", "crm")
	contains(t, "reconcile", r.stdout, "Published module generation 2", "4 tenants", "3 applied", "1 unchanged", "acme", "globex", "initech")
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'crm_items'`); n != 3 {
		t.Fatalf("crm_items in %d schemas, want 3", n)
	}
	if c.snapshot("tenant_hooli") != hooli {
		t.Fatal("reconcile changed a tenant that does not have the module")
	}
	r = c.ok("plan", "--all")
	contains(t, "plan after", r.stdout, "4 tenants: no changes")
	if strings.Contains(r.stdout, "differ") {
		t.Fatalf("plan says the published files differ:\n%s", r.stdout)
	}

	// Dropping a column from the module is destructive: the publish is refused, nothing changes.
	c.writeModule("crm", strings.Replace(string(src), "  column \"notes\" {\n    type = text\n    null = true\n  }\n", "", 1))
	r = c.expect(1, "would drop or narrow what 3 tenants have", "reconcile", "--all", "--publish")
	contains(t, "refused publish", r.stdout, `DROP COLUMN "notes"`, "Not published")
	// Published all the same: the tenants are Blocked, exit 1, nothing applied.
	c.ok("module", "publish", "--allow-destructive")
	r = c.run("reconcile", "--all")
	if r.code != 1 {
		t.Fatalf("reconcile with a destructive change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkErrorMessage(t, r, "blocked")
	contains(t, "reconcile blocked", r.stdout, "blocked", "--allow-destructive")
	if n := c.count(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'crm_items' AND column_name = 'notes'`); n != 3 {
		t.Fatal("a destructive change was applied without --allow-destructive")
	}
	r = c.ok("tenant", "show", "acme")
	contains(t, "show blocked", r.stdout, "Blocked", "Blocked on destructive SQL", `DROP COLUMN "notes"`)
	// plan predicts the refusal: exit 1, as reconcile's.
	contains(t, "plan blocked", c.expect(1, "would refuse 3 tenants", "plan", "--all").stdout, "3 tenants (acme, globex, initech)", "blocked", `DROP COLUMN "notes"`)

	r = c.ok("reconcile", "acme", "--allow-destructive")
	contains(t, "reconcile acme", r.stdout, "applied", `DROP COLUMN "notes"`)
	if n := c.count(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'crm_items' AND column_name = 'notes'`); n != 2 {
		t.Fatal("--allow-destructive on acme did not apply only to acme")
	}
}

// debug tables reports a dropped table as missing (exit 1); --fix brings it back.
func TestDebugTables(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.sql(`DROP TABLE tenant_globex.stock_items`)
	c.sql(`CREATE TABLE tenant_globex.notes (x int)`)
	acme := c.snapshot("tenant_acme")

	r := c.run("debug", "tables", "globex")
	if r.code != 1 {
		t.Fatalf("unhealthy tenant: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	checkErrorMessage(t, r, "unhealthy")
	contains(t, "stock_items row", lineWith(r.stdout, "inventory   stock_items"), "missing")
	contains(t, "notes row", r.stdout, "notes", "unmanaged")
	var report struct {
		Healthy bool `json:"healthy"`
	}
	r = c.run("debug", "tables", "globex", "-o", "json")
	decodeOne(t, r.stdout, &report)
	if r.code != 1 || report.Healthy {
		t.Fatalf("debug tables -o json of an unhealthy tenant: exit %d, %s", r.code, r.stdout)
	}
	c.ok("debug", "tables", "acme")

	r = c.ok("debug", "tables", "globex", "--fix")
	contains(t, "fix", r.stdout, "missing", `CREATE TABLE "stock_items"`, "After the fix", "healthy")
	c.ok("debug", "tables", "globex")
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tenant_globex' AND table_name = 'notes'`); n != 1 {
		t.Fatal("--fix dropped an unmanaged table")
	}
	if c.snapshot("tenant_acme") != acme {
		t.Fatal("fixing globex changed acme")
	}
}
