// Package ident holds the rules for tenant slugs and the SQL identifiers derived from them.
package ident

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// MaxSlugLen is the longest slug; with the "tenant_" prefix the schema name stays under
// PostgreSQL's 63-byte identifier limit.
const MaxSlugLen = 50

// SchemaPrefix starts the name of every tenant schema.
const SchemaPrefix = "tenant_"

// ErrInvalidSlug is wrapped by every error ValidateSlug returns.
var ErrInvalidSlug = errors.New("invalid tenant slug")

var reserved = map[string]bool{
	"public": true, "erpctl": true, "admin": true, "api": true, "information-schema": true,
}

// ValidateSlug checks s against the slug rule and says which part of it s breaks.
func ValidateSlug(s string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidSlug, s, fmt.Sprintf(format, a...))
	}
	switch {
	case s == "":
		return fmt.Errorf("%w: the slug is empty", ErrInvalidSlug)
	case len(s) > MaxSlugLen:
		return bad("it is %d characters long, the limit is %d", len(s), MaxSlugLen)
	case len(s) < 2:
		return bad("it must be at least 2 characters long")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9', c == '-':
			if i == 0 {
				return bad("it must start with a lowercase letter")
			}
		case c >= 'A' && c <= 'Z':
			return bad("it must be lowercase")
		case c == '_':
			return bad("use '-' instead of '_'")
		default:
			return bad("only lowercase ASCII letters, digits and '-' are allowed")
		}
	}
	switch {
	case s[len(s)-1] == '-':
		return bad("it must not end with '-'")
	case strings.Contains(s, "--"):
		return bad("it must not contain '--'")
	case reserved[s] || strings.HasPrefix(s, "pg-"):
		return bad("the name is reserved")
	}
	return nil
}

// SchemaName is the PostgreSQL schema of tenant slug. It is injective because slugs have no '_'.
func SchemaName(slug string) string {
	return SchemaPrefix + strings.ReplaceAll(slug, "-", "_")
}

// Slug is a tenant slug that passed the slug rule. It is parsed once, where input arrives (a
// flag, an argument, a URL), and passed on as a Slug, so that nothing below checks it again. The
// zero Slug is no tenant.
type Slug struct{ s string }

// ParseSlug checks s against the slug rule (see ValidateSlug) and returns it as a Slug.
func ParseSlug(s string) (Slug, error) {
	if err := ValidateSlug(s); err != nil {
		return Slug{}, err
	}
	return Slug{s}, nil
}

// MustParseSlug is ParseSlug for slugs written in the code itself; it panics on a bad one.
func MustParseSlug(s string) Slug {
	slug, err := ParseSlug(s)
	if err != nil {
		panic(err)
	}
	return slug
}

// String is the slug as the user wrote it.
func (s Slug) String() string { return s.s }

// IsZero reports whether s is the zero Slug.
func (s Slug) IsZero() bool { return s.s == "" }

// Schema is the tenant's PostgreSQL schema.
func (s Slug) Schema() string { return SchemaName(s.s) }

// Quote quotes each part of a possibly qualified identifier for SQL.
func Quote(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}

// Literal quotes s as an SQL string literal (standard_conforming_strings on, PostgreSQL's
// default since 9.1).
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
