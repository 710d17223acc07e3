package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
)

const countsModule = `schema "tenant" {}

table "counts" {
  schema = schema.tenant
  column "qty" {
    type = %s
    null = true
  }
}
`

// After a converting type change (qty from text to integer, applied with --allow-destructive),
// the first requests on each tenant met statements their connections had prepared for the old
// column type: PostgreSQL refuses them ("cached plan must not change result type", 0A000), which
// answered 500. Every request must get its rows, in the data API's own mode and with pgx's
// prepared statements (a URL's default_query_exec_mode=cache_statement), on two connections that
// both hold the old statements.
func TestConvertingTypeChangeMeetsNoStalePlan(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "cache_statement"} {
		t.Run("mode "+mode, func(t *testing.T) {
			t.Parallel()
			params := []string{"pool_max_conns=2"}
			if mode != "" {
				params = append(params, "default_query_exec_mode="+mode)
			}
			e := cptest.NewWith(t, controlplane.Config{}, params...)
			e.WriteModule("counts", fmt.Sprintf(countsModule, "text"))
			a := newAPIEnvOn(t, e, api.Config{})
			ids := map[string]string{}
			for _, slug := range []string{"acme", "globex"} {
				id := a.must(201, "POST", "/api/"+slug+"/counts/counts/", slug, `{"qty": "5"}`)["id"]
				ids[slug] = fmt.Sprint(id)
				// Enough requests at once that both connections prepare both statements.
				for range 4 {
					done := make(chan apiResp, 2)
					go func() { done <- a.do("GET", "/api/"+slug+"/counts/counts/", slug, "") }()
					go func() { done <- a.do("GET", "/api/"+slug+"/counts/counts/"+ids[slug]+"/", slug, "") }()
					for range 2 {
						if r := <-done; r.status != 200 {
							t.Fatalf("before the change: %s", r)
						}
					}
				}
			}
			e.WriteModule("counts", fmt.Sprintf(countsModule, "integer"))
			pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{AllowDestructive: true})
			if err != nil || pass.Counts[controlplane.ActionApplied] != 2 {
				t.Fatalf("the type change: %+v %v", pass, err)
			}
			for _, slug := range []string{"acme", "globex"} {
				for range 3 {
					r := a.do("GET", "/api/"+slug+"/counts/counts/"+ids[slug]+"/", slug, "")
					if r.status != 200 || !strings.Contains(string(r.body), `"qty":5`) {
						t.Fatalf("%s's row after the change: %s", slug, r)
					}
					r = a.do("GET", "/api/"+slug+"/counts/counts/", slug, "")
					if r.status != 200 || !strings.Contains(string(r.body), `"qty":5`) || strings.Count(string(r.body), `"qty"`) != 1 {
						t.Fatalf("%s's list after the change: %s", slug, r)
					}
				}
			}
		})
	}
}
