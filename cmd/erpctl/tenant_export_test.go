package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// export and import through the CLI on two tenants: the copy has acme's rows, not globex's; a
// damaged file, a slug in use and a missing file are bad input (exit 2) that change nothing.
func TestTenantExportImportCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.sql(`INSERT INTO tenant_acme.categories (name, description) VALUES ('acme-only', E'tab\there, NULL next'), ('zwei', NULL)`)
	c.sql(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-only')`)
	acme, globex := c.snapshot("tenant_acme"), c.snapshot("tenant_globex")
	dir := t.TempDir()
	file := filepath.Join(dir, "acme.erpctl")

	r := c.ok("tenant", "export", "acme", "-f", file)
	contains(t, "export output", r.stdout, "Exported tenant acme", "2 rows", "4 tables")
	b, err := os.ReadFile(file)
	if err != nil || strings.Contains(string(b), "globex") {
		t.Fatalf("export file: %v, holds globex: %v", err, strings.Contains(string(b), "globex"))
	}
	var rep map[string]any
	decodeOne(t, c.ok("tenant", "import", "acme2", "-f", file, "--name", "ACME two", "-o", "json").stdout, &rep)
	if tn, _ := rep["tenant"].(map[string]any); tn["slug"] != "acme2" || tn["name"] != "ACME two" || tn["status"] != "Ready" {
		t.Fatalf("import json: %v", rep)
	}
	if got := strings.ReplaceAll(c.snapshot("tenant_acme2"), "tenant_acme2", "tenant_acme"); got != acme {
		t.Fatalf("imported rows:\n%s\nwant\n%s", got, acme)
	}

	contains(t, "clone", c.ok("tenant", "create", "hooli", "--from", "acme").stdout, "Created tenant hooli", "from acme", "2 rows")
	if got := strings.ReplaceAll(c.snapshot("tenant_hooli"), "tenant_hooli", "tenant_acme"); got != acme {
		t.Fatalf("cloned rows:\n%s\nwant\n%s", got, acme)
	}
	c.expect(2, "do not go together", "tenant", "create", "xy", "--from", "acme", "--modules", "product")

	before := c.dbState()
	bad := filepath.Join(dir, "bad.erpctl")
	if err := os.WriteFile(bad, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	c.expect(2, "ends early", "tenant", "import", "initech", "-f", bad)
	c.expect(2, "already exists", "tenant", "import", "globex", "-f", file)
	c.expect(2, "no such file", "tenant", "import", "initech", "-f", filepath.Join(dir, "none"))
	c.expect(2, "-f FILE", "tenant", "import", "initech")
	c.expect(2, "not found", "tenant", "export", "nope", "-f", filepath.Join(dir, "nope.erpctl"))
	if _, err := os.Stat(filepath.Join(dir, "nope.erpctl")); !os.IsNotExist(err) {
		t.Fatal("a failed export left a file")
	}
	c.expect(2, "more than zero", "tenant", "purge", "--older-than", "0d", "--yes")
	c.expect(2, "not a duration", "tenant", "purge", "--older-than", "soon", "--yes")
	c.expect(2, "not both", "tenant", "purge", "acme", "--older-than", "30d", "--yes")
	c.expect(2, "give the slug", "tenant", "purge", "--yes")
	c.expect(2, "no archive", "tenant", "restore", "acme")
	if got := c.dbState(); got != before {
		t.Fatalf("refused imports changed the database:\n%s\n%s", before, got)
	}
	if c.snapshot("tenant_acme") != acme || c.snapshot("tenant_globex") != globex {
		t.Fatal("export or import changed acme or globex")
	}
}
