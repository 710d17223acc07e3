package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// Token is an API token as the catalog records it. The secret itself is shown once, by
// CreateToken, and never stored: the catalog keeps its sha256 only.
type Token struct {
	ID        int64      `json:"id"`
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// TokenPrefix starts every token secret, so that a leaked one is easy to recognise.
const TokenPrefix = "erp_"

// maxTokenNameLen bounds a token's name, which the data API writes into created_by/updated_by.
const maxTokenNameLen = 100

// tokenEncoding renders the 32 random bytes of a secret: lowercase base32, no padding.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// HashToken is what the catalog stores of a token secret, and what the data API caches.
func HashToken(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

func validateTokenName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%w: the token name is empty", ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the token name is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > maxTokenNameLen:
		return fmt.Errorf("%w: the token name is longer than %d characters", ErrInvalid, maxTokenNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the token name contains a control character", ErrInvalid)
	}
	return nil
}

const tokenColumns = `id, tenant, name, created_at, revoked_at`

// CreateToken makes a token for tenant slug and returns its record and its secret. The secret
// (TokenPrefix and 256 random bits) is not stored and cannot be shown again.
func (p *Plane) CreateToken(ctx context.Context, slug ident.Slug, name string) (*Token, string, error) {
	if slug.IsZero() {
		return nil, "", fmt.Errorf("create token: %w: no tenant", ErrInvalid)
	}
	if err := validateTokenName(name); err != nil {
		return nil, "", fmt.Errorf("create token for tenant %q: %w", slug, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", fmt.Errorf("create token for tenant %q: %w", slug, err)
	}
	secret := TokenPrefix + tokenEncoding.EncodeToString(raw[:])
	hash := HashToken(secret)
	rows, err := p.pool.Query(ctx, `INSERT INTO erpctl.tokens (tenant, name, hash)
		SELECT slug, $2, $3 FROM erpctl.tenants WHERE slug = $1
		RETURNING `+tokenColumns, slug.String(), name, hash[:])
	if err != nil {
		return nil, "", fmt.Errorf("create token for tenant %q: %w", slug, err)
	}
	tok, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Token])
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows),
		// The tenant was deleted between the SELECT and the INSERT's foreign key check.
		errors.As(err, &pgErr) && pgErr.Code == "23503":
		return nil, "", fmt.Errorf("create token for tenant %q: tenant %w%s", slug, ErrNotFound, p.archivedHint(ctx, slug))
	case err != nil:
		return nil, "", fmt.Errorf("create token for tenant %q: %w", slug, err)
	}
	return &tok, secret, nil
}

// ListTokens returns the tokens of tenant slug, or of every tenant when slug is the zero Slug, by
// id. Revoked tokens are listed too, with their revocation time.
func (p *Plane) ListTokens(ctx context.Context, slug ident.Slug) ([]Token, error) {
	what := "list tokens"
	if !slug.IsZero() {
		what = fmt.Sprintf("list tokens of tenant %q", slug)
	}
	rows, err := p.pool.Query(ctx, `SELECT `+tokenColumns+` FROM erpctl.tokens
		WHERE $1 = '' OR tenant = $1 ORDER BY id`, slug.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	toks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Token])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if toks == nil {
		toks = []Token{}
	}
	if len(toks) == 0 && !slug.IsZero() {
		var exists bool
		if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM erpctl.tenants WHERE slug = $1)`, slug.String()).Scan(&exists); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if !exists {
			return nil, fmt.Errorf("%s: tenant %w%s", what, ErrNotFound, p.archivedHint(ctx, slug))
		}
	}
	return toks, nil
}

// ListTokensSelected lists the tokens of the tenants whose labels sel selects, by id.
func (p *Plane) ListTokensSelected(ctx context.Context, sel labels.Selector) ([]Token, error) {
	var args []any
	rows, err := p.pool.Query(ctx, `SELECT `+tokenColumns+` FROM erpctl.tokens
		WHERE tenant IN (SELECT slug FROM erpctl.tenants WHERE `+sel.SQL("labels", &args)+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens of the selected tenants: %w", err)
	}
	toks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Token])
	if err != nil {
		return nil, fmt.Errorf("list tokens of the selected tenants: %w", err)
	}
	if toks == nil {
		toks = []Token{}
	}
	return toks, nil
}

// RevokeToken revokes token id; revoking a revoked token again changes nothing. It notifies
// NotifyTokens in the same transaction, so that every daemon's data API forgets the token as soon
// as the revocation commits, rather than when its cache entry expires.
func (p *Plane) RevokeToken(ctx context.Context, id int64) error {
	var n int64
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE erpctl.tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyTokens, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke token %d: token %w", id, ErrNotFound)
	}
	return nil
}

// TokenOwner is whom a valid token speaks for.
type TokenOwner struct {
	Tenant string // the slug of its tenant
	Name   string // the token's name, written into created_by and updated_by
}

// LookupToken finds the owner of the token whose HashToken is hash; ok is false when no valid
// (unrevoked) token has it.
func (p *Plane) LookupToken(ctx context.Context, hash [sha256.Size]byte) (owner TokenOwner, ok bool, err error) {
	err = p.pool.QueryRow(ctx, `SELECT tenant, name FROM erpctl.tokens WHERE hash = $1 AND revoked_at IS NULL`,
		hash[:]).Scan(&owner.Tenant, &owner.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return TokenOwner{}, false, nil
	}
	if err != nil {
		return TokenOwner{}, false, fmt.Errorf("look up token: %w", err)
	}
	return owner, true, nil
}
