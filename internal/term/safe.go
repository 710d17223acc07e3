package term

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Safe returns s as a terminal may show it: control characters (C0, DEL, C1: the escape
// sequences that move the cursor, clear the screen or retitle the window), the bidirectional
// controls that reorder what is shown, and bytes that are not UTF-8 are written as Go escapes
// (\x1b, \u202e). Text that comes from a file or a database goes through Safe before it is
// printed; erpctl's own styling is added after.
func Safe(s string) string {
	if strings.IndexFunc(s, unsafeRune) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}
