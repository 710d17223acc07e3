package controlplane_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/labels"
)

// slugsOf lists the slugs of a page.
func slugsOf(p *controlplane.TenantPage) []string {
	var out []string
	for _, t := range p.Results {
		out = append(out, t.Slug)
	}
	return out
}

func TestTenantPages(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	// Seven tenants; names sort in another order than slugs.
	names := map[string]string{"acme": "Zeta", "bravo": "Yak", "charlie": "Xray", "delta": "Whisky", "echo": "Victor", "foxtrot": "Uniform", "golf": "Tango"}
	for _, s := range []string{"acme", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"} {
		e.Create(s, "product")
		e.Exec(`UPDATE erpctl.tenants SET name = $2 WHERE slug = $1`, s, names[s])
	}
	e.Exec(`UPDATE erpctl.tenants SET status = 'Failed', generation = NULL WHERE slug IN ('bravo', 'echo')`)
	page := func(q controlplane.TenantQuery) *controlplane.TenantPage {
		t.Helper()
		p, err := e.P.TenantPage(e.Ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		return p
	}

	// Forward through every page of 3 by slug, then back.
	p1 := page(controlplane.TenantQuery{Limit: 3})
	if got := slugsOf(p1); !slices.Equal(got, []string{"acme", "bravo", "charlie"}) || p1.Count != 7 || p1.Previous != "" || p1.Next == "" {
		t.Fatalf("page 1: %v count %d prev %q next %q", got, p1.Count, p1.Previous, p1.Next)
	}
	p2 := page(controlplane.TenantQuery{Limit: 3, After: p1.Next})
	p3 := page(controlplane.TenantQuery{Limit: 3, After: p2.Next})
	if got := slugsOf(p2); !slices.Equal(got, []string{"delta", "echo", "foxtrot"}) || p2.Previous == "" {
		t.Fatalf("page 2: %v prev %q", got, p2.Previous)
	}
	if got := slugsOf(p3); !slices.Equal(got, []string{"golf"}) || p3.Next != "" || p3.Previous == "" {
		t.Fatalf("page 3: %v next %q prev %q", got, p3.Next, p3.Previous)
	}
	back := page(controlplane.TenantQuery{Limit: 3, Before: p3.Previous})
	if got := slugsOf(back); !slices.Equal(got, slugsOf(p2)) || back.Next == "" || back.Previous == "" {
		t.Fatalf("back from page 3: %v next %q prev %q", got, back.Next, back.Previous)
	}
	first := page(controlplane.TenantQuery{Limit: 3, Before: back.Previous})
	if got := slugsOf(first); !slices.Equal(got, slugsOf(p1)) || first.Previous != "" {
		t.Fatalf("back to page 1: %v prev %q", got, first.Previous)
	}

	// Sorted by name, descending, in pages of 4.
	n1 := page(controlplane.TenantQuery{Sort: "name", Desc: true, Limit: 4})
	n2 := page(controlplane.TenantQuery{Sort: "name", Desc: true, Limit: 4, After: n1.Next})
	if got := append(slugsOf(n1), slugsOf(n2)...); !slices.Equal(got, []string{"acme", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}) {
		t.Fatalf("by name descending: %v", got)
	}
	// By generation: the two at none first, then the rest by slug; a cursor across the change.
	g1 := page(controlplane.TenantQuery{Sort: "generation", Limit: 3})
	g2 := page(controlplane.TenantQuery{Sort: "generation", Limit: 3, After: g1.Next})
	if got := append(slugsOf(g1), slugsOf(g2)...); !slices.Equal(got, []string{"bravo", "echo", "acme", "charlie", "delta", "foxtrot"}) {
		t.Fatalf("by generation: %v", got)
	}
	for _, s := range []string{"status", "created_at"} {
		if got := page(controlplane.TenantQuery{Sort: s}); got.Count != 7 || len(got.Results) != 7 {
			t.Fatalf("sort by %s: %d of %d", s, len(got.Results), got.Count)
		}
	}

	// Filters: exactly the matching tenants, and their count.
	failed := page(controlplane.TenantQuery{Status: controlplane.StatusFailed})
	if got := slugsOf(failed); !slices.Equal(got, []string{"bravo", "echo"}) || failed.Count != 2 {
		t.Fatalf("failed: %v (%d)", got, failed.Count)
	}
	none := int64(0)
	if got := slugsOf(page(controlplane.TenantQuery{Generation: &none})); !slices.Equal(got, []string{"bravo", "echo"}) {
		t.Fatalf("at no generation: %v", got)
	}
	one := int64(1)
	if got := page(controlplane.TenantQuery{Generation: &one, Status: controlplane.StatusReady}); got.Count != 5 {
		t.Fatalf("ready at generation 1: %d", got.Count)
	}
	if got := slugsOf(page(controlplane.TenantQuery{Name: "uNI"})); !slices.Equal(got, []string{"foxtrot"}) {
		t.Fatalf("name uNI: %v", got)
	}
	if got := slugsOf(page(controlplane.TenantQuery{Name: "ch"})); !slices.Equal(got, []string{"charlie"}) {
		t.Fatalf("name ch: %v", got)
	}
	if got := slugsOf(page(controlplane.TenantQuery{Name: "ha"})); len(got) != 0 {
		t.Fatalf("name ha (not a prefix): %v", got)
	}
	// A label selector, with the other filters.
	e.Exec(`UPDATE erpctl.tenants SET labels = '{"tier": "free"}' WHERE slug IN ('acme', 'bravo', 'delta')`)
	sel, err := labels.ParseSelector("tier=free")
	if err != nil {
		t.Fatal(err)
	}
	if got := slugsOf(page(controlplane.TenantQuery{Selector: sel, Status: controlplane.StatusReady, Limit: 1})); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("tier=free, Ready, 1: %v", got)
	}
	if got := page(controlplane.TenantQuery{Selector: sel, Status: controlplane.StatusReady, Name: "W"}); got.Count != 1 || got.Results[0].Slug != "delta" {
		t.Fatalf("tier=free, Ready, a: %v", slugsOf(got))
	}
	// LIKE's wildcards are text here.
	if got := page(controlplane.TenantQuery{Name: "%"}); got.Count != 0 {
		t.Fatalf("name %%: %v", slugsOf(got))
	}

	// Bad input is refused with a clear error.
	if _, err := e.P.TenantPage(e.Ctx, controlplane.TenantQuery{Sort: "slug; drop table x"}); !errors.Is(err, controlplane.ErrInvalid) {
		t.Fatalf("bad sort: %v", err)
	}
	for _, c := range []string{"nope", "e30", p1.Next + "x"} {
		if _, err := e.P.TenantPage(e.Ctx, controlplane.TenantQuery{After: c}); !errors.Is(err, controlplane.ErrBadCursor) {
			t.Fatalf("cursor %q: %v", c, err)
		}
	}
}

func TestFleetSummary(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	for _, s := range []string{"acme", "bravo", "charlie"} {
		e.Create(s, "product")
	}
	e.Exec(`UPDATE erpctl.tenants SET status = 'Failed', status_reason = 'ApplyFailed' WHERE slug = 'bravo'`)
	e.Exec(`UPDATE erpctl.tenants SET status_reason = 'RolloutHalted' WHERE slug = 'charlie'`)
	e.Exec(`INSERT INTO erpctl.events (tenant, kind, outcome, error) VALUES ('bravo', 'apply', 'failed', 'boom')`)
	e.Exec(`INSERT INTO erpctl.events (tenant, kind, outcome, error, at) VALUES ('bravo', 'apply', 'failed', 'old', now() - interval '2 hours')`)
	e.Exec(`INSERT INTO erpctl.events (tenant, kind, outcome, reason) VALUES ('acme', 'repair', 'applied', 'DDL by hand')`)
	s, err := e.P.FleetSummary(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Tenants != 3 || s.ByStatus["Ready"] != 2 || s.ByStatus["Failed"] != 1 || s.ByStatus["Blocked"] != 0 || s.Held != 1 {
		t.Fatalf("counts: %+v", s)
	}
	if len(s.ByGeneration) != 1 || s.ByGeneration[0] != (controlplane.GenerationCount{Generation: 1, Tenants: 3}) || s.LatestGeneration != 1 {
		t.Fatalf("by generation: %+v latest %d", s.ByGeneration, s.LatestGeneration)
	}
	if s.FailureCount != 1 || len(s.Failures) != 1 || *s.Failures[0].Error != "boom" || s.RepairCount != 1 || s.Repairs[0].Tenant != "acme" {
		t.Fatalf("the last hour: %+v", s)
	}
}
