package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/internal/ident"
)

const notesV1 = `schema "tenant" {}
table "notes" {
  schema = schema.tenant
  column "body" {
    type = text
  }
}
`

// addTenant creates a tenant with a token the API env knows.
func (a *apiEnv) addTenant(slug string, mods ...string) {
	a.T.Helper()
	a.Create(slug, mods...)
	a.name[slug] = slug + "-bot"
	_, secret, err := a.P.CreateToken(a.Ctx, ident.MustParseSlug(slug), a.name[slug])
	if err != nil {
		a.T.Fatal(err)
	}
	a.tok[slug] = secret
}

func (a *apiEnv) generationOf(slug string) int64 {
	a.T.Helper()
	tn, err := a.P.GetTenant(a.Ctx, ident.MustParseSlug(slug))
	if err != nil || tn.Generation == nil {
		a.T.Fatalf("%s: %+v %v", slug, tn, err)
	}
	return *tn.Generation
}

// A rollout halted at its canary holds the other tenants at the generation they have: under API
// traffic they keep answering 200 at that generation, and a table dropped by hand in a held tenant
// is repaired as its own generation declares it, not moved to the halted one.
func TestAPIHoldsTenantsOfAHaltedRollout(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.deploy("notes", notesV1)
	slugs := []string{"acme", "globex", "initech", "hooli"}
	for _, s := range slugs[2:] {
		a.addTenant(s)
	}
	for _, s := range slugs {
		a.must(201, "POST", "/api/"+s+"/notes/notes/", s, fmt.Sprintf(`{"body": "%s's note"}`, s))
	}
	before := a.generationOf("hooli")
	// A change that fails on every tenant: a default that divides by zero on tables with rows.
	a.WriteModule("notes", strings.Replace(notesV1, "    type = text\n  }\n", "    type = text\n  }\n  column \"n\" {\n    type    = integer\n    default = sql(\"1 / 0\")\n  }\n", 1))
	pass, err := a.P.ReconcileAll(a.Ctx, controlplane.ReconcileOptions{Canary: 1, MaxFailures: 1})
	if err != nil || pass.Counts[controlplane.ActionFailed] != 1 || pass.Counts[controlplane.ActionHeld] != 3 {
		t.Fatalf("halting pass: %+v %v", pass.Counts, err)
	}
	// (Not checked against the OpenAPI document: it describes the latest generation, which the
	// held tenants do not have.)
	for range 3 {
		for _, s := range slugs {
			r := doWith(a.h, "GET", "/api/"+s+"/notes/notes/", a.auth(s), "")
			if r.status != 200 || !strings.Contains(string(r.body), `"count":1`) || !strings.Contains(string(r.body), s+"'s note") {
				t.Fatalf("%s's notes while held: %s", s, r)
			}
		}
	}
	held := ""
	for _, s := range slugs {
		if pass.Result(s).Action == controlplane.ActionHeld {
			held = s
		}
		if g := a.generationOf(s); g != before {
			t.Fatalf("%s moved from generation %d to %d under traffic", s, before, g)
		}
	}
	// Drift in a held tenant: the repair brings back its own generation's table.
	a.Exec(`DROP TABLE tenant_` + held + `.notes`)
	if r := doWith(a.h, "GET", "/api/"+held+"/notes/notes/", a.auth(held), ""); r.status != 200 || !strings.Contains(string(r.body), `"count":0`) {
		t.Fatalf("%s after the repair: %s", held, r)
	}
	if g := a.generationOf(held); g != before {
		t.Fatalf("the repair moved %s from generation %d to %d", held, before, g)
	}
	if cols := a.Columns("tenant_"+held, "notes"); strings.Contains(strings.Join(cols, ","), ",n,") || cols[len(cols)-1] == "n" {
		t.Fatalf("the repair applied the halted change: %v", cols)
	}
	for _, s := range slugs {
		if s != held && a.Count(`SELECT count(*) FROM tenant_`+s+`.notes`) != 1 {
			t.Fatalf("%s lost its note", s)
		}
	}
}

// A tenant whose repair is blocked by a data check on one table (a NOT NULL column dropped by
// hand from a table with rows) answers 503 with the data-check reason on that table's resource
// only: its other tables, and the other tenant, keep answering 200, so that its users can go on
// working and operators fix the rows.
func TestAPIBlockedTableDoesNotBlockTheTenant(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	for _, s := range []string{"acme", "globex"} {
		a.must(201, "POST", "/api/"+s+"/product/categories/", s, `{"name": "Tools"}`)
		a.must(201, "POST", "/api/"+s+"/product/products/", s, `{"sku": "A-1", "name": "Anvil"}`)
	}
	before := a.rowCounts()
	a.Exec(`ALTER TABLE tenant_acme.products DROP COLUMN sku`)

	r := a.do("GET", productsURL, "acme", "")
	d, _ := r.obj(t)["detail"].(string)
	if r.status != 503 || !strings.Contains(d, "data check") || !strings.Contains(d, "product/products") ||
		strings.Contains(d, "ALTER") || strings.Contains(d, "tenant_acme") || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("the blocked table: %s", r)
	}
	tn, err := a.P.GetTenant(a.Ctx, ident.MustParseSlug("acme"))
	if err != nil || tn.Status != controlplane.StatusBlocked || tn.Reason != controlplane.ReasonDataCheckFailed {
		t.Fatalf("acme after the repair: %+v %v", tn, err)
	}
	// Answered again from what the repair found, without another repair.
	repairs := a.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'acme'`)
	if r := a.do("GET", productsURL, "acme", ""); r.status != 503 {
		t.Fatalf("the blocked table again: %s", r)
	}
	if n := a.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'acme'`); n != repairs {
		t.Fatalf("a second request repaired again: %d events, then %d", repairs, n)
	}
	if got := a.must(200, "GET", "/api/acme/product/categories/", "acme", ""); fmt.Sprint(got["count"]) != "1" {
		t.Fatalf("acme's categories: %v", got)
	}
	a.must(201, "POST", "/api/acme/inventory/warehouses/", "acme", `{"code": "W1", "name": "Main"}`)
	if got := a.must(200, "GET", "/api/globex/product/products/", "globex", ""); fmt.Sprint(got["count"]) != "1" {
		t.Fatalf("globex's products: %v", got)
	}
	// Nothing was applied: acme's rows are as they were, globex's too.
	a.Exec(`DELETE FROM tenant_acme.warehouses`)
	if after := a.rowCounts(); after != before {
		t.Fatalf("rows: %s, then %s", before, after)
	}
}
