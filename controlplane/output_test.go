package controlplane_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// An enum value that a plan uses is committed in a transaction of its own first: it is in the
// tenants' events and in the statements of their results, and counts as applied.
func TestEnumValueAddIsRecorded(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("sales", salesModule(`"draft", "confirmed"`, "draft"))
	e.Create("acme")
	e.Create("globex")
	e.WriteModule("sales", salesModule(`"draft", "confirmed", "shipped"`, "shipped"))
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	for _, s := range []string{"acme", "globex"} {
		r := pass.Result(s)
		if r.Action != controlplane.ActionApplied || !slices.ContainsFunc(r.SQL, func(q string) bool { return strings.Contains(q, "ADD VALUE 'shipped'") }) {
			t.Fatalf("%s: %+v", s, r)
		}
		if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = $1 AND sql LIKE '%ADD VALUE ''shipped''%' AND outcome = 'applied'`, s); n != 1 {
			t.Fatalf("%s: %d events of the added value", s, n)
		}
	}
}

// A tenant whose reason changes (held by a halted rollout) gets a new "since"; a pass that
// brings a held tenant back with nothing to apply reports it applied, not unchanged; seed rows
// inserted count as applied too, and a plan shows them.
func TestStatusChangesAreNotUnchanged(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	slugs := createFleet(e, 4)
	tn, _ := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slugs[3]))
	since := *tn.LastTransitionAt
	time.Sleep(20 * time.Millisecond)
	e.WriteModule("crm", crmModule(`  column "score" {
    type    = integer
    default = sql("1 / 0")
  }
`))
	reconcileAll(t, e, controlplane.ReconcileOptions{Canary: 1, MaxFailures: 1})
	tn, _ = e.P.GetTenant(e.Ctx, ident.MustParseSlug(slugs[3]))
	if tn.Reason != controlplane.ReasonRolloutHalted || !tn.LastTransitionAt.After(since) {
		t.Fatalf("held tenant: reason %s since %v (before %v)", tn.Reason, tn.LastTransitionAt, since)
	}
	// The change taken back: the held tenants go back to UpToDate, which is a change.
	e.WriteModule("crm", crmModule(""))
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{IgnoreBackoff: true})
	if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, slugs) {
		t.Fatalf("released: applied %v (%+v)", got, pass.Counts)
	}
	if pass = reconcileAll(t, e, controlplane.ReconcileOptions{}); pass.Counts[controlplane.ActionUnchanged] != 4 {
		t.Fatalf("next pass: %+v", pass.Counts)
	}
	// A seed row: shown by a plan, applied by a pass.
	e.WriteModule("crm", crmModule("")+"seed \"contacts\" {\n  rows = [ { name = \"Support\" } ]\n}\n")
	plan := reconcileAll(t, e, controlplane.ReconcileOptions{DryRun: true})
	if r := plan.Result(slugs[0]); r.Action != controlplane.ActionPlanned || !slices.Equal(r.Seeds, []string{"contacts: 1 row"}) {
		t.Fatalf("plan of a seed row: %+v", r)
	}
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, slugs) || len(pass.Result(slugs[1]).Seeds) != 1 {
		t.Fatalf("seed rows: applied %v, %+v", got, pass.Result(slugs[1]))
	}
	for _, s := range slugs {
		if n := e.Count(`SELECT count(*) FROM tenant_` + s + `.contacts WHERE name IN ('Support', '` + s + `-row')`); n != 2 {
			t.Fatalf("%s's rows: %d", s, n)
		}
	}
}

// debug tables' last repair is the last repair, not a label or a move, and a fix is one.
func TestLastRepairIsARepair(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`DROP TABLE tenant_acme.stock_items`)
	if _, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{Target: controlplane.TargetApplied, Cause: "erpctl debug tables --fix"}); err != nil {
		t.Fatal(err)
	}
	e.Exec(`INSERT INTO erpctl.events (tenant, kind, outcome, reason) VALUES ('acme', 'move', 'applied', 'tenant move from a to b'), ('acme', 'label', 'applied', 'labels: none → tier=x')`)
	rep := e.DebugHealthy("acme")
	if rep.LastRepair == nil || rep.LastRepair.Kind != "repair" || *rep.LastRepair.Reason != "erpctl debug tables --fix" {
		t.Fatalf("acme's last repair: %+v", rep.LastRepair)
	}
	if rep := e.DebugHealthy("globex"); rep.LastRepair != nil {
		t.Fatalf("globex's last repair: %+v", rep.LastRepair)
	}
}
