package term

import "testing"

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain Ünïcödé ✓":         "plain Ünïcödé ✓",
		"red \x1b[31mtext\x1b[0m": `red \x1b[31mtext\x1b[0m`,
		"title \x1b]0;pwned\x07":  `title \x1b]0;pwned\x07`,
		"line\nbreak\ttab\r":      `line\x0abreak\x09tab\x0d`,
		"del \x7f, c1 \u009b2J":   `del \x7f, c1 \u009b2J`,
		"bidi \u202eevil\u2066":   `bidi \u202eevil\u2066`,
		"not utf-8 \xff\xfe end":  `not utf-8 \xff\xfe end`,
		"":                        "",
	} {
		if got := Safe(in); got != want {
			t.Errorf("Safe(%q) = %q, want %q", in, got, want)
		}
	}
}
