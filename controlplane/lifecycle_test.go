package controlplane_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// Delete archives: the schema leaves the tenant namespace with its rows, the tenant leaves the
// catalog and the reconciler, the slug stays reserved, and restore brings back rows and tokens.
func TestArchiveRestorePurgeTwoTenants(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Fill("tenant_acme", "acme", 30)
	e.Fill("tenant_globex", "globex", 10)
	acme, globex := e.Checksums("tenant_acme"), e.Checksums("tenant_globex")
	acmeSlug := ident.MustParseSlug("acme")
	if _, _, err := e.P.CreateToken(e.Ctx, acmeSlug, "bot"); err != nil {
		t.Fatal(err)
	}
	_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("globex"), "bot")
	if err != nil {
		t.Fatal(err)
	}

	a, err := e.P.ArchiveTenant(e.Ctx, acmeSlug)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Schema, "erpctl_arch_") || a.Tokens != 1 || a.Slug != "acme" {
		t.Fatalf("archive: %+v", a)
	}
	if n := e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_acme'`); n != 0 {
		t.Fatal("tenant_acme is still there")
	}
	if got := e.Checksums(a.Schema); got != acme {
		t.Fatalf("archived rows differ:\n%s\nwant\n%s", got, acme)
	}
	if _, err := e.P.GetTenant(e.Ctx, acmeSlug); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("archived tenant still found: %v", err)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens WHERE tenant = 'acme'`); n != 0 {
		t.Fatal("acme's tokens still valid")
	}
	if _, ok, _ := e.P.LookupToken(e.Ctx, controlplane.HashToken(secret)); !ok {
		t.Fatal("globex's token stopped working")
	}
	// The reconciler does not see the archive.
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{})
	if err != nil || len(pass.Results) != 1 || pass.Failed() {
		t.Fatalf("pass after archive: %+v %v", pass, err)
	}
	// The slug stays reserved; a second delete finds nothing.
	if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: acmeSlug}); !errors.Is(err, controlplane.ErrExists) ||
		!strings.Contains(err.Error(), "tenant restore acme") {
		t.Fatalf("create over an archive: %v", err)
	}
	if err := e.P.DeleteTenant(e.Ctx, acmeSlug); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	list, err := e.P.ListArchives(e.Ctx)
	if err != nil || len(list) != 1 || list[0].Slug != "acme" {
		t.Fatalf("archives: %+v %v", list, err)
	}

	tn, err := e.P.RestoreTenant(e.Ctx, acmeSlug)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != controlplane.StatusReady || tn.Schema != "tenant_acme" {
		t.Fatalf("restored: %+v", tn)
	}
	if got := e.Checksums("tenant_acme"); got != acme {
		t.Fatalf("restored rows differ:\n%s\nwant\n%s", got, acme)
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.tokens WHERE tenant = 'acme'`); n != 1 {
		t.Fatal("acme's token did not come back")
	}
	if _, err := e.P.RestoreTenant(e.Ctx, acmeSlug); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("second restore: %v", err)
	}
	e.DebugHealthy("acme")

	// Purge drops only the archive it names; the slug is free again.
	a, err = e.P.ArchiveTenant(e.Ctx, acmeSlug)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.PurgeTenant(e.Ctx, ident.MustParseSlug("globex")); !errors.Is(err, controlplane.ErrNotFound) {
		t.Fatalf("purge of a live tenant: %v", err)
	}
	if got := e.Checksums("tenant_globex"); got != globex {
		t.Fatal("globex changed")
	}
	if gone, err := e.P.PurgeArchivedBefore(e.Ctx, time.Now().Add(-time.Hour)); err != nil || len(gone) != 0 {
		t.Fatalf("purge of archives older than an hour: %+v %v", gone, err)
	}
	gone, err := e.P.PurgeArchivedBefore(e.Ctx, time.Now().Add(time.Minute))
	if err != nil || len(gone) != 1 || gone[0].Slug != "acme" {
		t.Fatalf("purge: %+v %v", gone, err)
	}
	if n := e.Count(`SELECT count(*) FROM pg_namespace WHERE nspname = $1`, a.Schema); n != 0 {
		t.Fatal("archive schema still there after purge")
	}
	e.Create("acme")
	if got := e.Checksums("tenant_globex"); got != globex {
		t.Fatal("globex changed")
	}
	e.DebugHealthy("globex")
}
