package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/erpctl/erpctl/controlplane"
)

// crm is a module of one table; extra is more of its column blocks.
func crm(extra string) string {
	return "schema \"tenant\" {}\ntable \"contacts\" {\n  schema = schema.tenant\n  column \"name\" {\n    type = text\n  }\n" + extra + "}\n"
}

// TestRolloutInABrowser: a generation whose change fails in the canary's tenant (its table locked
// past the lock timeout) halts in its first stage; the fleet and rollout pages show it, with the
// failed tenant and its error; Resume (once the lock is gone) carries it to the gate of the next
// stage, and Approve through it, every action recorded with the operator's name.
func TestRolloutInABrowser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.WriteModule("crm", crm(""))
	f.WriteModule("deployment", `deployment {
  stage "canary" {
    selector     = "ring=canary"
    max_failures = 1
  }
  stage "paid" {
    selector = "tier=pro"
    approve  = true
  }
}
`)
	for slug, lbl := range map[string]string{"acme": "ring=canary", "bravo": "tier=pro", "charlie": "tier=pro",
		"delta": "tier=free", "echo": "tier=free", "foxtrot": "tier=free"} {
		f.Create(slug, "crm")
		f.label(slug, lbl)
	}
	// The canary's table is locked: its ALTER waits past the lock timeout and fails.
	lock, err := f.DB.BeginTx(f.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(f.Ctx, `LOCK TABLE tenant_acme.contacts IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	gen := f.WriteModuleGen("crm", crm("  column \"score\" {\n    type    = integer\n    default = 0\n  }\n"))
	pass := f.pass()
	if pass.Result("acme").Action != controlplane.ActionFailed {
		t.Fatalf("the canary: %+v", pass.Result("acme"))
	}

	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(f.loginURL("rollout-op")), chromedp.WaitVisible(chromedp.ID("count-all")))
	// The fleet page shows the rollout in progress, halted.
	waitFor(t, ctx, `document.querySelector("#rollouts-summary [data-rollout] .status-halted")`)
	click(t, ctx, `#rollouts-summary a[href^="/rollouts/"]`)
	waitFor(t, ctx, `document.getElementById("rollout-state") && document.getElementById("rollout-state").textContent === "halted"`)
	failed := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('tr[data-failed="acme"]').innerText`))
	if !strings.Contains(failed, "lock timeout") || !strings.Contains(failed, "canary") {
		t.Fatalf("the failed tenant's row: %q", failed)
	}
	if got := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('#stage-canary .failed').textContent`)); got != "1" {
		t.Fatalf("canary failed: %q", got)
	}
	screenshot(t, ctx, "rollout-halted")

	// The lock let go, then resumed from the page: the next pass carries it to the gate.
	lock.Rollback()
	click(t, ctx, `#resume`)
	waitFor(t, ctx, `document.getElementById("done") && document.getElementById("done").textContent === "Resumed."`)
	f.pass()
	waitFor(t, ctx, `document.getElementById("rollout-state").textContent === "waiting" && document.getElementById("approve")`)
	if got := run(t, ctx, chromedp.Evaluate[string](`document.querySelector('#stage-paid .status').textContent`)); got != "approval" {
		t.Fatalf("stage paid: %q", got)
	}
	// The page before held a notice too (Resumed.): the new one says the approval is recorded.
	click(t, ctx, `#approve`)
	waitFor(t, ctx, `document.getElementById("done") && document.getElementById("done").textContent === "Approved."`)
	f.pass()
	waitFor(t, ctx, `document.getElementById("rollout-state").textContent === "done"`)
	screenshot(t, ctx, "rollout-done")
	if n := f.Count(`SELECT count(*) FROM erpctl.tenants WHERE generation = $1`, gen); n != 6 {
		t.Fatalf("%d of 6 tenants at generation %d", n, gen)
	}
	// An action the state does not allow is refused, and recorded nowhere.
	if res, body := f.do(http.DefaultClient, "POST", "/rollouts/1/pause", url.Values{}, "Authorization", "Bearer "+f.token, "Accept", "application/json"); res.StatusCode != http.StatusConflict ||
		!strings.Contains(body, `"Rollout 1 is done; only a running or waiting rollout pauses"`) {
		t.Fatalf("pause a done rollout: %d\n%s", res.StatusCode, body)
	}
	if n := f.Count(`SELECT count(*) FROM erpctl.rollout_events WHERE action = 'pause'`); n != 0 {
		t.Fatal("a refused pause was recorded")
	}
	for _, a := range []string{"resume", "approve"} {
		if n := f.Count(`SELECT count(*) FROM erpctl.rollout_events WHERE action = $1 AND actor LIKE '%operator rollout-op%console%'`, a); n != 1 {
			t.Fatalf("%d %s events with the operator's name", n, a)
		}
	}
}
