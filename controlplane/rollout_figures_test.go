package controlplane_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// TestRolloutFigures measures a change rolled out with and without a canary, and a bad change
// halted at the canary against one that reaches every tenant. It runs only when
// ERPCTL_ROLLOUT_TENANTS is set (e.g. 1000): it is a measurement, not a check.
func TestRolloutFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ERPCTL_ROLLOUT_TENANTS"))
	if n == 0 {
		t.Skip("set ERPCTL_ROLLOUT_TENANTS to measure")
	}
	e := cptest.New(t)
	e.WriteModule("crm", crmModule(""))
	for i := 0; i < n; i++ {
		if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(fmt.Sprintf("t%05d", i)), Modules: []string{"crm"}}); err != nil {
			t.Fatal(err)
		}
	}
	extra := ""
	pass := func(o controlplane.ReconcileOptions, col string, wantApplied int) time.Duration {
		extra += fmt.Sprintf("  column %q {\n    type = integer\n    null = true\n  }\n", col)
		e.WriteModule("crm", crmModule(extra))
		p := reconcileAll(t, e, o)
		if p.Counts[controlplane.ActionApplied] != wantApplied {
			t.Fatalf("%s: %+v", col, p.Counts)
		}
		return p.Duration
	}
	var plain, staged []time.Duration
	for i := 0; i < 3; i++ {
		plain = append(plain, pass(controlplane.ReconcileOptions{}, fmt.Sprintf("p%d", i), n))
		staged = append(staged, pass(controlplane.ReconcileOptions{Canary: 3, MaxFailures: 3}, fmt.Sprintf("s%d", i), n))
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t.Logf("%d tenants, add a nullable column: all at once %v (runs %v); canary 3 + doubling waves %v (runs %v)", n, med(plain), plain, med(staged), staged)

	// A bad change: with a canary it halts after 3 failures; without, every tenant fails.
	bad := func(o controlplane.ReconcileOptions, col string) (*controlplane.Pass, time.Duration) {
		e.WriteModule("crm", crmModule(extra+fmt.Sprintf("  column %q {\n    type = integer\n    default = sql(\"1 / 0\")\n  }\n", col)))
		e.Exec(`DO $$ DECLARE s text; BEGIN FOR s IN SELECT schema_name FROM erpctl.tenants LOOP
			EXECUTE format('INSERT INTO %I.contacts (name) VALUES (''x'')', s); END LOOP; END $$`)
		p := reconcileAll(t, e, o)
		return p, p.Duration
	}
	p1, d1 := bad(controlplane.ReconcileOptions{Canary: 3, MaxFailures: 3}, "bad1")
	t.Logf("bad change with canary 3, max failures 3: %v, %+v", d1, p1.Counts)
	p2, d2 := bad(controlplane.ReconcileOptions{IgnoreBackoff: true}, "bad2")
	t.Logf("bad change without a canary: %v, %+v", d2, p2.Counts)
}
