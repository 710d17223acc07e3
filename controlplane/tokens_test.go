package controlplane_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"

	"github.com/erpctl/erpctl/controlplane"
)

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex", "product")

	tok, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "ci bot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, controlplane.TokenPrefix) || len(secret) < len(controlplane.TokenPrefix)+32 {
		t.Fatalf("secret %q: want %s and at least 128 bits", secret, controlplane.TokenPrefix)
	}
	if tok.ID <= 0 || tok.Tenant != "acme" || tok.Name != "ci bot" || tok.CreatedAt.IsZero() || tok.RevokedAt != nil {
		t.Fatalf("token: %+v", tok)
	}
	// Only the hash is stored.
	sum := sha256.Sum256([]byte(secret))
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens WHERE hash = $1`, sum[:]); n != 1 {
		t.Fatalf("%d tokens with the secret's sha256", n)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens WHERE position($1::bytea in hash) > 0 OR name = $2`, []byte(secret), secret); n != 0 {
		t.Fatal("the secret is stored")
	}
	_, secret2, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "ci bot")
	if err != nil || secret2 == secret {
		t.Fatalf("second token: %v (same secret: %v)", err, secret2 == secret)
	}
	gtok, _, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "importer")
	if err != nil {
		t.Fatal(err)
	}

	b, _ := json.Marshal(tok)
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"id", "tenant", "name", "created_at", "revoked_at"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON of a token lacks %q: %s", k, b)
		}
	}

	all, err := e.P.ListTokens(e.Ctx, ident.Slug{})
	if err != nil || len(all) != 3 || all[0].ID != tok.ID || all[2].ID != gtok.ID {
		t.Fatalf("list all: %+v %v", all, err)
	}
	acme, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("acme"))
	if err != nil || len(acme) != 2 || acme[0].Tenant != "acme" || acme[1].Tenant != "acme" {
		t.Fatalf("list acme: %+v %v", acme, err)
	}
	globex, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("globex"))
	if err != nil || len(globex) != 1 || globex[0].ID != gtok.ID {
		t.Fatalf("list globex: %+v %v", globex, err)
	}

	if err := e.P.RevokeToken(e.Ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.P.RevokeToken(e.Ctx, tok.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	acme, _ = e.P.ListTokens(e.Ctx, ident.MustParseSlug("acme"))
	if acme[0].RevokedAt == nil || acme[1].RevokedAt != nil {
		t.Fatalf("after revoke: %+v", acme)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens WHERE revoked_at IS NOT NULL`); n != 1 {
		t.Fatalf("%d revoked tokens, want 1 (the other tenant's untouched)", n)
	}

	// Deleting a tenant deletes its tokens, and only its tokens.
	if err := e.P.DeleteTenant(e.Ctx, ident.MustParseSlug("globex")); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens`); n != 2 {
		t.Fatalf("%d tokens after deleting globex, want acme's 2", n)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	cases := []struct {
		slug, name string
		want       error
		msg        string
	}{
		{"nope", "bot", controlplane.ErrNotFound, `create token for tenant "nope"`},
		{"", "bot", controlplane.ErrInvalid, "create token"}, // the zero Slug: bad slugs never become one
		{"acme", "", controlplane.ErrInvalid, `create token for tenant "acme"`},
		{"acme", "   ", controlplane.ErrInvalid, `create token for tenant "acme"`},
		{"acme", "line\nbreak", controlplane.ErrInvalid, `create token for tenant "acme"`},
		{"acme", strings.Repeat("n", 101), controlplane.ErrInvalid, `create token for tenant "acme"`},
	}
	for _, c := range cases {
		var slug ident.Slug
		if c.slug != "" {
			slug = ident.MustParseSlug(c.slug)
		}
		tok, secret, err := e.P.CreateToken(e.Ctx, slug, c.name)
		if !errors.Is(err, c.want) || tok != nil || secret != "" || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("CreateToken(%q, %q) = %v, %q, %v; want %v containing %q", c.slug, c.name, tok, secret, err, c.want, c.msg)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens`); n != 0 {
		t.Fatalf("%d tokens after refused creates", n)
	}
	if _, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("nope")); !errors.Is(err, controlplane.ErrNotFound) {
		t.Errorf("list tokens of a missing tenant: %v", err)
	}
	if toks, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("acme")); err != nil || toks == nil || len(toks) != 0 {
		t.Errorf("list tokens of a tenant without any: %#v, %v", toks, err)
	}
	if err := e.P.RevokeToken(e.Ctx, 12345); !errors.Is(err, controlplane.ErrNotFound) || !strings.Contains(err.Error(), "12345") {
		t.Errorf("revoke a missing token: %v", err)
	}
}

// The tokens of an archived tenant are in its archive: listing them, or making one, says so and
// how to bring the tenant back, and the other tenant's tokens stay as they are.
func TestTokensOfAnArchivedTenant(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	for _, slug := range []string{"acme", "globex"} {
		if _, _, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(slug), slug+"-bot"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.P.DeleteTenant(e.Ctx, ident.MustParseSlug("globex")); err != nil {
		t.Fatal(err)
	}
	hint := "archived; bring it back with erpctl tenant restore globex"
	if _, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("globex")); !errors.Is(err, controlplane.ErrNotFound) || !strings.Contains(err.Error(), hint) {
		t.Errorf("list tokens of an archived tenant: %v", err)
	}
	if _, _, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "new"); !errors.Is(err, controlplane.ErrNotFound) || !strings.Contains(err.Error(), hint) {
		t.Errorf("create a token for an archived tenant: %v", err)
	}
	if _, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("nope")); !errors.Is(err, controlplane.ErrNotFound) || strings.Contains(err.Error(), "archived") {
		t.Errorf("list tokens of a tenant that never was: %v", err)
	}
	if toks, err := e.P.ListTokens(e.Ctx, ident.MustParseSlug("acme")); err != nil || len(toks) != 1 || toks[0].Name != "acme-bot" {
		t.Errorf("acme's tokens: %+v %v", toks, err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens`); n != 1 {
		t.Fatalf("%d tokens, want acme's one", n)
	}
}
