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
	untilReused(t, 2, daemonPass)
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
	// The repair is this process's own change, not counted yet: the pass right after it finds
	// nothing to do, and inspects nothing, whether it reads again or takes globex's fingerprint
	// from the row the repair wrote.
	pass = daemonPass()
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionUnchanged || r.Inspected {
			t.Fatalf("pass after the repair (reused %v): %s %+v", pass.FingerprintsReused, s, r)
		}
	}
}

// A full read of the fleet is recorded in the catalog, so that another process's full pass (a
// daemon that restarts) does not read every schema's catalog again while the server counts no
// write to it. What the read found not as a tenant's row records, and schemas change tracking
// saw DDL on, are not taken from the rows.
func TestAnotherProcessReusesTheRecordedFleetRead(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	if on, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !on {
		t.Fatalf("change tracking: %v %v", on, err)
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		e.Create(s)
	}
	// A new process each time, so that nothing comes from a process's own last read.
	newProcessPass := func() *controlplane.Pass {
		t.Helper()
		p, err := controlplane.Open(e.Ctx, e.Config)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		pass, err := p.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{ReuseFingerprints: true})
		if err != nil {
			t.Fatal(err)
		}
		return pass
	}
	// Writes to the catalog are counted within seconds: until they are, a pass by hand's read is
	// recorded with a stamp that has moved by the next pass.
	settle := func() {
		t.Helper()
		untilReused(t, 3, func() *controlplane.Pass {
			if pass := e.ReconcileAll(); pass.Counts[controlplane.ActionUnchanged] != 3 || pass.FingerprintsReused {
				t.Fatalf("pass by hand: %v, reused %v", pass.Counts, pass.FingerprintsReused)
			}
			return newProcessPass()
		})
	}
	settle()

	// initech's row records another fingerprint than its schema has: the read records what it
	// found, and the next process inspects initech, whose schema is as its modules want.
	e.Exec(`UPDATE erpctl.tenants SET fingerprint = 'not what the schema has' WHERE slug = 'initech'`)
	if pass := e.ReconcileAll(); pass.Result("initech").Action != controlplane.ActionUnchanged || !pass.Result("initech").Inspected {
		t.Fatalf("pass by hand: initech %+v", pass.Result("initech"))
	}
	e.Exec(`UPDATE erpctl.tenants SET fingerprint = 'not what the schema has' WHERE slug = 'initech'`)
	e.Exec(`SELECT pg_stat_force_next_flush()`)
	pass := newProcessPass()
	if !pass.FingerprintsReused {
		t.Fatal("the pass after a read did not reuse it")
	}
	if r := pass.Result("initech"); r.Action != controlplane.ActionUnchanged || !r.Inspected {
		t.Fatalf("initech: %+v, want unchanged after an inspection", r)
	}
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionUnchanged || r.Inspected {
			t.Fatalf("%s: %+v, want unchanged without an inspection", s, r)
		}
	}

	// A column dropped from acme by hand in a session the server does not count: the stamp does
	// not move, but change tracking records acme, whose schema the pass reads.
	settle()
	e.Exec(`SET track_counts = off; ALTER TABLE tenant_acme.products DROP COLUMN description; RESET track_counts`)
	pass = newProcessPass()
	if !pass.FingerprintsReused {
		t.Fatal("the stamp moved: this test needs a write the server does not count")
	}
	if r := pass.Result("acme"); r.Action != controlplane.ActionApplied {
		t.Fatalf("acme: %s %s, want applied", r.Action, r.Error)
	}
	for _, s := range []string{"globex", "initech"} {
		if r := pass.Result(s); r.Action != controlplane.ActionUnchanged {
			t.Fatalf("%s: %s %s, want unchanged", s, r.Action, r.Error)
		}
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		if cols := e.Columns("tenant_"+s, "products"); !slices.Contains(cols, "description") {
			t.Errorf("%s: products has %v", s, cols)
		}
	}

	// A read older than an hour does not stand.
	settle()
	e.Exec(`UPDATE erpctl.meta SET value = jsonb_set(value::jsonb, '{read_at}', to_jsonb(now() - interval '2 hours'))::text
		WHERE key = 'fleet_read'`)
	if pass := newProcessPass(); pass.FingerprintsReused || pass.Counts[controlplane.ActionUnchanged] != 3 {
		t.Fatalf("pass after an old read: %v, reused %v", pass.Counts, pass.FingerprintsReused)
	}
}

// untilReused runs pass until one reuses the fleet's fingerprints, for at most 30 s: the server
// counts catalog writes within seconds of their commit, and until it has, a read is taken with a
// stamp that moves. Every pass must leave the fleet's n tenants unchanged.
func untilReused(t *testing.T, n int, pass func() *controlplane.Pass) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := pass()
		if p.Counts[controlplane.ActionUnchanged] != n {
			t.Fatalf("quiet pass: %v", p.Counts)
		}
		if p.FingerprintsReused {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no pass reused the fleet's fingerprints in 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
