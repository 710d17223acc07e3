package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/erpctl/erpctl/modules"
)

// decodeBody turns a request body into the values to write: the writable columns the body
// gives, validated, in column order. With requireAll (POST, PUT) every required column must be
// given; PATCH may give any subset. Read-only columns and names no column has are ignored, as
// DRF ignores them: a client may PUT back an object with extra keys (a url, a computed field, a
// newer schema's column). parseErr is set when the body is not JSON at all.
func decodeBody(res *modules.Resource, body []byte, requireAll bool) (vals []colArg, errs fieldErrors, parseErr string) {
	var obj map[string]json.RawMessage
	if msg := jsonTextProblem(body); msg != "" {
		return nil, nil, "JSON parse error - " + msg
	}
	if members, ok := flatObject(body); ok {
		return decodeFields(res, requireAll, fromMembers(members.get))
	}
	if len(body) > 0 {
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '{' {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				return nil, nil, "JSON parse error - " + jsonErrorText(err)
			}
			in, _ := jsonInput(bytes.TrimSpace(trimmed))
			errs.add("non_field_errors", "Invalid data. Expected a dictionary, but got "+in.pyType()+".")
			return nil, errs, ""
		}
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, nil, "JSON parse error - " + jsonErrorText(err)
		}
	}
	return decodeFields(res, requireAll, fromMembers(func(name string) ([]byte, bool) {
		raw, ok := obj[name]
		return raw, ok
	}))
}

// fromMembers is decodeFields' source of a column's input: the body's member of its name.
func fromMembers(get func(name string) ([]byte, bool)) func(c *modules.Column) (input, bool, string) {
	return func(c *modules.Column) (input, bool, string) {
		raw, ok := get(c.Name)
		if !ok {
			return input{}, false, ""
		}
		in, err := jsonInput(raw)
		if err != nil {
			return in, true, msgInvalidValue
		}
		return in, true, ""
	}
}

// decodeFields validates the writable columns' inputs, which get gives (ok false: not given;
// msg: what is wrong with it), in column order. With requireAll every required column must be
// given.
func decodeFields(res *modules.Resource, requireAll bool, get func(c *modules.Column) (input, bool, string)) (vals []colArg, errs fieldErrors, parseErr string) {
	for i := range res.Columns {
		c := &res.Columns[i]
		if c.ReadOnly {
			continue // set by the server, ignored in input
		}
		in, ok, msg := get(c)
		switch {
		case msg != "":
			errs.add(c.Name, msg)
			continue
		case !ok:
			if requireAll && c.Required() {
				errs.add(c.Name, msgRequired)
			}
			continue
		case in.typ == 'z':
			if !c.Null {
				errs.add(c.Name, msgNull)
				continue
			}
			vals = append(vals, colArg{col: i})
			continue
		case in.typ == 's' && !c.Null && isText(c) && strings.TrimSpace(in.s) == "":
			// DRF's CharField of a NOT NULL column: allow_blank is false, and it trims first.
			errs.add(c.Name, msgBlank)
			continue
		}
		v, msg := convert(c, in)
		if msg != "" {
			errs.add(c.Name, msg)
			continue
		}
		vals = append(vals, colArg{col: i, val: v})
	}
	if len(errs) > 0 {
		return nil, errs, ""
	}
	return vals, nil, ""
}

// jsonErrorText describes a JSON syntax error with its offset.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) {
		return "unexpected " + ue.Value + " (at byte " + strconv.FormatInt(ue.Offset, 10) + ")"
	}
	return err.Error()
}

// readBody reads a request body of at most maxBody bytes. An empty body is fine (it means {});
// a body that is not JSON or a form is a 415, a body too large a 413, both written here.
func (a *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > a.maxBody {
		writeDetail(w, http.StatusRequestEntityTooLarge, a.tooLarge())
		return nil, false
	}
	rd := http.MaxBytesReader(w, r.Body, a.maxBody)
	var body []byte
	var err error
	if r.ContentLength > 0 {
		// Sized from Content-Length (at most maxBody, above): one allocation and no growing.
		// net/http has already bounded the body to that length.
		body = make([]byte, r.ContentLength)
		if _, err = io.ReadFull(rd, body); err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeDetail(w, http.StatusRequestEntityTooLarge, a.tooLarge())
			return nil, false
		}
		writeDetail(w, http.StatusBadRequest, "Could not read the request body.")
		return nil, false
	}
	if len(body) == 0 {
		return nil, true
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !acceptedMedia(mt) {
		writeDetail(w, http.StatusUnsupportedMediaType, "Unsupported media type "+strconv.Quote(ct)+" in request.")
		return nil, false
	}
	return body, true
}

func (a *Handler) tooLarge() string {
	return "Request body is larger than " + strconv.FormatInt(a.maxBody, 10) + " bytes."
}

// bodyMembers are an object's members as flatObject found them, in body order.
type bodyMembers []bodyMember

type bodyMember struct{ key, raw []byte }

// get returns the value of key; the last one when the object repeats it, as encoding/json does.
func (ms bodyMembers) get(key string) ([]byte, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if string(ms[i].key) == key {
			return ms[i].raw, true
		}
	}
	return nil, false
}

// maxFlatMembers bounds the members flatObject looks up one by one; a body with more takes
// encoding/json's map.
const maxFlatMembers = 128

// flatObject splits a body that is one JSON object into its members' keys and raw values, the
// way encoding/json's Unmarshal into a map[string]json.RawMessage does, without its reflection
// and copies: the write path's largest cost after the database. It reports false for anything it
// does not handle alike (not valid JSON, not an object, a key with an escape or not UTF-8, too
// many members), which then goes the way of encoding/json, with its error messages.
func flatObject(body []byte) (bodyMembers, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	var ms bodyMembers
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return ms, skipSpace(body, i+1) == len(body)
	}
	for {
		// A key: the body is valid JSON, so it is a string that ends at the next quote unless
		// it holds an escape.
		end := bytes.IndexByte(body[i+1:], '"') + i + 1
		key := body[i+1 : end]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) || len(ms) == maxFlatMembers {
			return nil, false
		}
		i = skipSpace(body, end+1) + 1 // past the colon
		i = skipSpace(body, i)
		vend := valueEnd(body, i)
		ms = append(ms, bodyMember{key: key, raw: body[i:vend]})
		i = skipSpace(body, vend)
		if body[i] == '}' {
			return ms, skipSpace(body, i+1) == len(body)
		}
		i = skipSpace(body, i+1) // past the comma
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns where the JSON value at b[i:] ends, in a text known to be valid JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch c := b[j]; c {
		case '"':
			for j++; b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return j // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return j + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return j
			}
		}
	}
	return len(b)
}
