package api

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonTextProblem says what is wrong with the text of a JSON body that encoding/json would
// accept and silently repair: bytes that are not UTF-8, and \u escapes of half a surrogate pair.
// Both would be stored as U+FFFD, a value the client never sent.
func jsonTextProblem(body []byte) string {
	if !utf8.Valid(body) {
		return "the body is not valid UTF-8."
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		i++
		if i >= len(body) || body[i] != 'u' {
			continue // another escape, or the end: encoding/json judges those
		}
		r, ok := hex4(body, i+1)
		if !ok {
			continue
		}
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A high half must be followed at once by a low half, as \uXXXX.
		if r < 0xdc00 && i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
			if lo, ok := hex4(body, i+3); ok && lo >= 0xdc00 && lo <= 0xdfff {
				i += 6
				continue
			}
		}
		return "a string holds half of a UTF-16 surrogate pair (\\u" + strconv.FormatInt(int64(r), 16) + "), which is not a character."
	}
	return ""
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}
