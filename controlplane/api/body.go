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
	return decodeFields(res, requireAll, func(c *modules.Column) (input, bool, string) {
		raw, ok := obj[c.Name]
		if !ok {
			return input{}, false, ""
		}
		in, err := jsonInput(raw)
		if err != nil {
			return in, true, msgInvalidValue
		}
		return in, true, ""
	})
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
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
