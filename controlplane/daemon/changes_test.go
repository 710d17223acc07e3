package daemon_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
)

// With change tracking, a table dropped by hand is back within 2 s with no request at all, and
// the interval (an hour) plays no part; the pass that repairs it touches no other tenant.
func TestDaemonRepairsDDLMadeByHandWithinTwoSeconds(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		e.Create("acme")
		e.Create("globex")
		d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour, FullCheck: time.Hour, TrackChanges: true}})
		if pass := d.waitPass(t); len(pass.Results) != 2 {
			t.Fatalf("first pass: %+v", pass.Results)
		}
		e.Exec(`DROP TABLE tenant_acme.stock_items`)
		start := time.Now()
		deadline := time.After(2 * time.Second)
		for {
			var pass *controlplane.Pass
			select {
			case pass = <-d.passes:
			case <-deadline:
				t.Fatalf("stock_items not back within 2s: %v", e.Tables("tenant_acme"))
			}
			if pass.Result("acme").Action != controlplane.ActionApplied {
				continue
			}
			if len(pass.Results) != 1 {
				t.Fatalf("the pass after acme's change looked at %+v", pass.Results)
			}
			break
		}
		t.Logf("repaired %v after the drop", time.Since(start))
		if !slices.Contains(e.Tables("tenant_acme"), "stock_items") {
			t.Fatalf("acme's tables: %v", e.Tables("tenant_acme"))
		}
		if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'globex' AND kind <> 'create'`); n != 0 {
			t.Fatalf("globex has %d events besides its create", n)
		}
		// The repair is recorded as one, with why.
		if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'acme' AND kind = 'repair' AND reason LIKE 'change tracking:%'`); n != 1 {
			t.Fatalf("acme has %d repair events of change tracking", n)
		}
		if rep := e.DebugHealthy("acme"); rep.LastRepair == nil || !strings.HasPrefix(*rep.LastRepair.Reason, "change tracking") {
			t.Fatalf("acme's last repair: %+v", rep.LastRepair)
		}
		e.DebugHealthy("globex")
	})
}
