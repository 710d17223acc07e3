package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"unicode/utf8"

	"github.com/erpctl/erpctl/modules"
)

// Media types of request bodies: DRF's default parsers.
const (
	mediaJSON      = "application/json"
	mediaForm      = "application/x-www-form-urlencoded"
	mediaMultipart = "multipart/form-data"
)

// decodeRequest turns a body of media type contentType (checked by readBody) into the values to
// write, as decodeBody does for JSON.
func decodeRequest(res *modules.Resource, contentType string, body []byte, requireAll bool) ([]colArg, fieldErrors, string) {
	mt, params, _ := mime.ParseMediaType(contentType)
	switch {
	case len(body) == 0 || mt == mediaJSON:
		return decodeBody(res, body, requireAll)
	case mt == mediaForm:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, "Form parse error - the body is not valid URL-encoded form data."
		}
		return decodeForm(res, form, nil, requireAll)
	}
	form, files, err := parseMultipart(body, params["boundary"])
	if err != nil {
		return nil, nil, "Multipart form parse error - " + err.Error()
	}
	return decodeForm(res, form, files, requireAll)
}

// parseMultipart reads the fields of a multipart/form-data body, and the names of its files.
// The body is already in memory and bounded by the body limit, so its parts are read there.
func parseMultipart(body []byte, boundary string) (url.Values, map[string]bool, error) {
	if boundary == "" {
		return nil, nil, errors.New("the Content-Type has no boundary.")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	form, files := url.Values{}, map[string]bool{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return form, files, nil
		}
		if err != nil {
			return nil, nil, errors.New("the body is not valid multipart data.")
		}
		name := p.FormName()
		if p.FileName() != "" {
			files[name] = true
			continue
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, errors.New("the body is not valid multipart data.")
		}
		form.Add(name, string(v))
	}
}

// decodeForm validates form fields as DRF's serializer fields read an HTML form: the last value
// of a repeated name; a missing boolean is false (an unchecked checkbox; null when nullable)
// unless the request is partial; an empty value is null in a nullable column that is not text,
// and not given at all in a column that is not required. JSON columns take JSON text. A file
// in a column's name is refused: no column holds files.
func decodeForm(res *modules.Resource, form url.Values, files map[string]bool, requireAll bool) ([]colArg, fieldErrors, string) {
	return decodeFields(res, requireAll, func(c *modules.Column) (input, bool, string) {
		if files[c.Name] {
			return input{}, true, "Files are not accepted: send this value as a form field."
		}
		vs, ok := form[c.Name]
		if !ok || len(vs) == 0 {
			if c.Kind == modules.KindBool && requireAll {
				if c.Null {
					return input{typ: 'z'}, true, ""
				}
				return input{typ: 'b'}, true, ""
			}
			return input{}, false, ""
		}
		v := vs[len(vs)-1]
		switch {
		case !utf8.ValidString(v):
			return input{}, true, "Enter valid UTF-8 text."
		case v == "" && c.Null && !isText(c):
			return input{typ: 'z'}, true, ""
		case v == "" && !c.Required() && !isText(c):
			return input{}, false, ""
		case c.Kind == modules.KindJSON:
			raw := bytes.TrimSpace([]byte(v))
			if !json.Valid(raw) {
				return input{}, true, "Value must be valid JSON."
			}
			in, _ := jsonInput(raw)
			return in, true, ""
		}
		return strInput(v), true, ""
	})
}

// acceptedMedia reports whether a request body of media type mt is parsed.
func acceptedMedia(mt string) bool {
	return mt == mediaJSON || mt == mediaForm || mt == mediaMultipart
}
