package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Two tenants, acme and globex: every tenant command on one leaves the other's schema as it was.
func TestTenantLifecycleTwoTenants(t *testing.T) {
	t.Parallel()
	c := newCLI(t)

	r := c.ok("tenant", "create", "acme", "--name", "ACME Corp")
	contains(t, "create output", r.stdout, "acme", "tenant_acme", "Ready")
	r = c.ok("tenant", "create", "globex", "--modules", "product")
	contains(t, "create output", r.stdout, "globex", "tenant_globex", "product", "Ready")
	if got := c.schemas(); !slices.Contains(got, "tenant_acme") || !slices.Contains(got, "tenant_globex") {
		t.Fatalf("schemas: %v", got)
	}
	c.sql(`INSERT INTO tenant_acme.categories (name) VALUES ('acme-only')`)
	c.sql(`INSERT INTO tenant_globex.categories (name) VALUES ('globex-only')`)
	globex := c.snapshot("tenant_globex")
	if !strings.Contains(globex, "categories rows 1") || strings.Contains(globex, "stock_items") {
		t.Fatalf("globex snapshot:\n%s", globex)
	}

	// list: both, one line each.
	r = c.ok("tenant", "list")
	for _, want := range []string{"SLUG", "SCHEMA", "STATUS", "MODULES", "LAST RECONCILE"} {
		contains(t, "list header", lineWith(r.stdout, "SLUG"), want)
	}
	contains(t, "acme row", lineWith(r.stdout, "acme "), "tenant_acme", "Ready", "product,inventory", "ago")
	contains(t, "globex row", lineWith(r.stdout, "globex "), "tenant_globex", "Ready", "product")
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatalf("colour codes on a non-terminal:\n%q", r.stdout)
	}

	// show: fields and the create event.
	r = c.ok("tenant", "show", "acme")
	contains(t, "show", r.stdout, "ACME Corp", "tenant_acme", "Ready", "product, inventory", "Last events", "create", "applied")
	var shown map[string]any
	decodeOne(t, c.ok("tenant", "show", "acme", "-o", "json").stdout, &shown)
	if shown["slug"] != "acme" || shown["schema"] != "tenant_acme" {
		t.Fatalf("show json: %v", shown)
	}
	if evs, _ := shown["events"].([]any); len(evs) != 1 {
		t.Fatalf("show json events: %v", shown["events"])
	}

	// Module changes on acme do not touch globex.
	r = c.ok("tenant", "disable-module", "acme", "inventory")
	contains(t, "disable-module output", r.stdout, "Disabled module inventory", "kept", "warehouses", "stock_items")
	if n := c.count(`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tenant_acme' AND table_name = 'stock_items'`); n != 1 {
		t.Fatal("disable-module dropped the module's table")
	}
	c.ok("tenant", "enable-module", "acme", "inventory")
	c.ok("reconcile", "acme")
	c.ok("debug", "tables", "acme")
	if got := c.snapshot("tenant_globex"); got != globex {
		t.Fatalf("commands on acme changed globex:\nbefore:\n%s\nafter:\n%s", globex, got)
	}

	// delete refuses without --yes and changes nothing.
	c.expect(2, "--yes", "tenant", "delete", "acme")
	if !slices.Contains(c.schemas(), "tenant_acme") {
		t.Fatal("delete without --yes dropped the schema")
	}

	r = c.ok("tenant", "delete", "acme", "--yes")
	contains(t, "delete output", r.stdout, "acme", "tenant_acme")
	if got := c.schemas(); slices.Contains(got, "tenant_acme") || !slices.Contains(got, "tenant_globex") {
		t.Fatalf("schemas after delete: %v", got)
	}
	if got := c.snapshot("tenant_globex"); got != globex {
		t.Fatalf("deleting acme changed globex:\nbefore:\n%s\nafter:\n%s", globex, got)
	}
	var list []map[string]any
	decodeOne(t, c.ok("tenant", "list", "-o", "json").stdout, &list)
	if len(list) != 1 || list[0]["slug"] != "globex" {
		t.Fatalf("list after delete: %v", list)
	}
	c.expect(2, `tenant "acme" not found: it was deleted and is archived; bring it back with erpctl tenant restore acme`, "tenant", "show", "acme")
	c.expect(2, `tenant "nobody" not found`, "tenant", "show", "nobody")
	c.expect(2, `not found`, "tenant", "delete", "acme", "--yes")

	// The deleted tenant is an archive: listed, its slug reserved, restored with its row.
	r = c.ok("tenant", "list", "--archived")
	contains(t, "archived row", lineWith(r.stdout, "acme "), "erpctl_arch_", "ago")
	c.expect(2, "tenant restore acme", "tenant", "create", "acme")
	contains(t, "restore", c.ok("tenant", "restore", "acme").stdout, "Restored tenant acme", "tenant_acme", "Ready")
	if n := c.count(`SELECT count(*) FROM tenant_acme.categories WHERE name = 'acme-only'`); n != 1 {
		t.Fatal("restore lost acme's row")
	}
	c.expect(2, "no archive", "tenant", "restore", "acme")
	c.ok("tenant", "delete", "acme", "--yes")
	c.expect(2, "without --yes", "tenant", "purge", "acme")
	c.expect(2, "not found", "tenant", "purge", "globex", "--yes")
	contains(t, "purge", c.ok("tenant", "purge", "acme", "--yes").stdout, "Purged tenant acme", "erpctl_arch_")
	if got := c.snapshot("tenant_globex"); got != globex {
		t.Fatalf("archive, restore and purge of acme changed globex:\nbefore:\n%s\nafter:\n%s", globex, got)
	}

	// And the other way round: globex's commands leave acme alone.
	c.ok("tenant", "create", "acme")
	c.sql(`INSERT INTO tenant_acme.products (sku, name) VALUES ('A-1', 'anvil')`)
	acme := c.snapshot("tenant_acme")
	c.ok("tenant", "enable-module", "globex", "inventory")
	c.ok("debug", "tables", "globex", "--fix")
	c.ok("tenant", "delete", "globex", "--yes")
	r = c.ok("tenant", "purge", "--older-than", "30d", "--yes")
	if !strings.Contains(r.stderr, "nothing purged") {
		t.Fatalf("purge --older-than 30d of a fresh archive: %+v", r)
	}
	var archived []map[string]any
	decodeOne(t, c.ok("tenant", "list", "--archived", "-o", "json").stdout, &archived)
	if len(archived) != 1 || archived[0]["slug"] != "globex" {
		t.Fatalf("archives: %v", archived)
	}
	if got := c.snapshot("tenant_acme"); got != acme {
		t.Fatalf("commands on globex changed acme:\nbefore:\n%s\nafter:\n%s", acme, got)
	}
}

// The JSON documents of the CLI's contracts (docs/operations.md and --help), each exactly one document on stdout.
func TestJSONContracts(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	var created map[string]any
	decodeOne(t, c.ok("tenant", "create", "acme", "-o", "json").stdout, &created)
	if created["slug"] != "acme" || created["status"] != "Ready" {
		t.Fatalf("create json: %v", created)
	}
	c.ok("tenant", "create", "globex", "--modules", "product")

	var list []map[string]any
	decodeOne(t, c.ok("tenant", "list", "-o", "json").stdout, &list)
	if len(list) != 2 {
		t.Fatalf("list: %v", list)
	}
	for _, tn := range list {
		for _, k := range []string{"slug", "schema", "status", "modules", "created_at", "last_reconciled_at", "last_error", "reason", "last_transition_at"} {
			if _, ok := tn[k]; !ok {
				t.Fatalf("tenant list -o json: %q missing from %v", k, tn)
			}
		}
		if _, ok := tn["modules"].([]any); !ok {
			t.Fatalf("modules is not an array: %v", tn["modules"])
		}
		if _, ok := tn["created_at"].(string); !ok {
			t.Fatalf("created_at is not a string: %v", tn["created_at"])
		}
		if tn["last_error"] != nil {
			t.Fatalf("last_error of a Ready tenant: %v", tn["last_error"])
		}
		if tn["reason"] != "UpToDate" {
			t.Fatalf("reason of a Ready tenant: %v", tn["reason"])
		}
	}
	if list[0]["slug"] != "acme" || list[1]["slug"] != "globex" || list[1]["schema"] != "tenant_globex" {
		t.Fatalf("list: %v", list)
	}

	// YAML is the same data.
	r := c.ok("tenant", "list", "-o", "yaml")
	contains(t, "yaml", r.stdout, "- slug: acme\n", "  schema: tenant_acme\n", "  last_error: null\n")

	var report struct {
		Tenant  *string `json:"tenant"`
		Healthy *bool   `json:"healthy"`
		Tables  []map[string]any
	}
	decodeOne(t, c.ok("debug", "tables", "acme", "-o", "json").stdout, &report)
	if report.Tenant == nil || *report.Tenant != "acme" || report.Healthy == nil || !*report.Healthy || len(report.Tables) != 4 {
		t.Fatalf("debug tables json: %+v", report)
	}
	for _, tb := range report.Tables {
		for _, k := range []string{"module", "table", "status", "details"} {
			if _, ok := tb[k]; !ok {
				t.Fatalf("debug tables -o json: %q missing from %v", k, tb)
			}
		}
		if tb["status"] != "ok" {
			t.Fatalf("table not ok: %v", tb)
		}
	}

	var tok map[string]any
	decodeOne(t, c.ok("token", "create", "acme", "--name", "ci", "-o", "json").stdout, &tok)
	keys := make([]string, 0, len(tok))
	for k := range tok {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"id", "name", "tenant", "token"}) || tok["tenant"] != "acme" || tok["name"] != "ci" {
		t.Fatalf("token create -o json: %v", tok)
	}
	if s, _ := tok["token"].(string); s == "" {
		t.Fatalf("no token: %v", tok)
	}
	if _, ok := tok["id"].(float64); !ok {
		t.Fatalf("id is not a number: %v", tok["id"])
	}

	for _, args := range [][]string{
		{"plan", "--all", "-o", "json"},
		{"plan", "acme", "-o", "json"},
		{"reconcile", "--all", "-o", "json"},
		{"reconcile", "globex", "-o", "json"},
		{"tenant", "show", "globex", "-o", "json"},
		{"token", "list", "-o", "json"},
		{"module", "list", "-o", "json"},
		{"module", "show", "inventory", "-o", "json"},
		{"version", "-o", "json"},
	} {
		var v any
		decodeOne(t, c.ok(args...).stdout, &v)
	}
}

// Tokens belong to one tenant: listing one tenant's shows none of the other's.
func TestTokens(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--modules", "product")
	c.ok("tenant", "create", "globex", "--modules", "product")

	r := c.ok("token", "create", "acme", "--name", "ci")
	secret := strings.TrimSpace(r.stdout)
	if strings.ContainsAny(secret, " \n") || secret == "" {
		t.Fatalf("token create should print the token alone on stdout: %q", r.stdout)
	}
	contains(t, "token create stderr", r.stderr, "not shown again")
	c.ok("token", "create", "globex", "--name", "robot")

	var acme []map[string]any
	decodeOne(t, c.ok("token", "list", "acme", "-o", "json").stdout, &acme)
	if len(acme) != 1 || acme[0]["tenant"] != "acme" || acme[0]["name"] != "ci" || acme[0]["revoked_at"] != nil {
		t.Fatalf("acme tokens: %v", acme)
	}
	if strings.Contains(c.ok("token", "list", "acme").stdout, secret) {
		t.Fatal("token list shows the secret")
	}
	r = c.ok("token", "list")
	contains(t, "token list", r.stdout, "acme", "globex", "robot", "active")

	id := int(acme[0]["id"].(float64))
	c.ok("token", "revoke", strconv.Itoa(id))
	contains(t, "token list after revoke", lineWith(c.ok("token", "list", "acme").stdout, strconv.Itoa(id)+" "), "revoked")
	if !strings.Contains(c.ok("token", "list", "globex").stdout, "active") {
		t.Fatal("revoking acme's token touched globex's")
	}
	c.expect(2, "not found", "token", "revoke", "99999")
	c.expect(2, "invalid token ID", "token", "revoke", "abc")
	c.expect(2, "--name", "token", "create", "acme")
	c.expect(2, `"nope": tenant not found`, "token", "create", "nope", "--name", "x")
	c.expect(2, `"nope": tenant not found`, "token", "list", "nope")
}
