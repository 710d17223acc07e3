package api

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
)

// tableSQL is one resource of one tenant schema: its statements and how to encode its rows.
type tableSQL struct {
	res     *modules.Resource
	schema  string
	qname   string   // "schema"."table"
	keys    [][]byte // `"column":` per column, for the JSON encoder
	selList string   // the columns in declared order
	// The result formats of the columns, and of a list's count and columns.
	fmts, listFmts pgx.QueryResultFormats
	// A list is listHead WHERE… listMid WHERE… ORDER BY… LIMIT… OFFSET… listTail; with
	// listIDsMid instead of listMid, it gives each row's id and size only (see bigRows).
	listHead, listMid, listIDsMid, listTail string
	// bigRows is set once a page of the table was larger than a request's memory budget: its
	// pages are then read as ids and sizes first, and their rows by id in parts that fit, instead
	// of reading each page twice. A page that fits clears it.
	bigRows atomic.Bool
	getByID string
	byIDs   string // rows by id, in the order of the ids: the rest of a large page
	delByID string
	exists  string
	// Tenant-aware columns: the id, and those the server sets; -1 when the table lacks one.
	idIdx, createdBy, updatedBy, updatedAt int

	mu     sync.Mutex
	writes map[writeKey]string // INSERT/UPDATE statements by the set of columns written
}

type writeKey struct {
	update bool
	cols   uint64 // bit i: column i is written
}

// binaryResult reports whether the encoder reads column c in binary: the integers, floats,
// booleans, timestamps and dates.
func binaryResult(c *modules.Column) bool {
	switch c.Kind {
	case modules.KindInt, modules.KindFloat, modules.KindBool, modules.KindDate:
		return true
	case modules.KindTime:
		return isTimestamp(c)
	}
	return false
}

// isTimestamp tells timestamps from the other time types (time, timetz), which are served and
// taken as text.
func isTimestamp(c *modules.Column) bool { return strings.HasPrefix(c.SQLType, "timestamp") }

// isText reports whether c holds text (modules.KindText and KindOther are both "string": the
// SQL type tells them apart).
func isText(c *modules.Column) bool {
	if c.Kind != modules.KindText {
		return false
	}
	t := c.SQLType
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	switch t {
	case "text", "character varying", "varchar", "character", "char", "bpchar", "citext", "name":
		return true
	}
	return false
}

// qcol is a quoted column name.
func qcol(name string) string { return ident.Quote(name) }

func newTableSQL(schemaName string, res *modules.Resource) *tableSQL {
	t := &tableSQL{res: res, schema: schemaName, qname: ident.Quote(schemaName, res.Table),
		idIdx: -1, createdBy: -1, updatedBy: -1, updatedAt: -1}
	var sel, qsel strings.Builder
	var size []string // each column's size as the server stores it, text's as it sends it
	t.fmts = make(pgx.QueryResultFormats, len(res.Columns))
	for i, c := range res.Columns {
		if i > 0 {
			sel.WriteString(", ")
			qsel.WriteString(", ")
		}
		sel.WriteString(qcol(c.Name))
		qsel.WriteString(`"t".` + qcol(c.Name))
		if isText(&c) {
			size = append(size, `coalesce(octet_length("t".`+qcol(c.Name)+`), 0)::bigint`)
		} else {
			size = append(size, `coalesce(pg_column_size("t".`+qcol(c.Name)+`), 0)::bigint`)
		}
		// Binary where the encoder reads the binary form; text, the type's own output, for the
		// rest: numerics come padded to their scale ("9.50"), JSON as JSON.
		if binaryResult(&c) {
			t.fmts[i] = binaryFormat
		}
		t.keys = append(t.keys, append(appendJSONString(nil, c.Name), ':'))
		switch c.Name {
		case "id":
			t.idIdx = i
		case "created_by":
			t.createdBy = i
		case "updated_by":
			t.updatedBy = i
		case "updated_at":
			t.updatedAt = i
		}
	}
	t.listFmts = append(pgx.QueryResultFormats{binaryFormat}, t.fmts...)
	t.selList = sel.String()
	// The alias lets ORDER BY name the table's column: a bare "price" would be the output
	// column, price::text, and sort as text.
	from := " FROM " + t.qname + ` AS "t"`
	t.listHead = `SELECT "c"."n", "p".* FROM (SELECT count(*)` + from
	t.listMid = `) AS "c" ("n") LEFT JOIN LATERAL (SELECT ` + t.selList + from
	t.listIDsMid = `) AS "c" ("n") LEFT JOIN LATERAL (SELECT "t"."id", ` + strings.Join(size, " + ") + from
	t.listTail = `) AS "p" ON true`
	t.getByID = "SELECT " + t.selList + from + ` WHERE "id" = $1`
	t.byIDs = "SELECT " + qsel.String() + ` FROM unnest($1::bigint[]) WITH ORDINALITY AS "k" ("id", "n") JOIN ` + t.qname + ` AS "t" ON "t"."id" = "k"."id" ORDER BY "k"."n"`
	t.delByID = "DELETE FROM " + t.qname + ` WHERE "id" = $1`
	t.exists = "SELECT true FROM " + t.qname + ` WHERE "id" = $1`
	return t
}

// colArg is one validated input value: the column's index and the value to bind.
type colArg struct {
	col int
	val any
}

// writeSQL returns the INSERT (update false) or UPDATE statement for the given input columns,
// its arguments, and for each argument the column it fills ("" for the actor and the id). The
// server sets created_by and updated_by to actor, and updated_at to now() on every update.
func (t *tableSQL) writeSQL(update bool, vals []colArg, actor string, id int64) (string, []any, []string) {
	args := make([]any, 0, len(vals)+2)
	argNames := make([]string, 0, len(vals)+2)
	for _, v := range vals {
		args = append(args, v.val)
		argNames = append(argNames, t.res.Columns[v.col].Name)
	}
	if t.createdBy >= 0 || t.updatedBy >= 0 {
		args = append(args, actor)
		argNames = append(argNames, "")
	}
	if update {
		args = append(args, id)
		argNames = append(argNames, "")
	}
	key := writeKey{update: update}
	cacheable := len(t.res.Columns) <= 64
	if cacheable {
		for _, v := range vals {
			key.cols |= 1 << uint(v.col)
		}
		t.mu.Lock()
		s, ok := t.writes[key]
		t.mu.Unlock()
		if ok {
			return s, args, argNames
		}
	}
	var b strings.Builder
	n := len(vals)
	if !update {
		b.WriteString("INSERT INTO " + t.qname + " (")
		names := make([]string, 0, n+2)
		for _, v := range vals {
			names = append(names, qcol(t.res.Columns[v.col].Name))
		}
		ph := make([]string, 0, n+2)
		for i := range vals {
			ph = append(ph, "$"+strconv.Itoa(i+1))
		}
		actor := "$" + strconv.Itoa(n+1)
		if t.createdBy >= 0 {
			names, ph = append(names, `"created_by"`), append(ph, actor)
		}
		if t.updatedBy >= 0 {
			names, ph = append(names, `"updated_by"`), append(ph, actor)
		}
		if len(names) == 0 {
			b.WriteString(") DEFAULT VALUES")
		} else {
			b.WriteString(strings.Join(names, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")")
		}
	} else {
		b.WriteString("UPDATE " + t.qname + " SET ")
		sets := make([]string, 0, n+2)
		for i, v := range vals {
			sets = append(sets, qcol(t.res.Columns[v.col].Name)+" = $"+strconv.Itoa(i+1))
		}
		next := n + 1
		if t.createdBy >= 0 || t.updatedBy >= 0 {
			if t.updatedBy >= 0 {
				sets = append(sets, `"updated_by" = $`+strconv.Itoa(next))
			}
			next++
		}
		if t.updatedAt >= 0 {
			sets = append(sets, `"updated_at" = now()`)
		}
		if len(sets) == 0 {
			sets = append(sets, `"id" = "id"`)
		}
		b.WriteString(strings.Join(sets, ", ") + ` WHERE "id" = $` + strconv.Itoa(next))
	}
	b.WriteString(" RETURNING " + t.selList)
	s := b.String()
	if cacheable {
		t.mu.Lock()
		if t.writes == nil || len(t.writes) >= 1024 {
			t.writes = map[writeKey]string{}
		}
		t.writes[key] = s
		t.mu.Unlock()
	}
	return s, args, argNames
}

// ---- row encoding

// rowIsNull reports whether raw, a table row, is the all-NULL row of a LEFT JOIN that found
// nothing: its id is NULL, which a row of the table's never is.
func (t *tableSQL) rowIsNull(raw [][]byte) bool {
	if t.idIdx >= 0 {
		return raw[t.idIdx] == nil
	}
	for _, v := range raw {
		if v != nil {
			return false
		}
	}
	return true
}

// appendRow encodes the current row as a JSON object, columns in declared order; the row's
// first skip values are not the table's.
func (t *tableSQL) appendRow(buf []byte, rows pgx.Rows, skip int) []byte {
	fds := rows.FieldDescriptions()[skip:]
	raw := rows.RawValues()[skip:]
	buf = append(buf, '{')
	for i := range t.res.Columns {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, t.keys[i]...)
		buf = appendValue(buf, t.res.Columns[i].Kind, &fds[i], raw[i], rows)
	}
	return append(buf, '}')
}

// pgEpoch is the zero of PostgreSQL's binary timestamps and dates.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	timeLayout   = "2006-01-02T15:04:05.000000Z07:00"
	naiveLayout  = "2006-01-02T15:04:05.000000"
	dateLayout   = "2006-01-02"
	textFormat   = pgtype.TextFormatCode
	binaryFormat = pgtype.BinaryFormatCode
)

// appendValue encodes one column value: integers and floats as numbers, numerics and the rest
// as strings, JSON as itself, timestamps in RFC 3339.
func appendValue(buf []byte, kind modules.Kind, fd *pgconn.FieldDescription, raw []byte, rows pgx.Rows) []byte {
	if raw == nil {
		return append(buf, "null"...)
	}
	if fd.Format == binaryFormat {
		switch fd.DataTypeOID {
		case pgtype.Int8OID:
			if len(raw) == 8 {
				return strconv.AppendInt(buf, int64(binary.BigEndian.Uint64(raw)), 10)
			}
		case pgtype.Int4OID:
			if len(raw) == 4 {
				return strconv.AppendInt(buf, int64(int32(binary.BigEndian.Uint32(raw))), 10)
			}
		case pgtype.Int2OID:
			if len(raw) == 2 {
				return strconv.AppendInt(buf, int64(int16(binary.BigEndian.Uint16(raw))), 10)
			}
		case pgtype.BoolOID:
			if len(raw) == 1 {
				return strconv.AppendBool(buf, raw[0] != 0)
			}
		case pgtype.Float8OID:
			if len(raw) == 8 {
				return appendFloat(buf, math.Float64frombits(binary.BigEndian.Uint64(raw)), 64)
			}
		case pgtype.Float4OID:
			if len(raw) == 4 {
				return appendFloat(buf, float64(math.Float32frombits(binary.BigEndian.Uint32(raw))), 32)
			}
		case pgtype.TimestamptzOID, pgtype.TimestampOID:
			if len(raw) == 8 {
				us := int64(binary.BigEndian.Uint64(raw))
				switch us {
				case math.MaxInt64:
					return append(buf, `"infinity"`...)
				case math.MinInt64:
					return append(buf, `"-infinity"`...)
				}
				sec, rem := us/1e6, us%1e6
				if rem < 0 {
					sec, rem = sec-1, rem+1e6
				}
				t := time.Unix(pgEpoch.Unix()+sec, rem*1000).UTC()
				buf = append(buf, '"')
				return append(appendTimestamp(buf, t, fd.DataTypeOID == pgtype.TimestamptzOID), '"')
			}
		case pgtype.DateOID:
			if len(raw) == 4 {
				days := int32(binary.BigEndian.Uint32(raw))
				switch days {
				case math.MaxInt32:
					return append(buf, `"infinity"`...)
				case math.MinInt32:
					return append(buf, `"-infinity"`...)
				}
				buf = append(buf, '"')
				return append(pgEpoch.AddDate(0, 0, int(days)).AppendFormat(buf, dateLayout), '"')
			}
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
			return appendTextValue(buf, kind, raw)
		}
		return appendDecoded(buf, fd, raw, rows)
	}
	switch fd.DataTypeOID {
	case pgtype.Int8OID, pgtype.Int4OID, pgtype.Int2OID:
		return append(buf, raw...)
	case pgtype.BoolOID:
		return strconv.AppendBool(buf, len(raw) > 0 && raw[0] == 't')
	}
	// Text, numeric, JSON, UUID and any other type: the type's own text output.
	return appendTextValue(buf, kind, raw)
}

// appendTimestamp formats t (UTC) in RFC 3339 with microseconds, as DRF does; zone adds
// the "Z". It is time.AppendFormat without the layout parsing.
func appendTimestamp(buf []byte, t time.Time, zone bool) []byte {
	y, mo, d := t.Date()
	if y < 1 || y > 9999 {
		layout := naiveLayout
		if zone {
			layout = timeLayout
		}
		return t.AppendFormat(buf, layout)
	}
	h, mi, s := t.Clock()
	buf = append(buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
	// Always six digits, as DRF prints a datetime with microseconds: a fixed width, so that
	// clients may compare them as strings.
	us := t.Nanosecond() / 1000
	var frac [7]byte
	frac[0] = '.'
	for i := 6; i >= 1; i-- {
		frac[i] = byte('0' + us%10)
		us /= 10
	}
	buf = append(buf, frac[:]...)
	if zone {
		buf = append(buf, 'Z')
	}
	return buf
}

// appendTextValue encodes a value PostgreSQL sent as text: JSON columns as they are, the rest
// as strings.
func appendTextValue(buf []byte, kind modules.Kind, raw []byte) []byte {
	if kind == modules.KindJSON && json.Valid(raw) {
		return append(buf, raw...)
	}
	return appendJSONBytes(buf, raw)
}

// appendDecoded is the slow path for a type the fast path does not know: pgx decodes it and
// encoding/json encodes it.
func appendDecoded(buf []byte, fd *pgconn.FieldDescription, raw []byte, rows pgx.Rows) []byte {
	m := rows.Conn().TypeMap()
	var v any
	if typ, ok := m.TypeForOID(fd.DataTypeOID); ok {
		v, _ = typ.Codec.DecodeValue(m, fd.DataTypeOID, fd.Format, raw)
	}
	if v == nil {
		if fd.Format == textFormat {
			return appendJSONBytes(buf, raw)
		}
		return append(buf, "null"...)
	}
	if t, ok := v.(time.Time); ok {
		buf = append(buf, '"')
		return append(t.UTC().AppendFormat(buf, timeLayout), '"')
	}
	b, err := json.Marshal(v)
	if err != nil {
		return append(buf, "null"...)
	}
	return append(buf, b...)
}

// appendFloat encodes a float as a JSON number; NaN and the infinities, which JSON lacks, as
// strings.
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Infinity"`...)
	}
	return strconv.AppendFloat(buf, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// appendJSONString encodes s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

func appendJSONBytes(buf, b []byte) []byte {
	// appendJSONString keeps nothing of its argument: no copy needed.
	return appendJSONString(buf, unsafe.String(unsafe.SliceData(b), len(b)))
}
