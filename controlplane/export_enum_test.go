package controlplane_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

const crmEnum = `schema "tenant" {}
enum "lead_status" {
  schema = schema.tenant
  values = ["new", "won"]
}
table "leads" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "status" {
    type    = enum.lead_status
    default = "new"
  }
}
`

// A column of the tenant's own enum type exports without the tenant's schema name and imports
// into another tenant's own type with no conversion to report; the source keeps its rows.
func TestExportImportOwnEnumType(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmEnum)
	e.Create("acme", "crm")
	e.Create("globex", "crm")
	e.Exec(`INSERT INTO tenant_acme.leads (email, status) VALUES ('a@x', 'won'), ('b@x', 'new')`)
	var file bytes.Buffer
	if _, err := e.P.ExportTenant(e.Ctx, ident.MustParseSlug("acme"), &file, nil); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file.Bytes(), []byte("tenant_acme")) {
		t.Fatal("the export file names the tenant's schema")
	}
	rep, err := e.P.ImportTenant(e.Ctx, ident.MustParseSlug("initech"), bytes.NewReader(file.Bytes()), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Notes) != 0 {
		t.Fatalf("import notes for the same enum: %v", rep.Notes)
	}
	got := e.Strings(`SELECT email || ' ' || status FROM tenant_initech.leads ORDER BY email`)
	if !slices.Equal(got, []string{"a@x won", "b@x new"}) {
		t.Fatalf("imported rows: %v", got)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.leads`) + e.Count(`SELECT count(*) FROM tenant_acme.leads`); n != 2 {
		t.Fatalf("rows elsewhere: %d", n)
	}
	if typ := e.Strings(`SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tenant_initech.leads'::regclass AND attname = 'status'`); !strings.Contains(strings.Join(typ, ""), "tenant_initech.lead_status") {
		t.Fatalf("initech's column type: %v", typ)
	}
}

// A clone of a tenant whose module has an enum copies the enum column into the clone's own type
// (an enum of one schema has no cast to another's), both when the template is empty and when it
// has rows; neither the template nor the other tenant changes.
func TestCloneOwnEnumType(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmEnum)
	e.Create("tpl", "crm")
	e.Create("acme", "crm")
	e.Exec(`INSERT INTO tenant_acme.leads (email, status) VALUES ('a@x', 'won'), ('b@x', 'new')`)
	e.Exec(`INSERT INTO tenant_tpl.leads (email, status) VALUES ('t@x', 'new')`)
	acme, tpl := e.Checksums("tenant_acme"), e.Checksums("tenant_tpl")

	if _, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("empty")}, ident.MustParseSlug("tpl")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.P.CloneTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("initech")}, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	if got := e.Strings(`SELECT email || ' ' || status FROM tenant_initech.leads ORDER BY email`); !slices.Equal(got, []string{"a@x won", "b@x new"}) {
		t.Fatalf("cloned rows: %v", got)
	}
	if got := e.Strings(`SELECT email || ' ' || status FROM tenant_empty.leads`); !slices.Equal(got, []string{"t@x new"}) {
		t.Fatalf("rows of the clone of tpl: %v", got)
	}
	if typ := e.Strings(`SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'tenant_initech.leads'::regclass AND attname = 'status'`); !slices.Equal(typ, []string{"tenant_initech.lead_status"}) {
		t.Fatalf("initech's column type: %v", typ)
	}
	if e.Checksums("tenant_acme") != acme || e.Checksums("tenant_tpl") != tpl {
		t.Fatal("the clone changed its template or another tenant")
	}
	e.DebugHealthy("initech")
}
