package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crmV1 = `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "name" {
    type = text
  }
}
`

// The generation commands as an operator runs them on two tenants with rows: publish (its
// preview, a no-op, a refused rollback and one allowed), history, diff, and each tenant's
// generation in tenant list and show; bad input changes nothing.
func TestModuleGenerations(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--name", "Acme")
	c.ok("tenant", "create", "globex")
	c.writeModule("crm", crmV1)

	r := c.ok("module", "publish", "-m", "crm: contacts")
	contains(t, "publish", r.stdout, "What the modules change", "2 tenants (acme, globex):", `CREATE TABLE "contacts"`, "Published module generation 2")
	var pub struct {
		Generation int64  `json:"generation"`
		Hash       string `json:"hash"`
		Changed    bool   `json:"changed"`
	}
	decodeOne(t, c.ok("module", "publish", "-o", "json").stdout, &pub)
	if pub.Generation != 2 || pub.Changed || len(pub.Hash) != 32 {
		t.Fatalf("publishing the same files again: %+v", pub)
	}
	contains(t, "publish again", c.ok("module", "publish").stdout, "Nothing to publish: the module files are generation 2")

	// Published, not applied: each tenant shows the generation it has and the one to come.
	var tenants []struct {
		Slug             string `json:"slug"`
		Generation       *int64 `json:"generation"`
		TargetGeneration *int64 `json:"target_generation"`
	}
	decodeOne(t, c.ok("tenant", "list", "-o", "json").stdout, &tenants)
	for _, tn := range tenants {
		if tn.Generation == nil || *tn.Generation != 1 || tn.TargetGeneration == nil || *tn.TargetGeneration != 2 {
			t.Fatalf("%s before the reconcile: generation %v, target %v", tn.Slug, tn.Generation, tn.TargetGeneration)
		}
	}
	contains(t, "tenant list", c.ok("tenant", "list").stdout, "GENERATION", "1 → 2")
	contains(t, "tenant show", c.ok("tenant", "show", "acme").stdout, "Generation", "1; the latest, 2, is not applied yet")
	contains(t, "reconcile", c.ok("reconcile", "--all").stdout, "2 applied", "to module generation 2")
	c.sql(`INSERT INTO tenant_acme.contacts (name) VALUES ('ann')`)
	c.sql(`INSERT INTO tenant_globex.contacts (name) VALUES ('bob')`)
	tenants = nil
	decodeOne(t, c.ok("tenant", "list", "-o", "json").stdout, &tenants)
	for _, tn := range tenants {
		if tn.Generation == nil || *tn.Generation != 2 || tn.TargetGeneration != nil {
			t.Fatalf("%s after the reconcile: generation %v, target %v", tn.Slug, tn.Generation, tn.TargetGeneration)
		}
	}
	if strings.Contains(c.ok("tenant", "show", "acme", "-o", "json").stdout, "target_generation") {
		t.Fatal("tenant show carries a target generation while there is none")
	}

	// History and diffs.
	var hist []struct {
		Generation  int64  `json:"generation"`
		Hash        string `json:"hash"`
		PublishedAt string `json:"published_at"`
		PublishedBy string `json:"published_by"`
		Message     string `json:"message"`
		Tenants     int    `json:"tenants"`
	}
	decodeOne(t, c.ok("module", "history", "-o", "json").stdout, &hist)
	if len(hist) != 2 || hist[0].Generation != 2 || hist[0].Message != "crm: contacts" || hist[0].Tenants != 2 ||
		hist[0].PublishedBy == "" || hist[0].PublishedAt == "" || hist[1].Generation != 1 || hist[1].Tenants != 0 {
		t.Fatalf("module history: %+v", hist)
	}
	contains(t, "history", c.ok("module", "history").stdout, "GENERATION", "crm: contacts")
	contains(t, "diff 1 2", c.ok("module", "diff", "1", "2").stdout, "+++ generation-2/crm.hcl", `+table "contacts" {`)
	contains(t, "diff (files)", c.ok("module", "diff").stdout, "No difference: generation 2 and the files")
	c.writeModule("crm", strings.Replace(crmV1, "    type = text\n", "    type = text\n  }\n  column \"phone\" {\n    type = text\n    null = true\n", 1))
	contains(t, "diff (edited)", c.ok("module", "diff").stdout, `+  column "phone" {`)
	var d struct {
		Identical bool   `json:"identical"`
		Diff      string `json:"diff"`
	}
	decodeOne(t, c.ok("module", "diff", "2", "-o", "json").stdout, &d)
	if d.Identical || !strings.Contains(d.Diff, "phone") {
		t.Fatalf("module diff -o json: %+v", d)
	}

	// Bad input: a clear error, exit 2, nothing published.
	c.expect(2, "not a generation number", "module", "diff", "0")
	c.expect(2, "not a generation number", "module", "diff", "two")
	c.expect(2, "no such generation", "module", "diff", "99")
	c.expect(2, "--limit must be", "module", "history", "--limit", "-1")
	c.expect(2, "takes no arguments", "module", "publish", "extra")
	c.expect(2, "--message goes with --publish", "reconcile", "--all", "-m", "x")
	c.expect(2, "differ from module generation 2", "reconcile", "acme")
	if n := c.count(`SELECT count(*) FROM erpctl.generations`); n != 2 {
		t.Fatalf("%d generations after bad input", n)
	}

	// Rolling back to generation 1 would drop the contacts: refused, nothing published; with
	// --allow-destructive it is published as generation 3, a rollback, and reconcile blocks the
	// tenants (nothing dropped) until --allow-destructive there too.
	if err := removeModule(c, "crm"); err != nil {
		t.Fatal(err)
	}
	r = c.expect(1, "would drop or narrow what 2 tenants have", "module", "publish", "-m", "roll back")
	contains(t, "refused rollback", r.stdout, `DROP TABLE "contacts"`, "Not published")
	r = c.ok("module", "publish", "-m", "roll back", "--allow-destructive")
	contains(t, "rollback", r.stdout, "Published module generation 3", "a rollback to the modules of generation 1")
	c.expect(1, "blocked", "reconcile", "--all")
	for _, s := range []string{"acme", "globex"} {
		if n := c.count(`SELECT count(*) FROM tenant_` + s + `.contacts`); n != 1 {
			t.Fatalf("%s's contacts after the blocked rollback: %d", s, n)
		}
	}
	contains(t, "history after rollback", c.ok("module", "history").stdout, "(rollback to 1) roll back")
}

// removeModule deletes a module file from the test's modules dir.
func removeModule(c *cli, name string) error {
	return os.Remove(filepath.Join(c.modulesDir, name+".hcl"))
}
