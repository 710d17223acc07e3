package controlplane_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// crmModule is a module with one table; extra is more of its column blocks.
func crmModule(extra string) string {
	return `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "name" {
    type = text
  }
` + extra + `}
`
}

// createFleet creates tenants t01..tN with the crm module and a row each.
func createFleet(e *cptest.Env, n int) []string {
	e.T.Helper()
	e.WriteModule("crm", crmModule(""))
	var slugs []string
	for i := 1; i <= n; i++ {
		s := fmt.Sprintf("t%02d", i)
		e.Create(s, "crm")
		e.Exec(fmt.Sprintf(`INSERT INTO tenant_%s.contacts (name) VALUES ('%s-row')`, s, s))
		slugs = append(slugs, s)
	}
	return slugs
}

func actionsOf(pass *controlplane.Pass, action string) []string {
	var out []string
	for _, r := range pass.Results {
		if r.Action == action {
			out = append(out, r.Tenant)
		}
	}
	slices.Sort(out)
	return out
}

// checkUntouched fails unless each tenant still has only the name column and its own one row.
func checkUntouched(e *cptest.Env, slugs []string) {
	e.T.Helper()
	for _, s := range slugs {
		cols := e.Columns("tenant_"+s, "contacts")
		if slices.Contains(cols, "score") {
			e.T.Errorf("%s was changed: %v", s, cols)
		}
		if got := e.Strings(fmt.Sprintf(`SELECT name FROM tenant_%s.contacts`, s)); !slices.Equal(got, []string{s + "-row"}) {
			e.T.Errorf("%s rows: %v", s, got)
		}
	}
}

func TestRolloutHaltsAtTheFailureLimit(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		slugs := createFleet(e, 12)
		// A change that fails in every tenant: the default is evaluated for the existing row.
		e.WriteModule("crm", crmModule(`  column "score" {
    type    = integer
    default = sql("1 / 0")
  }
`))
		o := controlplane.ReconcileOptions{Canary: 3, MaxFailures: 2, Workers: 4}
		pass := reconcileAll(t, e, o)
		failed, held := actionsOf(pass, controlplane.ActionFailed), actionsOf(pass, controlplane.ActionHeld)
		if !slices.Equal(failed, slugs[:3]) || !slices.Equal(held, slugs[3:]) {
			t.Fatalf("halted rollout: failed %v, held %v", failed, held)
		}
		if len(pass.Rollouts) != 1 || pass.Rollouts[0].State != controlplane.RolloutHalted || pass.Rollouts[0].Held != 9 ||
			pass.Rollouts[0].Failed != 3 || pass.Rollouts[0].Tenants != 12 || !strings.Contains(pass.Rollouts[0].Message, "--resume") {
			t.Fatalf("rollouts: %+v", pass.Rollouts)
		}
		checkUntouched(e, slugs)
		for _, s := range slugs[3:] {
			tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug(s))
			if err != nil || tn.Status != controlplane.StatusReady || tn.Reason != controlplane.ReasonRolloutHalted ||
				tn.LastError == nil || !strings.Contains(*tn.LastError, "erpctl reconcile --all --resume") {
				t.Fatalf("held %s: %+v %v", s, tn, err)
			}
			evs, err := e.P.TenantEvents(e.Ctx, ident.MustParseSlug(s), 1)
			if err != nil || len(evs) != 1 || evs[0].Kind != "rollout" || evs[0].Outcome != "held" {
				t.Fatalf("held %s: events %+v %v", s, evs, err)
			}
		}
		// The next pass holds them again and applies nothing; the failed wait for their backoff.
		pass = reconcileAll(t, e, o)
		if held := actionsOf(pass, controlplane.ActionHeld); !slices.Equal(held, slugs[3:]) || pass.Counts[controlplane.ActionFailed] != 0 {
			t.Fatalf("second pass: %+v", pass.Counts)
		}
		// Once their backoff is over, the failed are held too, with no retry scheduled: the daemon
		// would otherwise run a pass per backoff only to hold them again.
		pass = reconcileAll(t, e, controlplane.ReconcileOptions{Canary: 3, MaxFailures: 2, IgnoreBackoff: true})
		if held := actionsOf(pass, controlplane.ActionHeld); !slices.Equal(held, slugs) || pass.NextRetryAt != nil {
			t.Fatalf("pass after the backoff: held %v, next retry %v", held, pass.NextRetryAt)
		}
		if tn, _ := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slugs[0])); tn.Status != controlplane.StatusFailed || tn.Reason != controlplane.ReasonApplyFailed {
			t.Fatalf("a failed tenant of the halted rollout: %+v", tn)
		}
		if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE kind = 'rollout'`); n != 9 {
			t.Fatalf("%d rollout events, want one per held tenant", n)
		}
		checkUntouched(e, slugs)

		// Taking the change back releases the held tenants without applying anything.
		e.WriteModule("crm", crmModule(""))
		// The held tenants' status changes (RolloutHalted to UpToDate), but no statement runs.
		pass = reconcileAll(t, e, o)
		if pass.Counts[controlplane.ActionHeld] != 0 || pass.Counts[controlplane.ActionFailed] != 0 {
			t.Fatalf("change taken back: %+v", pass.Counts)
		}
		for _, r := range pass.Results {
			if len(r.SQL) != 0 {
				t.Fatalf("change taken back: %s ran %q", r.Tenant, r.SQL)
			}
		}
		if tn, _ := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slugs[5])); tn.Reason != controlplane.ReasonUpToDate || tn.LastError != nil {
			t.Fatalf("%s after the change was taken back: %+v", slugs[5], tn)
		}

		// A fixed module is a new rollout: a canary, then waves, to every tenant.
		e.WriteModule("crm", crmModule(`  column "score" {
    type    = integer
    default = 0
  }
`))
		o.IgnoreBackoff = true
		pass = reconcileAll(t, e, o)
		if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, slugs) {
			t.Fatalf("fixed module: applied %v (%+v)", got, pass.Counts)
		}
		// 1 + 2 (the canary of 3), then 3, then 6.
		if len(pass.Rollouts) != 1 || pass.Rollouts[0].State != controlplane.RolloutDone || pass.Rollouts[0].Waves != 4 || pass.Rollouts[0].Applied != 12 {
			t.Fatalf("fixed module's rollout: %+v", pass.Rollouts)
		}
		if got := e.Strings(`SELECT state FROM erpctl.rollouts ORDER BY id`); !slices.Equal(got, []string{"superseded", "done"}) {
			t.Fatalf("rollout rows: %v", got)
		}
		for _, s := range slugs {
			tn, _ := e.P.GetTenant(e.Ctx, ident.MustParseSlug(s))
			if tn.Reason != controlplane.ReasonUpToDate || e.Count(fmt.Sprintf(`SELECT count(*) FROM tenant_%s.contacts WHERE score = 0`, s)) != 1 {
				t.Fatalf("%s after the fix: %+v", s, tn)
			}
		}
	})
}

func TestRolloutResumesWhereItHalted(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		slugs := createFleet(e, 6)
		// The first two tenants' tables are locked: their ALTER waits past the lock timeout.
		lock, err := e.DB.BeginTx(e.Ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback()
		for _, s := range slugs[:2] {
			if _, err := lock.ExecContext(e.Ctx, fmt.Sprintf(`LOCK TABLE tenant_%s.contacts IN ACCESS SHARE MODE`, s)); err != nil {
				t.Fatal(err)
			}
		}
		e.WriteModule("crm", crmModule(`  column "score" {
    type = integer
    null = true
  }
`))
		o := controlplane.ReconcileOptions{Canary: 2, MaxFailures: 2, LockTimeout: 100 * time.Millisecond}
		pass := reconcileAll(t, e, o)
		if f, h := actionsOf(pass, controlplane.ActionFailed), actionsOf(pass, controlplane.ActionHeld); !slices.Equal(f, slugs[:2]) || !slices.Equal(h, slugs[2:]) {
			t.Fatalf("halted: failed %v held %v", f, h)
		}
		id := pass.Rollouts[0].ID
		checkUntouched(e, slugs)
		lock.Rollback()
		o.Resume, o.IgnoreBackoff = true, true
		pass = reconcileAll(t, e, o)
		if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, slugs) {
			t.Fatalf("resumed: applied %v, %+v", got, pass.Results)
		}
		if r := pass.Rollouts; len(r) != 1 || r[0].ID != id || r[0].State != controlplane.RolloutDone || r[0].Failed != 0 {
			t.Fatalf("resumed rollout: %+v", r)
		}
		var state string
		var failed int
		if err := e.DB.QueryRowContext(e.Ctx, `SELECT state, failed FROM erpctl.rollouts WHERE id = $1`, id).Scan(&state, &failed); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if state != controlplane.RolloutDone {
			t.Fatalf("rollout %d is %s", id, state)
		}
	})
}
