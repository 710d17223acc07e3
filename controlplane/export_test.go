package controlplane_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

func export(t *testing.T, e *cptest.Env, slug string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := e.P.ExportTenant(e.Ctx, ident.MustParseSlug(slug), &buf, nil); err != nil {
		t.Fatalf("export %s: %v", slug, err)
	}
	return buf.Bytes()
}

func importFile(e *cptest.Env, slug string, file []byte) (*controlplane.ImportReport, error) {
	return e.P.ImportTenant(e.Ctx, ident.MustParseSlug(slug), bytes.NewReader(file), "", nil)
}

// Export and import on two tenants: the file holds acme's rows and none of globex's, the
// import is row for row the same, takes inserts afterwards, and leaves both originals alone.
func TestExportImportRoundTripTwoTenants(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Fill("tenant_acme", "acme", 30)
	e.Fill("tenant_globex", "globex", 10)
	// One row larger than any frame of the file: it spans several.
	e.Exec(`UPDATE tenant_acme.categories SET description = repeat('big ✓', 1500000) WHERE name = 'acme-tools'`)
	acme, globex := e.Checksums("tenant_acme"), e.Checksums("tenant_globex")

	file := export(t, e, "acme")
	if bytes.Contains(file, []byte("globex")) || bytes.Contains(file, []byte("tenant_acme")) || !bytes.Contains(file, []byte("acme-tools")) {
		t.Fatal("the export of acme holds globex's rows or acme's schema name, or lacks acme's rows")
	}
	rep, err := importFile(e, "acme-copy", file)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tenant.Status != controlplane.StatusReady || len(rep.Notes) != 0 || len(rep.Tables) != 4 {
		t.Fatalf("import: %+v %+v", rep.Tenant, rep)
	}
	if got := e.Checksums("tenant_acme_copy"); got != acme {
		t.Fatalf("imported rows differ:\n%s\nwant\n%s", got, acme)
	}
	// Identities are past the loaded ids: inserts work in every table.
	e.Exec(`INSERT INTO tenant_acme_copy.categories (name) VALUES ('new')`)
	e.Exec(`INSERT INTO tenant_acme_copy.products (sku, name) VALUES ('new', 'new')`)
	e.Exec(`INSERT INTO tenant_acme_copy.warehouses (code, name) VALUES ('new', 'new')`)
	e.Exec(`INSERT INTO tenant_acme_copy.stock_items (product_id, warehouse_id) SELECT max(p.id), max(w.id)
		FROM tenant_acme_copy.products p, tenant_acme_copy.warehouses w`)
	if e.Checksums("tenant_acme") != acme || e.Checksums("tenant_globex") != globex {
		t.Fatal("export or import changed acme or globex")
	}
	e.DebugHealthy("acme-copy")
	// The foreign keys and indexes set aside for the load came back as they were: the fast
	// path knows the tenant (nothing applied), and a bad row is still refused.
	fp, err := schema.Fingerprint(e.Ctx, e.DB, "tenant_acme_copy")
	if err != nil {
		t.Fatal(err)
	}
	if recorded := e.Strings(`SELECT fingerprint FROM erpctl.tenants WHERE slug = 'acme-copy'`); len(recorded) != 1 || recorded[0] != fp {
		t.Fatalf("fingerprint after import %s, recorded %v", fp, recorded)
	}
	if pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{}); err != nil || pass.Counts[controlplane.ActionApplied] != 0 || pass.Failed() {
		t.Fatalf("pass after import: %+v %v", pass, err)
	}
	if _, err := e.DB.ExecContext(e.Ctx, `INSERT INTO tenant_acme_copy.stock_items (product_id, warehouse_id) VALUES (999999, 1)`); err == nil {
		t.Fatal("the imported tenant takes a stock item of no product")
	}
	if _, err := e.DB.ExecContext(e.Ctx, `INSERT INTO tenant_acme_copy.categories (name) VALUES ('acme-tools')`); err == nil {
		t.Fatal("the imported tenant takes a duplicate category name")
	}
	// The name came with the file; the module set too.
	if rep.Tenant.Name != "acme" || strings.Join(rep.Tenant.Modules, ",") != "product,inventory" {
		t.Fatalf("imported tenant: %+v", rep.Tenant)
	}
}

// frame builds one frame of the export format, for files made by hand.
func frame(kind byte, payload string) []byte {
	b := []byte{kind, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// A truncated file, an altered one, a later format version, a module not loaded here and an
// existing slug: each is refused as bad input, and nothing is written.
func TestImportRefusesBadFilesAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Fill("tenant_acme", "acme", 30)
	e.Fill("tenant_globex", "globex", 10)
	file := export(t, e, "acme")
	before := e.Checksums("tenant_globex")
	tenants := e.Count(`SELECT count(*) FROM erpctl.tenants`)

	altered := bytes.Clone(file)
	i := bytes.Index(altered, []byte("acme-east"))
	altered[i] = 'X'
	cases := []struct {
		name, slug string
		file       []byte
		want       string
	}{
		{"truncated", "initech", file[:len(file)*2/3], "ends early"},
		{"truncated at the end", "initech", file[:len(file)-3], "ends early"},
		{"altered", "initech", altered, "do not match their checksum"},
		{"not an export", "initech", []byte("PGDMP\x01\x0e"), "does not start as an erpctl export file"},
		{"later version", "initech", append([]byte("ERPCTL-EXPORT\n"), frame('H', `{"format":"erpctl-export","version":2}`)...), "version 2"},
		{"unknown module", "initech", append([]byte("ERPCTL-EXPORT\n"), frame('H', `{"format":"erpctl-export","version":1,"modules":["payroll"]}`)...), `module "payroll", which the latest module generation (1) does not have`},
		{"existing slug", "globex", file, "already exists"},
		{"archived slug", "acme-old", file, "archive"},
	}
	if _, err := e.P.ArchiveTenant(e.Ctx, ident.MustParseSlug("acme")); err != nil {
		t.Fatal(err)
	}
	tenants--
	if _, err := importFile(e, "acme-old", export(t, e, "globex")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.ArchiveTenant(e.Ctx, ident.MustParseSlug("acme-old")); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := importFile(e, c.slug, c.file)
		if err == nil || !errors.Is(err, controlplane.ErrInvalid) && !errors.Is(err, controlplane.ErrExists) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want bad input saying %q", c.name, err, c.want)
		}
	}
	if n := e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_initech'`); n != 0 {
		t.Fatal("a refused import left a schema")
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants`); n != tenants {
		t.Fatalf("%d tenants after refused imports, want %d", n, tenants)
	}
	if e.Checksums("tenant_globex") != before {
		t.Fatal("a refused import changed globex")
	}
}

// An export taken while another session writes to two tables in one transaction at a time
// sees both writes or neither: the file comes from one snapshot.
func TestExportUnderConcurrentWritesIsConsistent(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.products (sku, name) VALUES ('P', 'P')`)
	// Many warehouses make the copy between the two tables long enough for writes to land.
	e.Exec(`INSERT INTO tenant_acme.warehouses (code, name) SELECT 'w'||g, 'bulk' FROM generate_series(1, 100000) g`)
	ctx, cancel := context.WithCancel(e.Ctx)
	var wg sync.WaitGroup
	started, failed := make(chan struct{}), make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, err := e.DB.ExecContext(ctx, `WITH w AS (INSERT INTO tenant_acme.warehouses (code, name) VALUES ('c' || $1::text, 'concurrent') RETURNING id)
				INSERT INTO tenant_acme.stock_items (product_id, warehouse_id, quantity) SELECT (SELECT id FROM tenant_acme.products), id, 7 FROM w`,
				strconv.Itoa(i))
			if err != nil {
				if ctx.Err() == nil {
					failed <- err
				}
				return
			}
			if i == 0 {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case err := <-failed:
		t.Fatal(err)
	}
	file := export(t, e, "acme")
	cancel()
	wg.Wait()
	if _, err := importFile(e, "snap", file); err != nil {
		t.Fatal(err)
	}
	w := e.Count(`SELECT count(*) FROM tenant_snap.warehouses WHERE name = 'concurrent'`)
	s := e.Count(`SELECT count(*) FROM tenant_snap.stock_items WHERE quantity = 7`)
	if w != s || w == 0 {
		t.Fatalf("the export holds %d concurrent warehouses and %d of their stock items", w, s)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.warehouses`); n != 0 {
		t.Fatal("globex got rows")
	}
}

// A file from an older desired state: a column dropped since is left out and a column added
// with a default takes it, each reported; a NOT NULL column without a default is refused, and
// nothing is written.
func TestImportAcrossModuleChanges(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	crm := `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "name" {
    type = text
  }
  column "phone" {
    type = text
    null = true
  }
  column "score" {
    type = integer
    null = true
  }
}`
	e.WriteModule("crm", crm)
	e.Create("acme", "crm")
	e.Create("globex", "crm")
	e.Exec(`INSERT INTO tenant_acme.contacts (name, phone, score) VALUES ('Ann', '555', 7), ('Bob', NULL, NULL)`)
	e.Exec(`INSERT INTO tenant_globex.contacts (name) VALUES ('Gus')`)
	file := export(t, e, "acme")

	// phone dropped, score widened to bigint, email added with a default.
	e.WriteModule("crm", strings.Replace(strings.Replace(crm, `  column "phone" {
    type = text
    null = true
  }`, `  column "email" {
    type    = text
    default = "unknown"
  }`, 1), "type = integer", "type = bigint", 1))
	rep, err := importFile(e, "acme2", file)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, want := range []string{"contacts.phone is in the file but not in the desired state here", "contacts.email is not in the file: it takes its default",
		"contacts.score is integer in the file and bigint here", "module crm differs"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if got := strings.Join(e.Strings(`SELECT name||'/'||email||'/'||coalesce(score::text, '-') FROM tenant_acme2.contacts ORDER BY id`), ","); got != "Ann/unknown/7,Bob/unknown/-" {
		t.Fatalf("imported contacts: %s", got)
	}

	// A NOT NULL column without a default cannot be filled from the file.
	e.WriteModule("crm", strings.Replace(crm, `  column "score" {`, `  column "code" {
    type = text
  }
  column "score" {`, 1))
	n := e.Count(`SELECT count(*) FROM erpctl.tenants`)
	if _, err := importFile(e, "acme3", file); !errors.Is(err, controlplane.ErrInvalid) || !strings.Contains(err.Error(), "contacts.code is NOT NULL without a default") {
		t.Fatalf("import into an incompatible desired state: %v", err)
	}
	if m := e.Count(`SELECT count(*) FROM erpctl.tenants`); m != n || e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_acme3'`) != 0 {
		t.Fatal("a refused import left something behind")
	}
	if e.Count(`SELECT count(*) FROM tenant_globex.contacts`) != 1 {
		t.Fatal("globex changed")
	}
}
