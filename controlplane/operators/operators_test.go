package operators_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestTokensSessionsAndLoginLinks(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme", "product")
	e.Create("globex", "product")
	ops := e.P.Operators()
	ctx := e.Ctx

	alice, err := ops.Create(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ops.Create(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(alice.Secret, operators.TokenPrefix) || alice.Secret == bob.Secret || alice.LoginCode == bob.LoginCode {
		t.Fatalf("secrets: %q %q, codes %q %q", alice.Secret, bob.Secret, alice.LoginCode, bob.LoginCode)
	}
	// Only hashes are kept: no column of the table holds either secret.
	if n := e.Count(`SELECT count(*) FROM erpctl.operator_tokens t WHERE position($1 IN t::text) > 0 OR position($2 IN t::text) > 0`,
		alice.Secret, alice.LoginCode); n != 0 {
		t.Fatalf("the catalog holds a secret in %d rows", n)
	}

	op, ok, err := ops.Authenticate(ctx, alice.Secret)
	if err != nil || !ok || op.Name != "alice" || op.TokenID != alice.ID {
		t.Fatalf("authenticate alice: %+v %v %v", op, ok, err)
	}
	// A tenant's token is no operator's, and a wrong one is refused.
	_, tenantSecret, err := e.P.CreateToken(ctx, ident.MustParseSlug("acme"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{tenantSecret, alice.Secret + "x", "", alice.LoginCode, operators.TokenPrefix} {
		if _, ok, err := ops.Authenticate(ctx, bad); ok || err != nil {
			t.Fatalf("authenticate %q: ok %v, err %v", bad, ok, err)
		}
	}

	// The login link works once.
	op, ok, err = ops.UseLoginCode(ctx, alice.LoginCode)
	if err != nil || !ok || op.Name != "alice" {
		t.Fatalf("use alice's login code: %+v %v %v", op, ok, err)
	}
	if _, ok, _ := ops.UseLoginCode(ctx, alice.LoginCode); ok {
		t.Fatal("a login link worked twice")
	}
	if _, ok, _ := ops.UseLoginCode(ctx, alice.Secret); ok {
		t.Fatal("a token worked as a login code")
	}
	// An expired link is refused; bob's other credentials stay.
	e.Exec(`UPDATE erpctl.operator_tokens SET login_expires_at = now() - interval '1 second' WHERE id = $1`, bob.ID)
	if _, ok, _ := ops.UseLoginCode(ctx, bob.LoginCode); ok {
		t.Fatal("an expired login link worked")
	}

	sa, err := ops.StartSession(ctx, op)
	if err != nil {
		t.Fatal(err)
	}
	bobOp, _, _ := ops.Authenticate(ctx, bob.Secret)
	sb, err := ops.StartSession(ctx, bobOp)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := ops.Session(ctx, sa); !ok || got.Name != "alice" {
		t.Fatalf("alice's session: %+v %v", got, ok)
	}
	if _, ok, _ := ops.Session(ctx, sa+"x"); ok {
		t.Fatal("a wrong session secret was accepted")
	}
	// An ended session is refused.
	e.Exec(`UPDATE erpctl.operator_sessions SET expires_at = now() - interval '1 second' WHERE token_id = $1`, bob.ID)
	if _, ok, _ := ops.Session(ctx, sb); ok {
		t.Fatal("an expired session was accepted")
	}
	if sb, err = ops.StartSession(ctx, bobOp); err != nil {
		t.Fatal(err)
	}

	// Revoking alice ends her token and sessions, and nothing of bob's.
	if err := ops.Revoke(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ops.Authenticate(ctx, alice.Secret); ok {
		t.Fatal("a revoked token was accepted")
	}
	if _, ok, _ := ops.Session(ctx, sa); ok {
		t.Fatal("a revoked token's session was accepted")
	}
	if _, err := ops.StartSession(ctx, op); !errors.Is(err, operators.ErrNotFound) {
		t.Fatalf("a session for a revoked token: %v", err)
	}
	if _, ok, _ := ops.Session(ctx, sb); !ok {
		t.Fatal("revoking alice ended bob's session")
	}
	if err := ops.Revoke(ctx, alice.ID); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	if err := ops.Revoke(ctx, 99999); !errors.Is(err, operators.ErrNotFound) {
		t.Fatalf("revoke an unknown token: %v", err)
	}
	if err := ops.EndSession(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ops.Session(ctx, sb); ok {
		t.Fatal("an ended session was accepted")
	}

	toks, err := ops.List(ctx)
	if err != nil || len(toks) != 2 || toks[0].RevokedAt == nil || toks[1].RevokedAt != nil {
		t.Fatalf("list: %+v %v", toks, err)
	}
	// Bad names are refused, and nothing is created.
	for _, name := range []string{"", "  ", "a\nb", strings.Repeat("x", 101), "\xff"} {
		if _, err := ops.Create(ctx, name); !errors.Is(err, operators.ErrInvalid) {
			t.Fatalf("create %q: %v", name, err)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.operator_tokens`); n != 2 {
		t.Fatalf("%d operator tokens after bad names, want 2", n)
	}
	// Tenant tokens are untouched by all this.
	if _, ok, _ := e.P.LookupToken(ctx, [32]byte(operators.Hash(tenantSecret))); !ok {
		t.Fatal("the tenant's token stopped working")
	}
}
