package labels

import (
	"errors"
	"strings"
	"testing"
)

func TestEditsAsKubectl(t *testing.T) {
	t.Parallel()
	l := Labels{"tier": "free"}
	edits, err := ParseEdits([]string{"region=eu", "example.com/team=billing", "tier-"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Apply(edits, false)
	if err != nil || got.String() != "example.com/team=billing,region=eu" || l.String() != "tier=free" {
		t.Fatalf("apply: %v %v (the original: %v)", got, err, l)
	}
	// Changing a value needs --overwrite; the same value, or removing a missing key, is fine.
	edits, _ = ParseEdits([]string{"region=us"})
	if _, err := got.Apply(edits, false); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("change without overwrite: %v", err)
	}
	if got2, err := got.Apply(edits, true); err != nil || got2["region"] != "us" {
		t.Fatalf("change with overwrite: %v %v", got2, err)
	}
	edits, _ = ParseEdits([]string{"region=eu", "nope-"})
	if got2, err := got.Apply(edits, false); err != nil || got2.String() != got.String() {
		t.Fatalf("no-op edits: %v %v", got2, err)
	}
	for _, bad := range []struct{ arg, want string }{
		{"tier", "KEY=VALUE"},
		{"-tier=x", "label key"},
		{"tier=free tier", "value"},
		{strings.Repeat("k", 64) + "=v", "63"},
		{"tier=" + strings.Repeat("v", 64), "63"},
		{"Bad_Prefix!/k=v", "label key"},
		{"a=1", ""},
	} {
		_, err := ParseEdits([]string{bad.arg, "a=2"})
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want an error saying %q", bad.arg, err, bad.want)
		}
	}
	if _, err := ParseSet([]string{"tier-"}); err == nil {
		t.Fatal("ParseSet took a removal")
	}
}

func TestSelectorsAsKubernetes(t *testing.T) {
	t.Parallel()
	tenants := map[string]Labels{
		"a": {"tier": "free", "region": "eu"},
		"b": {"tier": "free", "region": "us", "canary": ""},
		"c": {"tier": "pro", "region": "eu", "legacy": "yes"},
		"d": {"tier": "enterprise"},
		"e": {},
		"f": {"tier": "pro", "size": "12"},
	}
	for sel, want := range map[string]string{
		"tier=free":                        "a,b",
		"tier==free":                       "a,b",
		"tier!=free":                       "c,d,e,f",
		"tier in (free,pro)":               "a,b,c,f",
		"tier notin (free,pro)":            "d,e",
		"canary":                           "b",
		"!legacy":                          "a,b,d,e,f",
		"tier=free,region in (eu)":         "a",
		"region,!legacy":                   "a,b",
		"size>10":                          "f",
		"size<10":                          "",
		"tier in (free),region notin (eu)": "b",
	} {
		s, err := ParseSelector(sel)
		if err != nil {
			t.Fatalf("%q: %v", sel, err)
		}
		var got []string
		for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
			if s.Matches(tenants[n]) {
				got = append(got, n)
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q matches %v, want %s", sel, got, want)
		}
	}
	for _, bad := range []string{"", "tier in free", "tier=free=x", "tier in (", "!", "tier=bad value"} {
		if _, err := ParseSelector(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want a refusal", bad, err)
		}
	}
}
