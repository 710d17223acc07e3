package main

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// Module text that tries to run a second statement, through the commands an operator runs:
// plan --all and the publishing commands fail with a clear error, reconcile --all refuses files
// nobody published, no shell command runs, and public and every tenant schema are as they were.
func TestCLIModuleTextCannotEscapeItsStatement(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex", "--modules", "product")
	c.sql(`CREATE TABLE public.canary (x int)`)
	before := c.dbState()
	acme, globex, public := c.snapshot("tenant_acme"), c.snapshot("tenant_globex"), c.snapshot("public")
	marker := fmt.Sprintf("/tmp/erpctl-cli-injection-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(marker) })

	c.writeModule("evil", `schema "tenant" {}
table "evil" {
  schema = schema.tenant
  column "q" {
    type = integer
    null = true
  }
  index "evil_q" {
    columns = [column.q]
    where   = "q > 0; COPY (SELECT 1) TO PROGRAM 'touch `+marker+`'"
  }
  check "evil_check" {
    expr = "q > 0)); DROP SCHEMA public CASCADE; --"
  }
}
`)
	c.expect(1, "could not plan 1 tenant: acme", "plan", "--all")
	c.expect(1, "cannot insert multiple commands into a prepared statement", "module", "publish")
	c.expect(1, "cannot insert multiple commands into a prepared statement", "reconcile", "--all", "--publish")
	c.expect(2, "differ from module generation 1", "reconcile", "--all")
	if n := c.count(`SELECT count(*) FROM erpctl.generations`); n != 1 {
		t.Fatalf("%d generations: the module was published", n)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("module text ran a shell command: %s exists", marker)
	}
	if c.snapshot("tenant_acme") != acme || c.snapshot("tenant_globex") != globex || c.snapshot("public") != public {
		t.Fatal("module text changed a schema")
	}
	if n := c.count(`SELECT count(*) FROM erpctl.events WHERE outcome = 'applied' AND sql LIKE '%evil%'`); n != 0 {
		t.Fatalf("%d applies of the module recorded", n)
	}
	// The only trace is acme's failure; reverting it leaves the catalog as it was.
	c.sql(`DELETE FROM erpctl.events WHERE outcome = 'failed'`)
	if after := c.dbState(); after != before {
		t.Fatalf("before: %s\nafter:  %s", before, after)
	}

	// A name with a quote is refused when the module loads, naming the file and line.
	path := c.writeModule("evil", "schema \"tenant\" {}\ntable \"evil\\\"; DROP SCHEMA public CASCADE; --\" {\n  schema = schema.tenant\n}\n")
	c.expect(2, path+":2: table name", "plan", "--all")
	c.expect(2, path+":2: table name", "module", "publish")
	c.expect(2, path+":2: table name", "tenant", "create", "newco")
}
