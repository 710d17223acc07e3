package controlplane_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// labelFleet makes six tenants with different labels and a row each.
func labelFleet(t *testing.T, e *cptest.Env) {
	t.Helper()
	for slug, set := range map[string]string{
		"acme":     "tier=free,region=eu,ring=canary",
		"globex":   "tier=free,region=us",
		"initech":  "tier=pro,region=eu",
		"hooli":    "tier=enterprise,region=eu,legacy=yes",
		"umbrella": "tier=pro",
		"wonka":    "",
	} {
		var l labels.Labels
		if set != "" {
			var err error
			if l, err = labels.ParseSet(strings.Split(set, ",")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(slug), Labels: l}); err != nil {
			t.Fatal(err)
		}
		e.Exec(`INSERT INTO tenant_` + slug + `.categories (name) VALUES ('` + slug + `-cat')`)
	}
}

func selected(t *testing.T, e *cptest.Env, sel string) string {
	t.Helper()
	s, err := labels.ParseSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := e.P.ListTenantsSelected(e.Ctx, s)
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	var out []string
	for _, tn := range ts {
		// What the catalog's SQL selected, the selector itself selects too.
		if !s.Matches(tn.Labels) {
			t.Fatalf("%q selected %s with labels %v", sel, tn.Slug, tn.Labels)
		}
		out = append(out, tn.Slug)
	}
	return strings.Join(out, ",")
}

// Selectors of every operator over six tenants, in the catalog's SQL as in Kubernetes' matcher;
// a reconcile and a plan of the selected tenants touch only those.
func TestSelectorsSelectTenants(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	labelFleet(t, e)
	for sel, want := range map[string]string{
		"tier=free":                   "acme,globex",
		"tier==free":                  "acme,globex",
		"tier!=free":                  "hooli,initech,umbrella,wonka",
		"tier in (pro,enterprise)":    "hooli,initech,umbrella",
		"tier notin (pro,enterprise)": "acme,globex,wonka",
		"ring":                        "acme",
		"!region":                     "umbrella,wonka",
		"tier=free,region in (eu)":    "acme",
		"region=eu,!legacy":           "acme,initech",
		"tier=nobody":                 "",
	} {
		if got := selected(t, e, sel); got != want {
			t.Errorf("%q selected %q, want %q", sel, got, want)
		}
	}
	e.WriteModule("crm", crmModule(""))
	sel, _ := labels.ParseSelector("region=eu")
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if got := actionsOf(pass, controlplane.ActionApplied); strings.Join(got, ",") != "acme,hooli,initech" || len(pass.Results) != 3 {
		t.Fatalf("reconcile -l region=eu: %+v", pass.Results)
	}
	for _, s := range []string{"globex", "umbrella", "wonka"} {
		if slices.Contains(e.Tables("tenant_"+s), "contacts") {
			t.Fatalf("%s, not selected, got the module", s)
		}
	}
}

// Labels are set, changed only with overwrite, removed, refused when bad (with nothing changed),
// and kept through export and import, clone (unless told otherwise), archive and restore.
func TestLabelsLifecycle(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	labelFleet(t, e)
	acme, globex := ident.MustParseSlug("acme"), ident.MustParseSlug("globex")
	edit := func(args ...string) []labels.Edit {
		t.Helper()
		ed, err := labels.ParseEdits(args)
		if err != nil {
			t.Fatal(err)
		}
		return ed
	}
	tn, err := e.P.LabelTenant(e.Ctx, acme, edit("team=billing", "ring-"), false)
	if err != nil || tn.Labels.String() != "region=eu,team=billing,tier=free" {
		t.Fatalf("label acme: %+v %v", tn, err)
	}
	if _, err := e.P.LabelTenant(e.Ctx, acme, edit("tier=pro", "x=y"), false); !errors.Is(err, controlplane.ErrInvalid) || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("change without overwrite: %v", err)
	}
	if tn, _ := e.P.GetTenant(e.Ctx, acme); tn.Labels.String() != "region=eu,team=billing,tier=free" {
		t.Fatalf("a refused edit changed labels: %v", tn.Labels)
	}
	if tn, err = e.P.LabelTenant(e.Ctx, acme, edit("tier=pro"), true); err != nil || tn.Labels["tier"] != "pro" {
		t.Fatalf("overwrite: %+v %v", tn, err)
	}
	if g, _ := e.P.GetTenant(e.Ctx, globex); g.Labels.String() != "region=us,tier=free" {
		t.Fatalf("globex's labels changed with acme's: %v", g.Labels)
	}
	if _, err := e.P.LabelTenant(e.Ctx, ident.MustParseSlug("nobody"), edit("a=b"), false); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("label a missing tenant: %v", err)
	}
	if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("badlabels"), Labels: labels.Labels{"Bad Key": "x"}}); !errors.Is(err, controlplane.ErrInvalid) {
		t.Fatalf("create with a bad label: %v", err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants WHERE slug = 'badlabels'`); n != 0 {
		t.Fatal("a refused create left a tenant")
	}
	evs, err := e.P.TenantEvents(e.Ctx, acme, 1)
	if err != nil || len(evs) != 1 || evs[0].Kind != "label" || !strings.Contains(*evs[0].Reason, "tier=pro") {
		t.Fatalf("acme's label event: %+v %v", evs, err)
	}

	// Export and import.
	var buf bytes.Buffer
	if _, err := e.P.ExportTenant(e.Ctx, acme, &buf, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := e.P.ImportTenant(e.Ctx, ident.MustParseSlug("acme2"), &buf, "", nil)
	if err != nil || rep.Tenant.Labels.String() != "region=eu,team=billing,tier=pro" {
		t.Fatalf("import: %+v %v", rep, err)
	}
	// Clone: the template's labels, with the clone's own on top; or only its own.
	c, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("globex2"), Labels: labels.Labels{"ring": "canary"}}, globex)
	if err != nil || c.Labels.String() != "region=us,ring=canary,tier=free" {
		t.Fatalf("clone: %+v %v", c, err)
	}
	c, _, err = e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("globex3"), NoTemplateLabels: true}, globex)
	if err != nil || len(c.Labels) != 0 {
		t.Fatalf("clone without the template's labels: %+v %v", c, err)
	}
	// Archive and restore.
	if _, err := e.P.ArchiveTenant(e.Ctx, globex); err != nil {
		t.Fatal(err)
	}
	if got := selected(t, e, "region=us"); got != "globex2" {
		t.Fatalf("an archived tenant is selected: %s", got)
	}
	if _, err := e.P.RestoreTenant(e.Ctx, globex); err != nil {
		t.Fatal(err)
	}
	if g, err := e.P.GetTenant(e.Ctx, globex); err != nil || g.Labels.String() != "region=us,tier=free" {
		t.Fatalf("globex after restore: %+v %v", g, err)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme2.categories WHERE name = 'acme-cat'`); n != 1 {
		t.Fatal("the import lost acme's row")
	}
}
