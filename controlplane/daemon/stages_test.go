package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/rollouts"
	"github.com/erpctl/erpctl/internal/ident"
)

const gatedDeployment = `deployment {
  stage "canary" {
    selector = "ring=canary"
  }
  stage "free" {
    selector = "tier=free"
    approve  = true
  }
}
`

// notesWith is the notes module with more nullable columns.
func notesWith(cols ...string) string {
	var extra string
	for _, c := range cols {
		extra += "  column \"" + c + "\" {\n    type = text\n    null = true\n  }\n"
	}
	return fmt.Sprintf(notesModule, extra)
}

// Pause, approve, resume and abort from a second process (the test's plane, as the CLI would)
// while the daemon runs the rollout: a paused rollout stays paused through the daemon's passes,
// a resumed one goes on past its approved gate, an aborted one leaves the tenants it has not
// reached at their generation, serving, until a newer generation.
func TestDaemonFollowsRolloutActionsOfAnotherProcess(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("notes", fmt.Sprintf(notesModule, ""))
	tokens := map[string]string{}
	for slug, l := range map[string]labels.Labels{"c1": {"ring": "canary"}, "f1": {"tier": "free"}, "f2": {"tier": "free"}, "o1": {}} {
		if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(slug), Labels: l}); err != nil {
			t.Fatal(err)
		}
		e.Exec(`INSERT INTO tenant_` + slug + `.notes (body) VALUES ('` + slug + `')`)
		_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(slug), "client")
		if err != nil {
			t.Fatal(err)
		}
		tokens[slug] = secret
	}
	if err := os.WriteFile(filepath.Join(e.ModulesDir, rollouts.FileName), []byte(gatedDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 50 * time.Millisecond}})
	d.waitPass(t)
	store := e.P.Rollouts()
	latestRollout := func() *rollouts.Rollout {
		rs, err := store.List(e.Ctx, 1)
		if err != nil || len(rs) == 0 {
			return nil
		}
		return &rs[0]
	}
	gen := func(slug string) int64 {
		tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug(slug))
		if err != nil || tn.Generation == nil {
			t.Fatalf("%s: %+v %v", slug, tn, err)
		}
		return *tn.Generation
	}

	e.WriteModule("notes", notesWith("a"))
	g1, _, _ := e.P.Generations().Latest(e.Ctx, nil)
	waitFor(t, "the canary applied and the gate reached", func() bool {
		r := latestRollout()
		return r != nil && r.Generation == g1 && r.State == controlplane.RolloutWaiting && r.Stage == "free"
	})
	r := latestRollout()
	if _, err := store.Pause(e.Ctx, r.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Approve(e.Ctx, r.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		d.waitPass(t)
	}
	if r = latestRollout(); r.State != controlplane.RolloutPaused || gen("f1") == g1 || gen("o1") == g1 || gen("c1") != g1 {
		t.Fatalf("paused rollout after the daemon's passes: %+v", r)
	}
	if code := d.getWithToken(t, "/api/f1/notes/notes/", tokens["f1"]); code != 200 {
		t.Fatalf("f1 while paused: %d", code)
	}
	if _, err := store.Resume(e.Ctx, r.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resumed rollout done", func() bool { r := latestRollout(); return r.State == controlplane.RolloutDone })
	for _, s := range []string{"c1", "f1", "f2", "o1"} {
		if gen(s) != g1 {
			t.Fatalf("%s not at generation %d after the rollout", s, g1)
		}
	}

	// Abort: the tenants past the canary stay where they are.
	e.WriteModule("notes", notesWith("a", "b"))
	g2, _, _ := e.P.Generations().Latest(e.Ctx, nil)
	waitFor(t, "the next rollout at its gate", func() bool {
		r := latestRollout()
		return r.Generation == g2 && r.State == controlplane.RolloutWaiting
	})
	r = latestRollout()
	if _, err := store.Abort(e.Ctx, r.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Resume(e.Ctx, r.ID, "ops"); err == nil {
		t.Fatal("resumed an aborted rollout")
	}
	for range 5 {
		d.waitPass(t)
	}
	if r = latestRollout(); r.State != controlplane.RolloutAborted || gen("c1") != g2 || gen("f1") != g1 || gen("o1") != g1 {
		t.Fatalf("aborted rollout: %+v (c1 %d, f1 %d, o1 %d)", r, gen("c1"), gen("f1"), gen("o1"))
	}
	for slug, tok := range tokens {
		if code := d.getWithToken(t, "/api/"+slug+"/notes/notes/", tok); code != 200 {
			t.Fatalf("%s after the abort: %d", slug, code)
		}
	}
	evs, err := store.Events(e.Ctx, r.ID, 20)
	if err != nil || len(evs) == 0 || evs[0].Action != "abort" || evs[0].Actor != "ops" {
		t.Fatalf("the aborted rollout's events: %+v %v", evs, err)
	}
	// A newer generation supersedes it and reaches everyone (its gate approved on the way).
	e.WriteModule("notes", notesWith("a", "b", "c"))
	g3, _, _ := e.P.Generations().Latest(e.Ctx, nil)
	waitFor(t, "the third rollout at its gate", func() bool { r := latestRollout(); return r.Generation == g3 && r.State == controlplane.RolloutWaiting })
	if _, err := store.Approve(e.Ctx, latestRollout().ID, "ops"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third rollout done", func() bool { return latestRollout().State == controlplane.RolloutDone })
	for _, s := range []string{"c1", "f1", "f2", "o1"} {
		if gen(s) != g3 || e.Count(`SELECT count(*) FROM tenant_`+s+`.notes WHERE body = '`+s+`'`) != 1 {
			t.Fatalf("%s after the third rollout: generation %d", s, gen(s))
		}
	}
}
