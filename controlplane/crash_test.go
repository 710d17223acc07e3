package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// The child side of TestKillMidRollout: one reconcile pass, run in a process the test kills.
func TestKillMidRolloutChild(t *testing.T) {
	t.Parallel()
	url := os.Getenv("ERPCTL_CRASH_CHILD_URL")
	if url == "" {
		t.Skip("runs only as the child of TestKillMidRollout")
	}
	ctx := context.Background()
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: os.Getenv("ERPCTL_CRASH_CHILD_MODULES")})
	if err != nil {
		t.Fatal(err)
	}
	p.ReconcileAll(ctx, controlplane.ReconcileOptions{Workers: 1, LockTimeout: time.Minute})
}

// TestKillMidRollout kills a reconcile with SIGKILL while a tenant's transaction is half done
// and checks that every tenant is fully old or fully new, as its catalog row says.
func TestKillMidRollout(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	const n = 12
	for i := 0; i < n; i++ {
		e.Create(fmt.Sprintf("t%02d", i))
	}
	// The rollout adds a table and a column: a half-done tenant would have one without the other.
	e.WriteModule("crm", `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
}
`)
	e.WriteModule("product", productWithBarcode(t))

	// Hold a lock that tenant t06's ALTER TABLE waits for, so that the child is killed inside
	// that tenant's transaction. SHARE mode lets reads (Atlas inspections) through.
	blocker, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.ExecContext(e.Ctx, `LOCK TABLE tenant_t06.products IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidRolloutChild$", "-test.v")
	cmd.Env = append(os.Environ(), "ERPCTL_CRASH_CHILD_URL="+e.URL, "ERPCTL_CRASH_CHILD_MODULES="+e.ModulesDir,
		pgtest.EnvURL+"="+pgtest.AdminURL())
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child is blocked on t06's lock.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if e.Count(`SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE NOT l.granted AND l.mode = 'AccessExclusiveLock' AND c.relname = 'products' AND c.relnamespace = 'tenant_t06'::regnamespace`) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child never reached tenant t06; output:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	blocker.Rollback()
	untilKilledChildIsDone(t, e)

	var newCount, oldCount int
	for i := 0; i < n; i++ {
		s := fmt.Sprintf("tenant_t%02d", i)
		hasTable := slices.Contains(e.Tables(s), "contacts")
		hasColumn := slices.Contains(e.Columns(s, "products"), "barcode")
		switch {
		case hasTable && hasColumn:
			newCount++
		case !hasTable && !hasColumn:
			oldCount++
		default:
			t.Fatalf("%s is half changed: contacts %v, barcode %v", s, hasTable, hasColumn)
		}
	}
	if newCount == 0 || oldCount == 0 {
		t.Fatalf("the kill did not land mid-rollout: %d new, %d old", newCount, oldCount)
	}
	// t06's statements, its records and its COMMIT went in one round trip before the kill: the
	// server ran them once the lock was free, or not at all. Either way it is whole (above), and
	// its record says so (below).
	// The next pass finishes the rollout.
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Failed() || pass.Counts[controlplane.ActionApplied] != oldCount {
		t.Fatalf("pass after the kill: %+v", pass.Counts)
	}
	for i := 0; i < n; i++ {
		e.DebugHealthy(fmt.Sprintf("t%02d", i))
	}
}

// untilKilledChildIsDone waits until no backend of e's database but the test's own is at work:
// a killed child sent each tenant's transaction, COMMIT included, in one batch, and the server
// runs what it received once the lock it waits for is free, finding its client gone only when
// it answers. Counted before that, the tenant it was at looks untouched and then changes.
func untilKilledChildIsDone(t *testing.T, e *cptest.Env) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.Count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
		AND backend_type = 'client backend' AND state <> 'idle'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed child's backends are still at work after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
