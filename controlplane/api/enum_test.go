package api_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
)

const ordersModule = `schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = ["draft", "confirmed", "on hold"]
}
table "orders" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "status" {
    type    = enum.order_status
    default = "draft"
  }
  column "previous" {
    type = enum.order_status
    null = true
  }
}
`

func TestAPIEnumChoices(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("sales", ordersModule)
	const acme, globex = "/api/acme/sales/orders/", "/api/globex/sales/orders/"
	m := a.must(201, "POST", acme, "acme", `{"ref": "a1", "status": "on hold"}`)
	if m["status"] != "on hold" || m["previous"] != nil {
		t.Fatalf("create: %v", m)
	}
	m = a.must(201, "POST", acme, "acme", `{"ref": "a2", "previous": "confirmed"}`)
	if m["status"] != "draft" || m["previous"] != "confirmed" {
		t.Fatalf("create with the default: %v", m)
	}
	a.must(201, "POST", globex, "globex", `{"ref": "g1", "status": "confirmed"}`)
	for _, c := range []struct{ body, field, want string }{
		{`{"ref": "x", "status": "shipped"}`, "status", `"shipped" is not a valid choice.`},
		{`{"ref": "x", "status": "Draft"}`, "status", `"Draft" is not a valid choice.`},
		{`{"ref": "x", "status": 3}`, "status", `"3" is not a valid choice.`},
		{`{"ref": "x", "status": true}`, "status", `"True" is not a valid choice.`},
		{`{"ref": "x", "status": ""}`, "status", `"" is not a valid choice.`},
		{`{"ref": "x", "previous": "draft'); DROP TABLE orders; --"}`, "previous", `"draft'); DROP TABLE orders; --" is not a valid choice.`},
	} {
		r := a.do("POST", acme, "acme", c.body)
		if r.status != 400 {
			t.Fatalf("%s: %s, want 400", c.body, r)
		}
		jsonEqual(t, c.body, r.body, `{"`+c.field+`": [`+jsonString(c.want)+`]}`)
	}
	if r := a.do("PATCH", acme+"1/", "acme", `{"status": "gone"}`); r.status != 400 {
		t.Fatalf("PATCH with a bad choice: %s", r)
	}
	a.must(200, "PATCH", acme+"1/", "acme", `{"status": "confirmed"}`)
	for q, want := range map[string]float64{"status=confirmed": 1, "status__in=draft,confirmed": 2, "previous__isnull=true": 1, "ordering=-status&limit=1": 2} {
		if m := a.must(200, "GET", acme+"?"+q, "acme", ""); m["count"] != want {
			t.Errorf("%s: count %v, want %v", q, m["count"], want)
		}
	}
	if r := a.do("GET", acme+"?status=nope", "acme", ""); r.status != 400 {
		t.Errorf("filter on a bad choice: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM tenant_acme.orders`); n != 2 {
		t.Errorf("%d orders in acme, want 2", n)
	}
	if got := a.Strings(`SELECT ref || '=' || status FROM tenant_globex.orders`); !slices.Equal(got, []string{"g1=confirmed"}) {
		t.Errorf("globex orders: %v", got)
	}

	// OPTIONS and the OpenAPI document list the choices.
	r := a.do("OPTIONS", acme, "acme", "")
	f, _ := json.Marshal(r.obj(t)["actions"].(map[string]any)["POST"].(map[string]any)["status"])
	jsonEqual(t, "status field", f, `{"type": "choice", "required": false, "read_only": false, "label": "Status",
		"choices": [{"value": "draft", "display_name": "draft"}, {"value": "confirmed", "display_name": "confirmed"},
		{"value": "on hold", "display_name": "on hold"}]}`)
	var doc struct {
		Comp struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(a.do("GET", "/api/openapi.json", "", "").body, &doc); err != nil {
		t.Fatal(err)
	}
	st := doc.Comp.Schemas["SalesOrders"].Properties["status"]
	if st["type"] != "string" || !slices.Equal(st["enum"].([]any), []any{"draft", "confirmed", "on hold"}) {
		t.Errorf("openapi status: %v", st)
	}
	if prev := doc.Comp.Schemas["SalesOrders"].Properties["previous"]; prev["nullable"] != true || len(prev["enum"].([]any)) != 4 {
		t.Errorf("openapi previous (nullable, so null is among its values): %v", prev)
	}

	// A new value reaches the API once the tenant has it.
	a.deploy("sales", `schema "tenant" {}
enum "order_status" {
  schema = schema.tenant
  values = ["draft", "confirmed", "on hold", "shipped"]
}
table "orders" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "status" {
    type    = enum.order_status
    default = "draft"
  }
  column "previous" {
    type = enum.order_status
    null = true
  }
}
`)
	if _, err := a.P.ReconcileAll(a.Ctx, controlplane.ReconcileOptions{}); err != nil {
		t.Fatal(err)
	}
	a.must(201, "POST", globex, "globex", `{"ref": "g2", "status": "shipped"}`)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
