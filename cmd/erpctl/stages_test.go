package main

import (
	"strings"
	"testing"
)

// A deployment published with the modules, through the commands: reconcile --all goes up to the
// approval gate and says so, rollout list and show (table and JSON) tell where it stands,
// rollout approve moves it on, and bad input to the rollout commands changes nothing.
func TestRolloutCommands(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.writeModule("crm", crmV1)
	c.writeModule("deployment", `deployment {
  stage "canary" {
    selector = "ring=canary"
  }
  stage "paid" {
    selector = "tier in (pro,enterprise)"
    approve  = true
  }
}
`)
	c.ok("tenant", "create", "acme", "--label", "ring=canary")
	c.ok("tenant", "create", "globex", "--label", "tier=pro")
	c.ok("tenant", "create", "initech", "--label", "tier=free")
	for _, s := range []string{"acme", "globex", "initech"} {
		c.sql(`INSERT INTO tenant_` + s + `.contacts (name) VALUES ('` + s + `')`)
	}
	contains(t, "no rollouts", c.ok("rollout", "list").stderr, "No rollouts yet")

	c.writeModule("crm", strings.Replace(crmV1, "    type = text\n", "    type = text\n  }\n  column \"phone\" {\n    type = text\n    null = true\n", 1))
	r := c.ok("reconcile", "--all", "--publish")
	contains(t, "reconcile up to the gate", r.stdout, "1 applied", "2 waiting", "rollout 1: waiting", "(stage paid)",
		"waits for an approval of stage paid (erpctl rollout approve 1)")

	var list []struct {
		ID         int64  `json:"id"`
		Generation int64  `json:"generation"`
		State      string `json:"state"`
		Stages     []struct {
			Name     string `json:"name"`
			Selector string `json:"selector"`
			State    string `json:"state"`
			Tenants  int    `json:"tenants"`
			Applied  int    `json:"applied"`
			Failed   int    `json:"failed"`
			Held     int    `json:"held"`
		} `json:"stages"`
	}
	decodeOne(t, c.ok("rollout", "list", "-o", "json").stdout, &list)
	if len(list) != 1 || list[0].ID != 1 || list[0].Generation != 2 || list[0].State != "waiting" || len(list[0].Stages) != 3 {
		t.Fatalf("rollout list -o json: %+v", list)
	}
	if s := list[0].Stages; s[0].Name != "canary" || s[0].Applied != 1 || s[1].Name != "paid" || s[1].State != "approval" ||
		s[1].Selector != "tier in (enterprise,pro)" || s[1].Tenants != 1 || s[2].Name != "rest" || s[2].Tenants != 1 {
		t.Fatalf("stages: %+v", s)
	}
	contains(t, "rollout show", c.ok("rollout", "show", "1").stdout, "Generation:", "STAGE", "paid", "approval", "canary", "done", "awaiting approval")

	c.expect(2, "is not a rollout id", "rollout", "show", "x")
	c.expect(2, "no such rollout", "rollout", "approve", "9")
	c.expect(2, "only a paused or halted rollout resumes", "rollout", "resume", "1")
	c.expect(2, "needs ID", "rollout", "pause")
	if n := c.count(`SELECT count(*) FROM erpctl.rollout_events WHERE action IN ('approve', 'resume', 'pause')`); n != 0 {
		t.Fatalf("bad input recorded %d actions", n)
	}

	contains(t, "approve", c.ok("rollout", "approve", "1").stdout, "Approved rollout 1 (generation 2)")
	r = c.ok("reconcile", "--all")
	contains(t, "after the approval", r.stdout, "2 applied", "rollout 1: done")
	var shown struct {
		State  string `json:"state"`
		Events []struct {
			Action string `json:"action"`
			Actor  string `json:"actor"`
		} `json:"events"`
	}
	decodeOne(t, c.ok("rollout", "show", "1", "-o", "json").stdout, &shown)
	if shown.State != "done" || len(shown.Events) == 0 {
		t.Fatalf("rollout show -o json: %+v", shown)
	}
	found := false
	for _, e := range shown.Events {
		found = found || (e.Action == "approve" && strings.Contains(e.Actor, "@"))
	}
	if !found {
		t.Fatalf("no approve event with its actor: %+v", shown.Events)
	}
	for _, s := range []string{"acme", "globex", "initech"} {
		if n := c.count(`SELECT count(*) FROM tenant_` + s + `.contacts WHERE name = '` + s + `' AND phone IS NULL`); n != 1 {
			t.Fatalf("%s's row after the rollout", s)
		}
	}
	c.writeModule("deployment", "deployment {\n  stage \"x\" {\n    parallel = 0\n  }\n}\n")
	c.expect(2, "deployment.hcl:3: stage \"x\": parallel must be", "module", "publish")
}
