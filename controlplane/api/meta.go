package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/erpctl/erpctl/modules"
)

// object is a JSON object that keeps its keys in insertion order.
type object []member

type member struct {
	key string
	val any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(appendJSONString(nil, m.key))
		b.WriteByte(':')
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONValue(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeDetail(w, http.StatusInternalServerError, "A server error occurred.")
		return
	}
	writeBody(w, status, b)
}

// ---- OPTIONS

// title is a resource's name as DRF titles a view: "stock-items" → "Stock Items".
func title(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// fieldType is the type DRF's SimpleMetadata reports for a column: a foreign key is a
// PrimaryKeyRelatedField, "field".
func fieldType(c *modules.Column) string {
	if c.References != "" {
		return "field"
	}
	return string(c.Kind)
}

// fieldInfo describes one column as DRF's SimpleMetadata.get_field_info does.
func fieldInfo(c *modules.Column) object {
	info := object{
		{"type", fieldType(c)},
		{"required", c.Required()},
		{"read_only", c.ReadOnly},
		{"label", label(c.Name, true)},
	}
	switch c.Kind {
	case modules.KindNumeric:
		if c.MaxDigits > 0 {
			info = append(info, member{"max_digits", c.MaxDigits}, member{"decimal_places", c.Scale})
		}
	case modules.KindInt:
		if !c.ReadOnly && c.References == "" {
			lo, hi := intRange(c.SQLType)
			info = append(info, member{"min_value", lo}, member{"max_value", hi})
		}
	case modules.KindText:
		if n := maxLength(c.SQLType); n > 0 {
			info = append(info, member{"max_length", n})
		}
	case modules.KindChoice:
		// DRF lists a ChoiceField's choices as value and display name; an enum value is both.
		choices := make([]object, len(c.Choices))
		for i, v := range c.Choices {
			choices[i] = object{{"value", v}, {"display_name", v}}
		}
		info = append(info, member{"choices", choices})
	}
	return info
}

// options answers OPTIONS with DRF's metadata: on a collection the fields a POST takes, on an
// object the fields a PUT takes (when the object exists).
func (a *Handler) options(w http.ResponseWriter, r *http.Request, rc *reqCtx, kind routeKind) {
	var meta object
	switch kind {
	case routeRoot:
		meta = object{
			{"name", "Api Root"},
			{"description", fmt.Sprintf("The resources of tenant %s.", rc.tenant.slug)},
		}
	default:
		res := rc.t.res
		suffix := " List"
		if kind == routeDetail {
			suffix = " Instance"
		}
		meta = object{
			{"name", title(res.Name) + suffix},
			{"description", fmt.Sprintf("Table %s of module %s.", res.Table, res.Module)},
		}
	}
	meta = append(meta, member{"renders", []string{"application/json"}}, member{"parses", []string{mediaJSON, mediaForm, mediaMultipart}})
	if kind != routeRoot {
		action := "POST"
		if kind == routeDetail {
			action = "PUT"
			var ok bool
			if err := rc.queryRow(r.Context(), rc.t.exists, rc.id).Scan(&ok); err != nil {
				action = "" // DRF leaves out the actions of an object it cannot find
			}
		}
		if action != "" {
			fields := object{}
			for i := range rc.t.res.Columns {
				c := &rc.t.res.Columns[i]
				fields = append(fields, member{c.Name, fieldInfo(c)})
			}
			meta = append(meta, member{"actions", object{{action, fields}}})
		}
	}
	writeJSONValue(w, http.StatusOK, meta)
}

// ---- GET /api/openapi.json

// openapiCache holds the document of the last registry it was built for.
type openapiCache struct {
	mu  sync.Mutex
	reg *modules.Registry
	doc []byte
}

func (a *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeDetail(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
		return
	}
	// The document describes the latest generation: what every tenant is on, or on its way to.
	_, reg, err := a.p.LatestModules(r.Context())
	if err != nil {
		a.serverError(w, r, "read the latest modules", err)
		return
	}
	a.openapi.mu.Lock()
	if a.openapi.reg != reg {
		doc, err := json.Marshal(openAPIDoc(reg))
		if err != nil {
			a.openapi.mu.Unlock()
			a.serverError(w, r, "build openapi document", err)
			return
		}
		a.openapi.reg, a.openapi.doc = reg, doc
	}
	doc := a.openapi.doc
	a.openapi.mu.Unlock()
	writeBody(w, http.StatusOK, doc)
}

// valueSchema is the OpenAPI type of one column's values, without what depends on where they
// appear (nullable, read-only, limits).
func valueSchema(c *modules.Column) object {
	switch c.Kind {
	case modules.KindInt:
		format := "int32"
		if lo, _ := intRange(c.SQLType); lo < -1<<31 {
			format = "int64"
		}
		return object{{"type", "integer"}, {"format", format}}
	case modules.KindFloat:
		return object{{"type", "number"}, {"format", "double"}}
	case modules.KindNumeric:
		return object{{"type", "string"}, {"format", "decimal"}}
	case modules.KindBool:
		return object{{"type", "boolean"}}
	case modules.KindTime:
		// RFC 3339's date-time has an offset: a timestamp without time zone has none.
		if isTimestamp(c) && (strings.Contains(c.SQLType, "tz") || strings.Contains(c.SQLType, "with time zone")) {
			return object{{"type", "string"}, {"format", "date-time"}}
		}

	case modules.KindDate:
		return object{{"type", "string"}, {"format", "date"}}
	case modules.KindUUID:
		return object{{"type", "string"}, {"format", "uuid"}}
	case modules.KindJSON:
		return object{}
	case modules.KindChoice:
		values := make([]any, 0, len(c.Choices)+1)
		for _, v := range c.Choices {
			values = append(values, v)
		}
		return object{{"type", "string"}, {"enum", values}}
	}
	return object{{"type", "string"}}
}

// inputSchema is the OpenAPI schema of a value a client sends, in a filter or a body: as the
// value a row holds, except that a numeric column also takes a number, as DRF's DecimalField
// does, so that a generated client may send price__gte: 10 or "price": 9.5.
func inputSchema(s object, c *modules.Column) object {
	if c.Kind != modules.KindNumeric {
		return s
	}
	var value, around object
	for _, m := range s {
		switch m.key {
		case "nullable", "readOnly", "description":
			around = append(around, m)
		default:
			value = append(value, m)
		}
	}
	return append(object{{"anyOf", []object{value, {{"type", "number"}}}}}, around...)
}

// schemaOf is the OpenAPI schema of one column's values in a row.
func schemaOf(c *modules.Column) object {
	s := valueSchema(c)
	switch c.Kind {
	case modules.KindNumeric:
		if c.MaxDigits > 0 {
			s = append(s, member{"pattern", fmt.Sprintf(`^-?\d{0,%d}(?:\.\d{0,%d})?$`, c.MaxDigits-c.Scale, c.Scale)})
		}
	case modules.KindTime:
		if isTimestamp(c) && s[len(s)-1].key != "format" {
			// A timestamp without time zone: as DRF prints a naive datetime.
			s = append(s, member{"pattern", `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`})
		}
	case modules.KindChoice:
		// OpenAPI 3.0 checks enum before nullable: a nullable column lists null among its values.
		if c.Null {
			s[1].val = append(s[1].val.([]any), nil)
		}
	case modules.KindText:
		if n := maxLength(c.SQLType); n > 0 {
			s = append(s, member{"maxLength", n})
		}
	}
	if c.Null {
		s = append(s, member{"nullable", true})
	}
	if c.ReadOnly {
		s = append(s, member{"readOnly", true})
	}
	desc := "Column " + c.Name + " (" + c.SQLType + ")"
	if c.References != "" {
		desc += ", the id of a row of " + c.References
	}
	return append(s, member{"description", desc})
}

// schemaName is a resource's component name: letters and digits only, as a $ref needs.
func schemaName(res *modules.Resource) string {
	return strings.ReplaceAll(title(res.Module)+title(res.Name), " ", "")
}

func ref(name string) object { return object{{"$ref", "#/components/schemas/" + name}} }

// openAPIDoc describes every resource of reg as OpenAPI 3.0.3, in DRF's shapes.
func openAPIDoc(reg *modules.Registry) object {
	schemas := object{
		{"Detail", object{{"type", "object"}, {"required", []string{"detail"}},
			{"properties", object{{"detail", object{{"type", "string"}}}}}}},
		{"ValidationError", object{{"type", "object"},
			{"description", "Messages by field (or query parameter); non_field_errors for those of several fields."},
			{"additionalProperties", object{{"type", "array"}, {"items", object{{"type", "string"}}}}}}},
	}
	paths := object{
		{"/api/openapi.json", object{{"get", object{{"operationId", "openapi_retrieve"}, {"summary", "This document"},
			{"security", []object{}},
			{"responses", object{{"200", object{{"description", "The OpenAPI document"},
				{"content", jsonBody(object{{"type", "object"}})}}}}}}}}},
		{"/api/{tenant}/", object{{"parameters", []object{tenantParam()}}, {"get", object{{"operationId", "tenant_root"},
			{"summary", "The tenant's resources and their URLs"},
			{"responses", respond("200", "\"module/resource\": URL, for each resource of the tenant's modules",
				jsonBody(object{{"type", "object"}, {"additionalProperties", object{{"type", "string"}, {"format", "uri"}}}}))}}}}},
	}
	resources := reg.Resources(reg.Names())
	referenced := map[string]bool{}
	for _, res := range resources {
		for _, c := range res.Columns {
			if c.References != "" {
				referenced[c.References] = true
			}
		}
	}
	var tags []object
	for _, m := range reg.Names() {
		tags = append(tags, object{{"name", m}, {"description", "The tables of module " + m + "."}})
	}
	for _, res := range resources {
		schemas = append(schemas, resourceSchemas(&res)...)
		paths = append(paths, resourcePaths(&res, referenced[res.Table])...)
	}
	return object{
		{"openapi", "3.0.3"},
		{"info", object{{"title", "erpctl data API"}, {"version", "1"},
			{"description", "The tables of each tenant's modules, served as in Django REST framework. Every tenant request needs a token of that tenant: Authorization: Bearer TOKEN, or Token TOKEN."}}},
		{"servers", []object{{{"url", "/"}}}},
		{"tags", tags},
		{"paths", paths},
		{"components", object{
			{"schemas", schemas},
			{"securitySchemes", object{{"bearerAuth", object{{"type", "http"}, {"scheme", "bearer"}}},
				{"tokenAuth", object{{"type", "apiKey"}, {"in", "header"}, {"name", "Authorization"},
					{"description", "DRF's keyword: \"Token TOKEN\"."}}}}},
		}},
		{"security", []object{{{"bearerAuth", []string{}}}, {{"tokenAuth", []string{}}}}},
	}
}

// resourceSchemas is a resource's component schemas, as drf-spectacular splits them: the row
// as answered (every field present, nullable where the column is), the body a POST or PUT takes,
// the body a PATCH takes, and a page of rows.
func resourceSchemas(res *modules.Resource) object {
	name := schemaName(res)
	props, writable := object{}, object{}
	var all, required []string
	for i := range res.Columns {
		c := &res.Columns[i]
		props = append(props, member{c.Name, schemaOf(c)})
		all = append(all, c.Name)
		if c.ReadOnly {
			continue
		}
		writable = append(writable, member{c.Name, inputSchema(schemaOf(c), c)})
		if c.Required() {
			required = append(required, c.Name)
		}
	}
	row := object{{"type", "object"}, {"properties", props}, {"required", all}, {"additionalProperties", false}}
	// Bodies: keys that name no field are ignored, as in DRF.
	req := object{{"type", "object"}, {"properties", writable}}
	if len(required) > 0 {
		req = append(req, member{"required", required})
	}
	page := object{{"type", "object"}, {"required", []string{"count", "next", "previous", "results"}}, {"properties", object{
		{"count", object{{"type", "integer"}}},
		{"next", object{{"type", "string"}, {"format", "uri"}, {"nullable", true}}},
		{"previous", object{{"type", "string"}, {"format", "uri"}, {"nullable", true}}},
		{"results", object{{"type", "array"}, {"items", ref(name)}}},
	}}}
	return object{
		{name, row},
		{name + "Request", req},
		{"Patched" + name + "Request", object{{"type", "object"}, {"properties", writable}}},
		{"Paginated" + name + "List", page},
	}
}

func queryParam(name, desc string, schema object) object {
	p := object{{"name", name}, {"in", "query"}}
	if desc != "" {
		p = append(p, member{"description", desc})
	}
	return append(p, member{"schema", schema})
}

// listParams is the query parameters of a resource's list: paging, ordering, search and DRF's
// field lookups, typed by column.
func listParams(res *modules.Resource) []object {
	integer := func(min int) object { return object{{"type", "integer"}, {"minimum", min}} }
	params := []object{
		queryParam("limit", "", object{{"type", "integer"}, {"minimum", 1}, {"default", defaultPageLimit}}),
		queryParam("offset", "", integer(0)),
		queryParam("page", "A page number (without limit and offset); the string \"last\" is the last page.", integer(1)),
		queryParam("page_size", "Rows per page, with page.", object{{"type", "integer"}, {"default", defaultPageLimit}}),
		queryParam("ordering", "Comma-separated fields; a leading '-' sorts descending.", object{{"type", "string"}}),
		queryParam("search", "Words that must each be contained (case-insensitively) in one of the text fields.", object{{"type", "string"}}),
	}
	for i := range res.Columns {
		c := &res.Columns[i]
		if c.Kind != modules.KindJSON {
			v := inputSchema(valueSchema(c), c)
			for _, lk := range []string{"", "__gt", "__gte", "__lt", "__lte"} {
				params = append(params, queryParam(c.Name+lk, "", v))
			}
			in := append(queryParam(c.Name+"__in", "Comma-separated values; the parameter may also be repeated, each adding to the list.",
				object{{"type", "array"}, {"items", v}}), member{"style", "form"}, member{"explode", false})
			params = append(params, in)
			if isText(c) {
				params = append(params, queryParam(c.Name+"__contains", "", object{{"type", "string"}}))
			}
		}
		params = append(params, queryParam(c.Name+"__isnull", "", object{{"type", "boolean"}}))
	}
	return params
}

func tenantParam() object {
	return object{{"name", "tenant"}, {"in", "path"}, {"required", true},
		{"description", "The tenant's slug."}, {"schema", object{{"type", "string"}, {"pattern", `^[a-z][a-z0-9-]{0,48}[a-z0-9]$`}}}}
}

func idParam() object {
	return object{{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", object{{"type", "integer"}, {"format", "int64"}}}}
}

func jsonBody(s object) object { return object{{"application/json", object{{"schema", s}}}} }

// requestBody is the content a write takes: JSON, or a form with the same fields.
func requestBody(s object) object {
	return object{{mediaJSON, object{{"schema", s}}}, {mediaForm, object{{"schema", s}}}, {mediaMultipart, object{{"schema", s}}}}
}

func errorResp(desc, schema string) object {
	return object{{"description", desc}, {"content", jsonBody(ref(schema))}}
}

// badRequest is a 400: DRF's field errors, or a detail (a body or Host that does not parse).
func badRequest(desc string) object {
	return object{{"description", desc}, {"content", jsonBody(object{{"anyOf", []object{ref("ValidationError"), ref("Detail")}}})}}
}

// respond is one success response plus the errors every tenant operation can answer.
func respond(code, desc string, content object) object {
	rs := object{{code, object{{"description", desc}, {"content", content}}}}
	if code == "204" {
		rs = object{{code, object{{"description", desc}}}}
	}
	return append(rs,
		member{"400", badRequest("Invalid input, or an invalid Host header")},
		member{"401", errorResp("No token, or an invalid one", "Detail")},
		member{"404", errorResp("Not found, or a token of another tenant", "Detail")},
		member{"429", errorResp("Throttled: the tenant is at its rate or concurrency limit, or its share of the server; "+
			"Retry-After says when to try again", "Detail")},
		member{"503", errorResp("The tenant is not ready, or is blocked; the database is busy or out of reach; "+
			"the request ran longer than the server's statement timeout", "Detail")},
	)
}

// writeErrors are the answers only a request with a body can get.
func writeErrors() []member {
	return []member{
		{"413", errorResp("The body is larger than the daemon's limit", "Detail")},
		{"415", errorResp("The body is neither JSON nor a form", "Detail")},
	}
}

// resourcePaths is a resource's two paths, the collection and one row, with their operations.
// A delete can conflict (409) only when another table refers to this one.
func resourcePaths(res *modules.Resource, referenced bool) object {
	name := schemaName(res)
	tag := []string{res.Module}
	op := func(id, summary string) object {
		return object{{"operationId", id}, {"summary", summary}, {"tags", tag}}
	}
	base := "/api/{tenant}/" + res.Module + "/" + res.Name + "/"
	opName := strings.ReplaceAll(res.Module+"_"+res.Table, "-", "_")
	one := singular(res.Table)
	list := append(op(opName+"_list", "List "+res.Name), member{"parameters", listParams(res)},
		member{"responses", respond("200", "A page of "+res.Name, jsonBody(ref("Paginated"+name+"List")))})
	create := append(op(opName+"_create", "Create a "+one),
		member{"requestBody", object{{"content", requestBody(ref(name + "Request"))}}},
		member{"responses", append(respond("201", "Created", jsonBody(ref(name))), writeErrors()...)})
	retrieve := append(op(opName+"_retrieve", "Get a "+one),
		member{"responses", respond("200", "The "+one, jsonBody(ref(name)))})
	update := append(op(opName+"_update", "Replace a "+one),
		member{"requestBody", object{{"content", requestBody(ref(name + "Request"))}}},
		member{"responses", append(respond("200", "Updated", jsonBody(ref(name))), writeErrors()...)})
	patch := append(op(opName+"_partial_update", "Update some fields of a "+one),
		member{"requestBody", object{{"content", requestBody(ref("Patched" + name + "Request"))}}},
		member{"responses", append(respond("200", "Updated", jsonBody(ref(name))), writeErrors()...)})
	delResp := respond("204", "Deleted", nil)
	if referenced {
		delResp = append(delResp, member{"409", errorResp("Other rows still refer to it", "Detail")})
	}
	del := append(op(opName+"_destroy", "Delete a "+one), member{"responses", delResp})
	return object{
		{base, object{{"parameters", []object{tenantParam()}}, {"get", list}, {"post", create}}},
		{base + "{id}/", object{{"parameters", []object{tenantParam(), idParam()}},
			{"get", retrieve}, {"put", update}, {"patch", patch}, {"delete", del}}},
	}
}
