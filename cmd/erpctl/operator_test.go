package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestOperatorTokens(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--modules", "product")
	c.ok("tenant", "create", "globex", "--modules", "product")
	c.ok("token", "create", "acme", "--name", "ci")

	// The token alone on stdout; the login link, once, on stderr.
	r := c.ok("operator", "token", "create", "alice")
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "erpop_") || strings.ContainsAny(secret, " \n") {
		t.Fatalf("operator token create should print the token alone: %q", r.stdout)
	}
	contains(t, "operator token create stderr", r.stderr, "not shown again", "http://127.0.0.1:8081/login?code=erplogin_")

	// -o json: exactly id, name, token, login_url; the link at the console a daemon recorded.
	c.sql(`INSERT INTO erpctl.meta (key, value) VALUES ('console_url', 'http://127.0.0.1:18599')`)
	var created map[string]any
	decodeOne(t, c.ok("operator", "token", "create", "bob", "-o", "json").stdout, &created)
	keys := make([]string, 0, len(created))
	for k := range created {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"id", "login_url", "name", "token"}) || created["name"] != "bob" ||
		!strings.HasPrefix(created["login_url"].(string), "http://127.0.0.1:18599/login?code=erplogin_") {
		t.Fatalf("operator token create -o json: %v", created)
	}
	decodeOne(t, c.ok("operator", "token", "create", "carol", "-o", "json", "--console-url", "https://console.example.com").stdout, &created)
	if !strings.HasPrefix(created["login_url"].(string), "https://console.example.com/login?code=") {
		t.Fatalf("--console-url: %v", created)
	}
	// Only hashes are stored.
	if n := c.count(`SELECT count(*) FROM erpctl.operator_tokens t WHERE position($1 IN t::text) > 0`, secret); n != 0 {
		t.Fatal("the catalog holds an operator token")
	}

	var list []map[string]any
	r = c.ok("operator", "token", "list", "-o", "json")
	decodeOne(t, r.stdout, &list)
	if len(list) != 3 || list[0]["name"] != "alice" || list[0]["revoked_at"] != nil || strings.Contains(r.stdout, secret) {
		t.Fatalf("operator token list: %v", list)
	}
	contains(t, "operator token list", c.ok("operator", "token", "list").stdout, "alice", "bob", "carol", "active")
	// Tenant tokens are not listed as operators', nor the other way round.
	if out := c.ok("token", "list").stdout; strings.Contains(out, "alice") {
		t.Fatal("token list shows an operator token")
	}

	id := strconv.Itoa(int(list[0]["id"].(float64)))
	c.ok("operator", "token", "revoke", id)
	contains(t, "list after revoke", lineWith(c.ok("operator", "token", "list").stdout, id+" "), "revoked")
	if !strings.Contains(lineWith(c.ok("operator", "token", "list").stdout, strconv.Itoa(int(list[1]["id"].(float64)))+" "), "active") {
		t.Fatal("revoking alice revoked bob")
	}
	c.ok("operator", "token", "revoke", id) // again: nothing changes
	before := c.count(`SELECT count(*) FROM erpctl.operator_tokens`)
	c.expect(2, "operator token not found", "operator", "token", "revoke", "424242")
	c.expect(2, "the operator token name is empty", "operator", "token", "create", " ")
	if after := c.count(`SELECT count(*) FROM erpctl.operator_tokens`); after != before {
		t.Fatalf("bad input changed the operator tokens: %d, then %d", before, after)
	}
}
