// Package operators keeps the console's credentials: operator tokens, which erpctl shows once and
// stores as a sha256 only, the one-time login link each token is made with, and the browser
// sessions a login opens. An operator token never opens the data API, and a tenant's token never
// opens the console: they live in tables of their own and carry different prefixes.
package operators

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the store reads and writes through: the control plane's pool.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Errors callers tell apart with errors.Is.
var (
	ErrInvalid  = errors.New("invalid input")
	ErrNotFound = errors.New("not found")
)

// Prefixes of the secrets, so that a leaked one is easy to recognise and a tenant's token
// (erp_) is never mistaken for an operator's.
const (
	TokenPrefix = "erpop_"
	codePrefix  = "erplogin_"
)

// Durations: how long a login link may wait to be used, and how long a browser session lasts.
const (
	LoginLinkTTL = 24 * time.Hour
	SessionTTL   = 12 * time.Hour
)

// Token is an operator token as the catalog records it; the secret is never stored.
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// Operator is who a credential speaks for: the token's name, recorded in what they change.
type Operator struct {
	TokenID int64
	Name    string
}

// String names the operator in events: the name alone could be anyone's.
func (o Operator) String() string { return fmt.Sprintf("operator %s (token %d)", o.Name, o.TokenID) }

// Created is a new token with its secret and its one-time login code, both shown once.
type Created struct {
	Token
	Secret    string
	LoginCode string
}

// Store keeps operator tokens and sessions in the catalog.
type Store struct{ db DB }

// New returns the store over db.
func New(db DB) *Store { return &Store{db: db} }

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Hash is what the catalog stores of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func randomSecret(prefix string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return prefix + encoding.EncodeToString(raw[:]), nil
}

// ValidateName checks a token's name, which events name the operator by.
func ValidateName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%w: the operator token name is empty", ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: the operator token name is not valid UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > 100:
		return fmt.Errorf("%w: the operator token name is longer than 100 characters", ErrInvalid)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the operator token name contains a control character", ErrInvalid)
	}
	return nil
}

// Create makes an operator token and its one-time login code.
func (s *Store) Create(ctx context.Context, name string) (*Created, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("create operator token: %w", err)
	}
	secret, err := randomSecret(TokenPrefix)
	if err != nil {
		return nil, fmt.Errorf("create operator token %q: %w", name, err)
	}
	code, err := randomSecret(codePrefix)
	if err != nil {
		return nil, fmt.Errorf("create operator token %q: %w", name, err)
	}
	c := &Created{Secret: secret, LoginCode: code}
	err = s.db.QueryRow(ctx, `INSERT INTO erpctl.operator_tokens (name, hash, login_hash, login_expires_at)
		VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id, name, created_at, revoked_at`,
		name, Hash(secret), Hash(code), LoginLinkTTL.Seconds()).Scan(&c.ID, &c.Name, &c.CreatedAt, &c.RevokedAt)
	if err != nil {
		return nil, fmt.Errorf("create operator token %q: %w", name, err)
	}
	return c, nil
}

// List returns every operator token by id, revoked ones with their revocation time.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, created_at, revoked_at FROM erpctl.operator_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list operator tokens: %w", err)
	}
	toks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Token])
	if err != nil {
		return nil, fmt.Errorf("list operator tokens: %w", err)
	}
	if toks == nil {
		toks = []Token{}
	}
	return toks, nil
}

// Revoke revokes token id and ends its sessions and its unused login link at once; revoking a
// revoked token again changes nothing.
func (s *Store) Revoke(ctx context.Context, id int64) error {
	var found bool
	err := s.db.QueryRow(ctx, `WITH t AS (
			UPDATE erpctl.operator_tokens SET revoked_at = coalesce(revoked_at, now()), login_hash = NULL, login_expires_at = NULL
			WHERE id = $1 RETURNING id),
		s AS (DELETE FROM erpctl.operator_sessions WHERE token_id IN (SELECT id FROM t))
		SELECT EXISTS (SELECT FROM t)`, id).Scan(&found)
	if err != nil {
		return fmt.Errorf("revoke operator token %d: %w", id, err)
	}
	if !found {
		return fmt.Errorf("revoke operator token %d: operator token %w", id, ErrNotFound)
	}
	return nil
}

// Authenticate finds the operator of a token secret (a bearer header, or the login form); ok is
// false for anything else, a tenant's token included.
func (s *Store) Authenticate(ctx context.Context, secret string) (op Operator, ok bool, err error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Operator{}, false, nil
	}
	err = s.db.QueryRow(ctx, `SELECT id, name FROM erpctl.operator_tokens WHERE hash = $1 AND revoked_at IS NULL`,
		Hash(secret)).Scan(&op.TokenID, &op.Name)
	return found(op, err, "authenticate operator")
}

// UseLoginCode spends a one-time login code: it finds its operator and clears it, so that the
// link works once. ok is false for a code that is unknown, used, expired or whose token was
// revoked.
func (s *Store) UseLoginCode(ctx context.Context, code string) (op Operator, ok bool, err error) {
	if !strings.HasPrefix(code, codePrefix) {
		return Operator{}, false, nil
	}
	err = s.db.QueryRow(ctx, `UPDATE erpctl.operator_tokens SET login_hash = NULL, login_expires_at = NULL
		WHERE login_hash = $1 AND revoked_at IS NULL AND login_expires_at > now() RETURNING id, name`,
		Hash(code)).Scan(&op.TokenID, &op.Name)
	return found(op, err, "use login link")
}

// StartSession opens a browser session for op and returns its secret, the cookie's value. Ended
// sessions are cleared on the way.
func (s *Store) StartSession(ctx context.Context, op Operator) (string, error) {
	secret, err := randomSecret("")
	if err != nil {
		return "", fmt.Errorf("start console session: %w", err)
	}
	tag, err := s.db.Exec(ctx, `WITH old AS (DELETE FROM erpctl.operator_sessions WHERE expires_at < now())
		INSERT INTO erpctl.operator_sessions (hash, token_id, expires_at)
		SELECT $1, id, now() + make_interval(secs => $3) FROM erpctl.operator_tokens WHERE id = $2 AND revoked_at IS NULL`,
		Hash(secret), op.TokenID, SessionTTL.Seconds())
	if err != nil {
		return "", fmt.Errorf("start console session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("start console session: operator token %d %w", op.TokenID, ErrNotFound)
	}
	return secret, nil
}

// Session finds the operator of a session's secret; ok is false when it is unknown or ended, or
// its token was revoked.
func (s *Store) Session(ctx context.Context, secret string) (op Operator, ok bool, err error) {
	if secret == "" {
		return Operator{}, false, nil
	}
	err = s.db.QueryRow(ctx, `SELECT t.id, t.name FROM erpctl.operator_sessions s
		JOIN erpctl.operator_tokens t ON t.id = s.token_id
		WHERE s.hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL`, Hash(secret)).Scan(&op.TokenID, &op.Name)
	return found(op, err, "read console session")
}

// EndSession ends a session (logging out); an unknown one changes nothing.
func (s *Store) EndSession(ctx context.Context, secret string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM erpctl.operator_sessions WHERE hash = $1`, Hash(secret)); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// ConsoleURL is the console's address as the last daemon that served one recorded it, "" when
// none did: where operator token create points its login link.
func (s *Store) ConsoleURL(ctx context.Context) (string, error) {
	var u string
	err := s.db.QueryRow(ctx, `SELECT value FROM erpctl.meta WHERE key = 'console_url'`).Scan(&u)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the console's address: %w", err)
	}
	return u, nil
}

// SetConsoleURL records the console's address (a daemon that serves it, as it starts).
func (s *Store) SetConsoleURL(ctx context.Context, u string) error {
	if _, err := s.db.Exec(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ('console_url', $1)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, u); err != nil {
		return fmt.Errorf("record the console's address: %w", err)
	}
	return nil
}

// LoginURL is the one-time login link of code on the console at base (scheme://host[:port]).
func LoginURL(base, code string) string {
	return strings.TrimRight(base, "/") + "/login?code=" + code
}

func found(op Operator, err error, what string) (Operator, bool, error) {
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Operator{}, false, nil
	case err != nil:
		return Operator{}, false, fmt.Errorf("%s: %w", what, err)
	}
	return op, true, nil
}
