package controlplane_test

import (
	"slices"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
)

// The daemon's full passes reuse the fleet's fingerprints while the server counts no write to
// the catalog; DDL that bypasses change tracking is counted, and the next pass reads every schema
// and repairs it. A pass asked for by hand (reconcile --all) always reads.
func TestFullPassesReuseFingerprintsUntilTheCatalogChanges(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	daemonPass := func() *controlplane.Pass {
		t.Helper()
		pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{ReuseFingerprints: true})
		if err != nil {
			t.Fatal(err)
		}
		return pass
	}
	// The tenants' creation is counted within seconds: the first pass after that reads, the
	// next ones reuse.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pass := daemonPass()
		if pass.Counts[controlplane.ActionUnchanged] != 2 {
			t.Fatalf("quiet pass: %v", pass.Counts)
		}
		if pass.FingerprintsReused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no pass reused the fingerprints in 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if pass := e.ReconcileAll(); pass.Counts[controlplane.ActionUnchanged] != 2 || pass.FingerprintsReused {
		t.Fatalf("a pass by hand: %v, reused %v", pass.Counts, pass.FingerprintsReused)
	}

	// A column dropped from globex by hand, with change tracking bypassed; the session reports
	// its counts at once, as it would within seconds anyway.
	e.Exec(`SET session_replication_role = replica; ALTER TABLE tenant_globex.products DROP COLUMN description;
		RESET session_replication_role; SELECT pg_stat_force_next_flush()`)
	pass := daemonPass()
	if pass.FingerprintsReused {
		t.Fatal("the pass after DDL reused the fingerprints")
	}
	if r := pass.Result("globex"); r.Action != controlplane.ActionApplied {
		t.Fatalf("globex: %s %s, want applied", r.Action, r.Error)
	}
	if r := pass.Result("acme"); r.Action != controlplane.ActionUnchanged {
		t.Fatalf("acme: %s %s, want unchanged", r.Action, r.Error)
	}
	for _, s := range []string{"acme", "globex"} {
		if cols := e.Columns("tenant_"+s, "products"); !slices.Contains(cols, "description") {
			t.Errorf("%s: products has %v", s, cols)
		}
	}
	// The repair is this process's own change: the pass right after it reads again and finds
	// nothing to do.
	if pass := daemonPass(); pass.Counts[controlplane.ActionUnchanged] != 2 || pass.FingerprintsReused {
		t.Fatalf("pass after the repair: %v, reused %v", pass.Counts, pass.FingerprintsReused)
	}
}
