package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// export -f writes a new path or replaces a regular file; anything else (a link, a named pipe,
// a directory) is refused before anything is read, and stays as it was. -f - writes the file to
// stdout (never to a terminal) and the summary to stderr; import -f - reads stdin.
func TestTenantExportTarget(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.sql(`INSERT INTO tenant_acme.categories (name) VALUES ('acme-only')`)
	c.sql(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-only')`)
	acme, globex := c.snapshot("tenant_acme"), c.snapshot("tenant_globex")
	dir := t.TempDir()

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link, fifo, sub := filepath.Join(dir, "link"), filepath.Join(dir, "fifo"), filepath.Join(dir, "sub")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{link: "a symbolic link", fifo: "a named pipe", sub: "a directory"} {
		c.expect(2, path+" is "+kind+", not a regular file", "tenant", "export", "acme", "-f", path)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link: %v %v", fi, err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the named pipe: %v %v", fi, err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "keep" {
		t.Fatalf("the link's target: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 4 {
		t.Fatalf("refused exports left files: %v", entries)
	}

	// A regular file is replaced whole.
	c.ok("tenant", "export", "acme", "-f", target)
	file, err := os.ReadFile(target)
	if err != nil || !strings.HasPrefix(string(file), "ERPCTL-EXPORT\n") {
		t.Fatalf("export over a regular file: %q %v", file[:min(len(file), 20)], err)
	}

	// -f -: the file on stdout, the summary on stderr.
	r := c.ok("tenant", "export", "acme", "-f", "-")
	if !strings.HasPrefix(r.stdout, "ERPCTL-EXPORT\n") || !strings.Contains(r.stderr, "Exported tenant acme to stdout") {
		t.Fatalf("export -f -: stdout %d bytes, stderr %q", len(r.stdout), r.stderr)
	}
	r2 := c.ok("tenant", "export", "acme", "-f", "-", "-o", "json")
	if !strings.HasPrefix(r2.stdout, "ERPCTL-EXPORT\n") || !strings.Contains(r2.stderr, `"tenant": "acme"`) {
		t.Fatalf("export -f - -o json: stderr %q", r2.stderr)
	}
	c.stdoutTTY = true
	c.expect(2, "to a terminal", "tenant", "export", "acme", "-f", "-")
	c.stdoutTTY = false
	c.stdin = r.stdout
	contains(t, "import -f -", c.ok("tenant", "import", "acme2", "-f", "-").stdout, "Imported tenant acme2", "from stdin")
	c.stdin = ""
	if got := strings.ReplaceAll(c.snapshot("tenant_acme2"), "tenant_acme2", "tenant_acme"); got != acme {
		t.Fatalf("imported from stdin:\n%s\nwant\n%s", got, acme)
	}
	if c.snapshot("tenant_acme") != acme || c.snapshot("tenant_globex") != globex {
		t.Fatal("export changed acme or globex")
	}
}

// Text from a file reaches the terminal with its control characters escaped: an import note
// naming a column of the file, and an error naming the file's path, carry no escape sequence.
func TestTextFromAFileIsEscaped(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	// A column no module declares, named to clear the screen and colour what follows.
	c.sql("ALTER TABLE tenant_acme.categories ADD COLUMN \"evil\x1b[2J\x1b[31m\" text")
	c.sql(`INSERT INTO tenant_acme.categories (name) VALUES ('acme-only')`)
	globex := c.snapshot("tenant_globex")
	file := filepath.Join(t.TempDir(), "acme.erpctl")
	c.ok("tenant", "export", "acme", "-f", file)
	r := c.ok("tenant", "import", "initech", "-f", file)
	if strings.ContainsRune(r.stdout+r.stderr, 0x1b) || !strings.Contains(r.stdout, `note: categories.evil\x1b[2J\x1b[31m is in the file`) {
		t.Fatalf("import output:\n%q\n%q", r.stdout, r.stderr)
	}
	r = c.expect(2, `no-such\x1b]0;pwned\x07`, "tenant", "import", "hooli", "-f", "no-such\x1b]0;pwned\x07")
	if strings.ContainsRune(r.stderr, 0x1b) || strings.ContainsRune(r.stderr, 0x07) {
		t.Fatalf("error output: %q", r.stderr)
	}
	if c.count(`SELECT count(*) FROM tenant_initech.categories WHERE name = 'acme-only'`) != 1 || c.snapshot("tenant_globex") != globex {
		t.Fatal("the import's rows went astray")
	}
}
