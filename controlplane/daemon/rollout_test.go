package daemon_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
)

const notesModule = `schema "tenant" {}
table "notes" {
  schema = schema.tenant
  column "body" {
    type = text
  }
%s}
`

// The daemon stages a change with its settings: a bad one halts at the canary, and /metrics
// says where the rollout stands; later passes keep the rest held.
func TestDaemonHaltsABadRollout(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("notes", fmt.Sprintf(notesModule, ""))
	for _, s := range []string{"a1", "a2", "a3", "a4"} {
		e.Create(s, "notes")
		e.Exec(fmt.Sprintf(`INSERT INTO tenant_%s.notes (body) VALUES ('x')`, s))
	}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 50 * time.Millisecond, Canary: 1, MaxFailures: 1}})
	d.waitPass(t)
	e.WriteModule("notes", fmt.Sprintf(notesModule, "  column \"n\" {\n    type    = integer\n    default = sql(\"1 / 0\")\n  }\n"))
	var pass *controlplane.Pass
	for i := 0; i < 100; i++ {
		if pass = d.waitPass(t); pass.Counts[controlplane.ActionHeld] > 0 {
			break
		}
	}
	if pass.Counts[controlplane.ActionFailed] != 1 || pass.Counts[controlplane.ActionHeld] != 3 {
		t.Fatalf("halting pass: %+v", pass.Counts)
	}
	// The next pass holds the same three, from the catalog.
	if next := d.waitPass(t); next.Counts[controlplane.ActionHeld] != 3 || next.Counts[controlplane.ActionApplied] != 0 {
		t.Fatalf("pass after the halt: %+v", next.Counts)
	}
	_, metrics := d.get(t, "/metrics")
	for _, want := range []string{`erpctl_rollouts{state="halted"} 1`, `erpctl_rollout_tenants{state="held"} 3`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %q:\n%s", want, metrics)
		}
	}
	if n := e.Count(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'n'`); n != 0 {
		t.Fatalf("the bad change reached %d tenants", n)
	}
}
