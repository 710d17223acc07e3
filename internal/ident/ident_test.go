package ident

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateSlug(t *testing.T) {
	good := []string{"acme", "ab", "acme-co", "a1", "x-2-y", strings.Repeat("a", 50)}
	for _, s := range good {
		if err := ValidateSlug(s); err != nil {
			t.Errorf("ValidateSlug(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"":                                    "empty",
		"Acme":                                "lowercase",
		"public":                              "reserved",
		"erpctl":                              "reserved",
		"admin":                               "reserved",
		"api":                                 "reserved",
		"information-schema":                  "reserved",
		"pg-x":                                "reserved",
		"a--b":                                "'--'",
		"acme_co":                             "'_'",
		"-acme":                               "start with a lowercase letter",
		"acme-":                               "end with '-'",
		"1acme":                               "start with a lowercase letter",
		"a":                                   "at least 2",
		"café":                                "ASCII",
		strings.Repeat("a", 51):               "limit is 50",
		"x'); drop schema erpctl cascade; --": "only lowercase ASCII",
		"a b":                                 "only lowercase ASCII",
	}
	for s, want := range bad {
		err := ValidateSlug(s)
		if err == nil {
			t.Errorf("ValidateSlug(%q) = nil, want an error", s)
			continue
		}
		if !errors.Is(err, ErrInvalidSlug) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateSlug(%q) = %q, want it to mention %q", s, err, want)
		}
	}
}

func TestSchemaName(t *testing.T) {
	if got := SchemaName("acme-co"); got != "tenant_acme_co" {
		t.Fatalf("SchemaName = %q", got)
	}
	if got := Quote("tenant_a", `we"ird`); got != `"tenant_a"."we""ird"` {
		t.Fatalf("Quote = %s", got)
	}
}
