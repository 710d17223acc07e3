package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/modules"
)

// input is one value as a client sent it, in a JSON body or a query string.
type input struct {
	typ byte   // 's' string, 'n' number, 'b' boolean, 'z' null, 'a' array, 'o' object
	s   string // a string's content, a number's text
	b   bool
	raw []byte // the JSON text (body values only)
}

func strInput(s string) input { return input{typ: 's', s: s} }

// jsonInput classifies one JSON value.
func jsonInput(raw []byte) (input, error) {
	in := input{raw: raw}
	if len(raw) == 0 {
		return in, fmt.Errorf("empty value")
	}
	switch raw[0] {
	case '"':
		in.typ = 's'
		// Without an escape, valid UTF-8 between its quotes is what encoding/json would make of it.
		if len(raw) >= 2 && raw[len(raw)-1] == '"' {
			if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && bytes.IndexByte(s, '"') < 0 && utf8.Valid(s) && !hasControl(s) {
				in.s = string(s)
				return in, nil
			}
		}
		if err := json.Unmarshal(raw, &in.s); err != nil {
			return in, err
		}
	case 't', 'f':
		in.typ, in.b = 'b', raw[0] == 't'
	case 'n':
		in.typ = 'z'
	case '[':
		in.typ = 'a'
	case '{':
		in.typ = 'o'
	default:
		in.typ, in.s = 'n', string(raw)
	}
	return in, nil
}

// hasControl reports whether b holds a control character, which a JSON string may not.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// pyType names an input's type as DRF's messages do.
func (in input) pyType() string {
	switch in.typ {
	case 's':
		return "str"
	case 'n':
		if strings.ContainsAny(in.s, ".eE") {
			return "float"
		}
		return "int"
	case 'b':
		return "bool"
	case 'z':
		return "NoneType"
	case 'a':
		return "list"
	}
	return "dict"
}

// DRF's messages.
const (
	msgRequired     = "This field is required."
	msgNull         = "This field may not be null."
	msgBlank        = "This field may not be blank."
	msgInvalidInt   = "A valid integer is required."
	msgInvalidNum   = "A valid number is required."
	msgInvalidStr   = "Not a valid string."
	msgInvalidBool  = "Must be a valid boolean."
	msgInvalidUUID  = "Must be a valid UUID."
	msgInvalidTime  = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
	msgInvalidDate  = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
	msgInvalidValue = "Enter a valid value."
	msgNullChar     = "Null characters are not allowed."
	msgTooLarge     = "String value too large."
)

// maxNumberLen bounds the text of a number, as DRF's MAX_STRING_LENGTH does.
const maxNumberLen = 1000

// convert validates one input value for column c and returns what to bind for it, or DRF's
// message saying what is wrong. Null is the caller's business.
func convert(c *modules.Column, in input) (any, string) {
	switch c.Kind {
	case modules.KindInt:
		return convertInt(c, in)
	case modules.KindFloat:
		if in.typ != 's' && in.typ != 'n' {
			return nil, msgInvalidNum
		}
		s := strings.TrimSpace(in.s)
		if len(s) > maxNumberLen {
			return nil, msgTooLarge
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xX_") {
			return nil, msgInvalidNum
		}
		if c.SQLType == "real" && math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Sprintf("Ensure this value is less than or equal to %g.", math.MaxFloat32)
		}
		return f, ""
	case modules.KindNumeric:
		if in.typ != 's' && in.typ != 'n' {
			return nil, msgInvalidNum
		}
		s := strings.TrimSpace(in.s)
		if len(s) > maxNumberLen {
			return nil, msgTooLarge
		}
		d, ok := parseDecimal(s)
		if !ok {
			return nil, msgInvalidNum
		}
		if msg := d.checkPrecision(c.MaxDigits, c.Scale); msg != "" {
			return nil, msg
		}
		return d.String(), ""
	case modules.KindBool:
		switch in.typ {
		case 'b':
			return in.b, ""
		case 's', 'n':
			switch in.s {
			case "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1":
				return true, ""
			case "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0":
				return false, ""
			}
		}
		return nil, msgInvalidBool
	case modules.KindTime:
		if !isTimestamp(c) {
			break // time and timetz: as text, parsed by PostgreSQL
		}
		if in.typ != 's' {
			return nil, msgInvalidTime
		}
		t, ok := parseDateTime(in.s)
		if !ok {
			return nil, msgInvalidTime
		}
		return t, ""
	case modules.KindDate:
		if in.typ != 's' {
			return nil, msgInvalidDate
		}
		t, err := time.Parse(dateLayout, strings.TrimSpace(in.s))
		if err != nil || t.Year() < 1 || t.Year() > 9999 {
			return nil, msgInvalidDate
		}
		return t, ""
	case modules.KindUUID:
		if in.typ != 's' {
			return nil, msgInvalidUUID
		}
		u, ok := parseUUID(in.s)
		if !ok {
			return nil, msgInvalidUUID
		}
		return u, ""
	case modules.KindChoice:
		return convertChoice(c, in)
	case modules.KindJSON:
		if in.raw == nil {
			return nil, msgInvalidValue // JSON columns take JSON, not query-string values
		}
		return string(in.raw), ""
	}
	// Text and every other type: a string (numbers as their text), parsed by PostgreSQL.
	if in.typ != 's' && in.typ != 'n' {
		return nil, msgInvalidStr
	}
	if strings.IndexByte(in.s, 0) >= 0 {
		return nil, msgNullChar
	}
	if n := maxLength(c.SQLType); n > 0 && utf8.RuneCountInString(in.s) > n {
		return nil, fmt.Sprintf("Ensure this field has no more than %d characters.", n)
	}
	return in.s, ""
}

// intRange is the range of an integer column's type.
func intRange(sqlType string) (lo, hi int64) {
	switch {
	case strings.HasPrefix(sqlType, "small"), sqlType == "int2":
		return math.MinInt16, math.MaxInt16
	case strings.HasPrefix(sqlType, "big"), sqlType == "int8":
		return math.MinInt64, math.MaxInt64
	}
	return math.MinInt32, math.MaxInt32
}

func convertInt(c *modules.Column, in input) (any, string) {
	invalid := msgInvalidInt
	if c.References != "" {
		invalid = fmt.Sprintf("Incorrect type. Expected pk value, received %s.", in.pyType())
	}
	if in.typ != 's' && in.typ != 'n' {
		return nil, invalid
	}
	s := strings.TrimSpace(in.s)
	if len(s) > maxNumberLen {
		return nil, msgTooLarge
	}
	lo, hi := intRange(c.SQLType)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// 5.0 and 1e3 are integers too; 5.5 is not.
		d, ok := parseDecimal(s)
		if !ok || !d.integral() {
			return nil, invalid
		}
		if n, ok = d.int64(); !ok {
			if d.neg {
				return nil, fmt.Sprintf("Ensure this value is greater than or equal to %d.", lo)
			}
			return nil, fmt.Sprintf("Ensure this value is less than or equal to %d.", hi)
		}
	}
	switch {
	case n < lo:
		return nil, fmt.Sprintf("Ensure this value is greater than or equal to %d.", lo)
	case n > hi:
		return nil, fmt.Sprintf("Ensure this value is less than or equal to %d.", hi)
	}
	return n, ""
}

// maxLength is the length limit of a character type, 0 when it has none.
func maxLength(sqlType string) int {
	open := strings.IndexByte(sqlType, '(')
	if open < 0 || !strings.HasSuffix(sqlType, ")") {
		return 0
	}
	switch strings.TrimSpace(sqlType[:open]) {
	case "character varying", "varchar", "character", "char", "bpchar":
		n, _ := strconv.Atoi(sqlType[open+1 : len(sqlType)-1])
		return n
	}
	return 0
}

// parseDateTime accepts ISO 8601 date-times as Django does: a 'T' or a space between date and
// time, optional seconds and fraction, and an offset or Z; without one, UTC.
func parseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	// In a query string an unescaped '+' arrives as a space: "10:00:00 02:00" is "10:00:00+02:00".
	if i := strings.LastIndexByte(s, ' '); i > 10 {
		s = s[:i] + "+" + s[i+1:]
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.999999999Z0700",
		"2006-01-02T15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseUUID accepts the hyphenated form and 32 hex digits, as Python's uuid.UUID does, with
// optional braces and "urn:uuid:".
func parseUUID(s string) (pgtype.UUID, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "urn:uuid:")
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	s = strings.ReplaceAll(s, "-", "")
	var u pgtype.UUID
	if len(s) != 32 {
		return u, false
	}
	if _, err := hex.Decode(u.Bytes[:], []byte(s)); err != nil {
		return u, false
	}
	u.Valid = true
	return u, true
}

// decimal is a parsed decimal number: digits × 10^exp, the way Python's Decimal holds it.
type decimal struct {
	neg    bool
	digits string // the coefficient without leading zeros; "0" for zero
	exp    int
}

// maxDecimalExp bounds exponents: 1e1000000 is not a price.
const maxDecimalExp = 1000

// parseDecimal parses [+-]digits[.digits][e[+-]digits] (digits on at least one side of the point).
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	startInt := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[startInt:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[start:i]
	}
	if intPart == "" && frac == "" {
		return d, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if exp > 10*maxDecimalExp {
				return d, false
			}
			exp = exp*10 + int(s[i]-'0')
			i++
		}
		if i == start {
			return d, false
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	d.digits = strings.TrimLeft(intPart+frac, "0")
	if d.digits == "" {
		d.digits = "0"
	}
	d.exp = exp - len(frac)
	if d.exp > maxDecimalExp || d.exp < -maxDecimalExp || len(d.digits) > maxNumberLen {
		return d, false
	}
	return d, true
}

// checkPrecision applies DRF's DecimalField.validate_precision.
func (d decimal) checkPrecision(maxDigits, scale int) string {
	if maxDigits <= 0 {
		return ""
	}
	n := len(d.digits)
	var total, whole, places int
	switch {
	case d.exp >= 0:
		total, whole, places = n+d.exp, n+d.exp, 0
	case n > -d.exp:
		total, whole, places = n, n+d.exp, -d.exp
	default:
		total, whole, places = -d.exp, 0, -d.exp
	}
	switch {
	case total > maxDigits:
		return fmt.Sprintf("Ensure that there are no more than %d digits in total.", maxDigits)
	case places > scale:
		return fmt.Sprintf("Ensure that there are no more than %d decimal places.", scale)
	case whole > maxDigits-scale:
		return fmt.Sprintf("Ensure that there are no more than %d digits before the decimal point.", maxDigits-scale)
	}
	return ""
}

func (d decimal) isZero() bool { return d.digits == "0" }

// integral reports whether d has no fractional part.
func (d decimal) integral() bool {
	if d.exp >= 0 || d.isZero() {
		return true
	}
	n := len(d.digits)
	if -d.exp >= n {
		return false
	}
	return strings.Trim(d.digits[n+d.exp:], "0") == ""
}

// int64 converts an integral d; ok is false when it does not fit.
func (d decimal) int64() (int64, bool) {
	if d.isZero() {
		return 0, true
	}
	var s string
	if d.exp >= 0 {
		if len(d.digits)+d.exp > 19 {
			return 0, false
		}
		s = d.digits + strings.Repeat("0", d.exp)
	} else {
		s = d.digits[:len(d.digits)+d.exp]
	}
	if d.neg {
		s = "-" + s
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// String renders d without an exponent, as PostgreSQL's numeric input takes it.
func (d decimal) String() string {
	var b strings.Builder
	if d.neg && !d.isZero() {
		b.WriteByte('-')
	}
	switch {
	case d.exp >= 0:
		b.WriteString(d.digits)
		if !d.isZero() {
			b.WriteString(strings.Repeat("0", d.exp))
		}
	case len(d.digits) > -d.exp:
		b.WriteString(d.digits[:len(d.digits)+d.exp])
		b.WriteByte('.')
		b.WriteString(d.digits[len(d.digits)+d.exp:])
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -d.exp-len(d.digits)))
		b.WriteString(d.digits)
	}
	return b.String()
}

// convertChoice takes one of an enum column's values. DRF's ChoiceField looks up str(value), so
// a number matches a value of the same text and true matches "True"; the message quotes the
// input as DRF does.
func convertChoice(c *modules.Column, in input) (any, string) {
	var s string
	switch in.typ {
	case 's', 'n':
		s = in.s
	case 'b':
		s = "False"
		if in.b {
			s = "True"
		}
	default:
		s = string(in.raw)
	}
	for _, v := range c.Choices {
		if v == s {
			return s, ""
		}
	}
	return nil, fmt.Sprintf("%q is not a valid choice.", s)
}
