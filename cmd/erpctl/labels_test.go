package main

import (
	"context"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/hcl"
)

// Labels and selectors through the commands an operator types, on six tenants with rows:
// create --label, tenant label (set, overwrite refused then allowed, remove), bad keys and values
// refused with nothing changed, -l on list (with -L), plan, reconcile, enable-module (a count and a
// confirmation), debug tables and token list, and a selector that matches nothing.
func TestLabelsAndSelectors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for slug, lbls := range map[string][]string{
		"acme":     {"tier=free", "region=eu", "ring=canary"},
		"globex":   {"tier=free", "region=us"},
		"initech":  {"tier=pro", "region=eu"},
		"hooli":    {"tier=enterprise", "region=eu"},
		"umbrella": {"tier=pro"},
		"wonka":    nil,
	} {
		args := []string{"tenant", "create", slug, "--modules", "product"}
		for _, l := range lbls {
			args = append(args, "--label", l)
		}
		c.ok(args...)
		c.sql(`INSERT INTO tenant_` + slug + `.categories (name) VALUES ('` + slug + `')`)
	}
	c.ok("token", "create", "acme", "--name", "a")
	c.ok("token", "create", "globex", "--name", "g")
	c.ok("token", "create", "initech", "--name", "i")

	labelsNow := func() string {
		var s string
		if err := c.db().QueryRow(context.Background(), `SELECT string_agg(slug || labels::text, ';' ORDER BY slug) FROM erpctl.tenants`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before, beforeLabels := c.dbState(), labelsNow()
	c.expect(2, "label key", "tenant", "create", "bad", "--label", "Bad Key=x")
	c.expect(2, "value", "tenant", "label", "acme", "tier=not ok")
	c.expect(2, "KEY=VALUE", "tenant", "label", "acme", "tier")
	c.expect(2, "--overwrite", "tenant", "label", "acme", "tier=pro")
	c.expect(2, "needs a tenant SLUG and at least one", "tenant", "label", "acme")
	c.expect(2, "not found", "tenant", "label", "nobody", "a=b")
	c.expect(2, "selector", "tenant", "list", "-l", "tier in free")
	c.expect(2, "give one of a tenant SLUG, --all or -l", "reconcile", "acme", "-l", "tier=free")
	c.expect(2, "-L", "tenant", "list", "-L", "Bad Key")
	if after, afterLabels := c.dbState(), labelsNow(); after != before || afterLabels != beforeLabels {
		t.Fatalf("bad input changed the catalog:\nbefore %s %s\nafter  %s %s", before, beforeLabels, after, afterLabels)
	}

	contains(t, "label", c.ok("tenant", "label", "acme", "tier=pro", "--overwrite", "ring-").stdout, "region=eu,tier=pro")
	c.ok("tenant", "label", "acme", "tier=free", "--overwrite")
	contains(t, "show", c.ok("tenant", "show", "acme").stdout, "Labels:", "region=eu,tier=free")

	list := c.ok("tenant", "list", "-l", "tier=free,region in (eu)", "-L", "tier,region").stdout
	contains(t, "list -l", list, "acme", "TIER", "REGION", "free", "eu")
	for _, not := range []string{"globex", "initech", "hooli", "umbrella", "wonka"} {
		if strings.Contains(list, not) {
			t.Fatalf("tenant list -l selected %s:\n%s", not, list)
		}
	}
	var tenants []struct {
		Slug   string            `json:"slug"`
		Labels map[string]string `json:"labels"`
	}
	decodeOne(t, c.ok("tenant", "list", "-l", "tier!=free", "-o", "json").stdout, &tenants)
	var slugs []string
	for _, tn := range tenants {
		slugs = append(slugs, tn.Slug)
		if tn.Labels == nil {
			t.Fatalf("%s has no labels object in JSON", tn.Slug)
		}
	}
	if strings.Join(slugs, ",") != "hooli,initech,umbrella,wonka" {
		t.Fatalf("tenant list -l 'tier!=free' -o json: %v", slugs)
	}
	contains(t, "nothing", c.ok("tenant", "list", "-l", "tier=gold").stderr, `No tenant matches the selector "tier=gold"`)

	// Acting on many: a count and a confirmation.
	r := c.expect(2, "Enable module inventory for 3 tenants (hooli, initech, umbrella): give --yes", "tenant", "enable-module", "-l", "tier in (pro,enterprise)", "inventory")
	_ = r
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'warehouses'`); n != 0 {
		t.Fatal("enable-module -l changed tenants without a confirmation")
	}
	c.stdinTTY, c.stdin = true, "n\n"
	// (On a terminal the answer ends the question's line; here stderr has both on one.)
	if r := c.run("tenant", "enable-module", "-l", "tier in (pro,enterprise)", "inventory"); r.code != 1 ||
		!strings.Contains(r.stderr, "Enable module inventory for 3 tenants (hooli, initech, umbrella)? [y/N] erpctl: nothing changed: not confirmed") {
		t.Fatalf("answered no: exit %d, %q", r.code, r.stderr)
	}
	c.stdin = "y\n"
	contains(t, "enable -l", c.ok("tenant", "enable-module", "-l", "tier in (pro,enterprise)", "inventory").stdout, "Enabled module inventory for 3 tenants")
	c.stdinTTY, c.stdin = false, ""
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'warehouses'`); n != 3 {
		t.Fatalf("warehouses in %d schemas, want 3", n)
	}
	c.expect(1, `no tenant matches the selector "tier=gold"`, "tenant", "enable-module", "-l", "tier=gold", "inventory", "--yes")

	// plan, reconcile, debug tables and token list on a selection.
	product, err := hcl.FS.ReadFile("product.hcl")
	if err != nil {
		t.Fatal(err)
	}
	c.writeModule("product", strings.Replace(string(product), `  column "description" {`, "  column \"color\" {\n    type = text\n    null = true\n  }\n  column \"description\" {", 1))
	c.ok("module", "publish")
	r = c.ok("plan", "-l", "region=eu")
	contains(t, "plan -l", r.stdout, "3 tenants (acme, hooli, initech)", `ADD COLUMN "color"`)
	r = c.ok("reconcile", "-l", "region=eu")
	contains(t, "reconcile -l", r.stdout, "3 tenants", "3 applied")
	if n := c.count(`SELECT count(*) FROM information_schema.columns WHERE column_name = 'color'`); n != 3 {
		t.Fatalf("the new column in %d schemas, want the 3 selected", n)
	}
	c.expect(1, "no tenant matches", "reconcile", "-l", "tier=gold")
	c.sql(`DROP TABLE tenant_initech.warehouses CASCADE`)
	r = c.expect(1, "1 tenant is unhealthy: initech", "debug", "tables", "-l", "region=eu")
	contains(t, "debug -l", r.stdout, "3 tenants: 2 healthy, 1 unhealthy")
	contains(t, "debug -l --fix", c.ok("debug", "tables", "-l", "region=eu", "--fix", "--yes").stdout, "3 tenants: 3 healthy, 0 unhealthy")
	tokens := c.ok("token", "list", "-l", "tier=free").stdout
	contains(t, "token list -l", tokens, "acme", "globex")
	if strings.Contains(tokens, "initech") {
		t.Fatalf("token list -l listed initech's token:\n%s", tokens)
	}
	for _, s := range []string{"acme", "globex", "initech", "hooli", "umbrella", "wonka"} {
		if n := c.count(`SELECT count(*) FROM tenant_` + s + `.categories WHERE name = '` + s + `'`); n != 1 {
			t.Fatalf("%s lost its row", s)
		}
	}
}
