package controlplane_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/internal/ident"
)

// The deployment of the stage tests: our canary, the free tier two at a time within half of its
// tenants failing, the enterprise tier only after an operator approves; the rest last.
const stagesDeployment = `deployment {
  stage "canary" {
    selector     = "ring=canary"
    max_failures = 1
  }
  stage "free" {
    selector     = "tier=free"
    parallel     = 2
    max_failures = "50%"
  }
  stage "enterprise" {
    selector = "tier=enterprise"
    approve  = true
  }
}
`

// stageFleet makes tenants with the crm module, a row each, and the labels of each stage.
func stageFleet(t *testing.T, e *cptest.Env) map[string][]string {
	t.Helper()
	e.WriteModule("crm", crmModule(""))
	fleet := map[string][]string{
		"canary":     {"c1"},
		"free":       {"f1", "f2", "f3"},
		"enterprise": {"e1", "e2"},
		"rest":       {"o1"},
	}
	lbls := map[string]labels.Labels{"canary": {"ring": "canary", "tier": "free"}, "free": {"tier": "free"},
		"enterprise": {"tier": "enterprise"}, "rest": {"tier": "pro"}}
	for stage, slugs := range fleet {
		for _, s := range slugs {
			if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(s), Modules: []string{"crm"}, Labels: lbls[stage]}); err != nil {
				t.Fatal(err)
			}
			e.Exec(fmt.Sprintf(`INSERT INTO tenant_%s.contacts (name) VALUES ('%s-row')`, s, s))
		}
	}
	return fleet
}

func writeDeployment(t *testing.T, e *cptest.Env, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.ModulesDir, rollouts.FileName), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func genOf(t *testing.T, e *cptest.Env, slug string) int64 {
	t.Helper()
	tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slug))
	if err != nil || tn.Generation == nil {
		t.Fatalf("%s: %+v %v", slug, tn, err)
	}
	return *tn.Generation
}

// A change that fails everywhere stops inside the first stage, within its budget: the tenants of
// later stages are untouched, held at their generation. The fix rolls out stage by stage up to
// the approval gate, where it waits; rollout approve moves it on, and every tenant ends at the
// new generation with its rows. Directly and behind PgBouncer.
func TestStagedRolloutByLabels(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		fleet := stageFleet(t, e)
		writeDeployment(t, e, stagesDeployment)
		e.WriteModule("crm", crmModule("  column \"score\" {\n    type    = integer\n    default = sql(\"1 / 0\")\n  }\n"))
		before := genOf(t, e, "o1")
		bad, _, err := e.P.Generations().Latest(e.Ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
		if got := actionsOf(pass, controlplane.ActionFailed); !slices.Equal(got, []string{"c1"}) {
			t.Fatalf("bad change: failed %v (%+v)", got, pass.Counts)
		}
		if got := actionsOf(pass, controlplane.ActionHeld); len(got) != 6 {
			t.Fatalf("bad change: held %v", got)
		}
		r := pass.Rollouts[0]
		if r.State != controlplane.RolloutHalted || r.Stage != "canary" || !strings.Contains(r.Message, "stage canary") {
			t.Fatalf("bad change's rollout: %+v", r)
		}
		for _, s := range append(append(fleet["free"], fleet["enterprise"]...), fleet["rest"]...) {
			if g := genOf(t, e, s); g != before {
				t.Fatalf("%s moved to generation %d", s, g)
			}
		}
		checkUntouched(e, slices.Concat(fleet["canary"], fleet["free"], fleet["enterprise"], fleet["rest"]))
		shown, err := e.P.Rollouts().Get(e.Ctx, r.ID)
		if err != nil || shown.Generation != bad || len(shown.Stages) != 4 || shown.Stages[0].Failed != 1 || shown.Stages[1].Held != 3 ||
			shown.Stages[3].Name != rollouts.RestStage || shown.Stages[3].Tenants != 1 {
			t.Fatalf("rollout show of the halted rollout: %+v %v", shown, err)
		}

		// The fix: canary and free go, enterprise waits for its approval, and so does the rest.
		e.WriteModule("crm", crmModule("  column \"score\" {\n    type    = integer\n    default = 0\n  }\n"))
		good, _, _ := e.P.Generations().Latest(e.Ctx, nil)
		pass = reconcileAll(t, e, controlplane.ReconcileOptions{IgnoreBackoff: true})
		if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, []string{"c1", "f1", "f2", "f3"}) {
			t.Fatalf("fix before the gate: applied %v (%+v)", got, pass.Counts)
		}
		if got := actionsOf(pass, controlplane.ActionWaiting); !slices.Equal(got, []string{"e1", "e2", "o1"}) {
			t.Fatalf("fix before the gate: waiting %v", got)
		}
		r = pass.Rollouts[0]
		if r.State != controlplane.RolloutWaiting || r.Stage != "enterprise" || r.Waves != 3 {
			t.Fatalf("fix's rollout at the gate: %+v", r)
		}
		if states := e.Strings(`SELECT state FROM erpctl.rollouts ORDER BY id`); !slices.Equal(states, []string{"superseded", "waiting"}) {
			t.Fatalf("rollout rows: %v", states)
		}
		// Passes do not go past the gate by themselves.
		if pass = reconcileAll(t, e, controlplane.ReconcileOptions{}); pass.Counts[controlplane.ActionApplied] != 0 {
			t.Fatalf("a pass went past the gate: %+v", pass.Counts)
		}
		// A pass that read the rollout before the approval does not undo it when it saves.
		stale, err := e.P.Rollouts().Get(e.Ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.P.Rollouts().Approve(e.Ctx, r.ID+99, "ops"); err == nil {
			t.Fatal("approved a rollout that does not exist")
		}
		approved, err := e.P.Rollouts().Approve(e.Ctx, r.ID, "ops@example")
		if err != nil || approved.Stages[2].ApprovedBy != "ops@example" {
			t.Fatalf("approve: %+v %v", approved, err)
		}
		if state, err := e.P.Rollouts().Save(e.Ctx, stale, stale.State); err != nil || state != controlplane.RolloutWaiting {
			t.Fatalf("save of the rollout as read before the approval: %q, %v", state, err)
		}
		if _, err := e.P.Rollouts().Approve(e.Ctx, r.ID, "ops"); err == nil {
			t.Fatal("approved twice, or a pass's save undid the approval")
		}
		pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
		if got := actionsOf(pass, controlplane.ActionApplied); !slices.Equal(got, []string{"e1", "e2", "o1"}) || pass.Rollouts[0].State != controlplane.RolloutDone {
			t.Fatalf("after the approval: applied %v, %+v", got, pass.Rollouts)
		}
		for _, ts := range fleet {
			for _, s := range ts {
				if g := genOf(t, e, s); g != good {
					t.Fatalf("%s at generation %d, want %d", s, g, good)
				}
				if n := e.Count(fmt.Sprintf(`SELECT count(*) FROM tenant_%s.contacts WHERE name = '%s-row' AND score = 0`, s, s)); n != 1 {
					t.Fatalf("%s's row after the rollout: %d", s, n)
				}
			}
		}
		evs, err := e.P.Rollouts().Events(e.Ctx, r.ID, 50)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, ev := range evs {
			actions = append(actions, ev.Action+"/"+ev.Stage+"/"+ev.Actor)
		}
		if !slices.Contains(actions, "approve/enterprise/ops@example") || !slices.Contains(actions, "awaiting approval/enterprise/"+e.P.Actor()) ||
			!slices.Contains(actions, "done//"+e.P.Actor()) {
			t.Fatalf("rollout events: %v", actions)
		}
	})
}

// A deployment file that breaks the rules is refused with its file and line, and nothing of it
// is published.
func TestDeploymentRefusedAtLoad(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	for _, c := range []struct{ src, want string }{
		{"deployment {\n  stage \"a\" {\n    selector = \"tier in free\"\n  }\n}\n", "deployment.hcl:3: stage \"a\": selector is not a selector"},
		{"deployment {\n  stage \"a\" {\n    parallel = 0\n  }\n}\n", "deployment.hcl:3: stage \"a\": parallel must be a whole number"},
		{"deployment {\n  stage \"a\" {\n    max_failures = \"150%\"\n  }\n}\n", "max_failures must be a percentage"},
		{"deployment {\n  stage \"a\" {\n    wait = \"soon\"\n  }\n}\n", "wait must be a duration"},
		{"deployment {\n  stage \"a\" {\n    approve = \"yes\"\n  }\n}\n", "approve must be true or false"},
		{"deployment {\n  stage \"a\" {\n    color = 1\n  }\n}\n", "color is not a stage attribute"},
		{"deployment {\n  stage \"a\" {}\n  stage \"b\" {\n    selector = \"x=y\"\n  }\n}\n", "stage \"a\" has no selector"},
		{"deployment {\n  stage \"a\" {\n    selector = \"x=y\"\n  }\n  stage \"a\" {\n    selector = \"x=z\"\n  }\n}\n", "declared twice"},
		{"deployment {}\n", "declares no stage"},
		{"stage \"a\" {}\n", "holds exactly one deployment"},
	} {
		writeDeployment(t, e, c.src)
		err := e.P.ReloadModules()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), rollouts.FileName) {
			t.Errorf("%q: %v, want an error saying %q", c.src, err, c.want)
		}
	}
	if n := e.Count(`SELECT count(*) FROM erpctl.generations`); n != 1 {
		t.Fatalf("%d generations", n)
	}
}
