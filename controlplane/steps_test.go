package controlplane_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// crmSteps is crmV1 made stricter: notes NOT NULL, filled first by a step, and a new column
// remarks filled from notes after the diff.
const crmSteps = `schema "tenant" {}
table "contacts" {
  schema = schema.tenant
  column "email" {
    type = text
  }
  column "notes" {
    type = text
  }
  column "remarks" {
    type = text
    null = true
  }
  index "contacts_email_idx" {
    columns = [column.email]
  }
}
migration "fill_blank_notes" {
  run = "before"
  sql = "UPDATE contacts SET notes = '-;-' WHERE notes IS NULL"
}
migration "copy_remarks" {
  run = "after"
  sql = [
    "UPDATE contacts SET remarks = notes",
    "UPDATE contacts SET remarks = remarks || '!'",
  ]
}
`

func stepsOf(e *cptest.Env, slug string) []string {
	e.T.Helper()
	return e.Strings(`SELECT step || ' ' || outcome FROM erpctl.migration_steps WHERE tenant = $1 ORDER BY step`, slug)
}

func TestMigrationStepsRunOncePerTenant(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.contacts (email, notes) VALUES ('a@x', 'first'), ('b@x', NULL)`)
	e.Exec(`INSERT INTO tenant_globex.contacts (email, notes) VALUES ('g@x', 'only')`)

	e.WriteModule("crm", crmSteps)
	plan := reconcileAll(t, e, controlplane.ReconcileOptions{DryRun: true})
	for _, s := range []string{"acme", "globex"} {
		// The before step fills acme's NULL notes, so the NOT NULL check passes in the plan too.
		if r := plan.Result(s); r.Action != controlplane.ActionPlanned || !slices.Equal(r.Steps, []string{"crm/fill_blank_notes", "crm/copy_remarks"}) || len(r.DataChecks) != 0 {
			t.Fatalf("plan of %s: %+v", s, r)
		}
	}
	if got := rowsOf(e, "tenant_acme.contacts", "notes"); !slices.Equal(got, []string{"first", "<null>"}) {
		t.Fatalf("a plan changed rows: %v", got)
	}
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionApplied] != 2 {
		t.Fatalf("steps pass: %+v", pass.Results)
	}
	if got := rowsOf(e, "tenant_acme.contacts", "email", "notes", "remarks"); !slices.Equal(got, []string{"a@x|first|first!", "b@x|-;-|-;-!"}) {
		t.Fatalf("acme after the steps: %v", got)
	}
	if got := rowsOf(e, "tenant_globex.contacts", "email", "notes", "remarks"); !slices.Equal(got, []string{"g@x|only|only!"}) {
		t.Fatalf("globex after the steps: %v", got)
	}
	for _, s := range []string{"acme", "globex"} {
		if got := stepsOf(e, s); !slices.Equal(got, []string{"crm/copy_remarks ran", "crm/fill_blank_notes ran"}) {
			t.Fatalf("%s's recorded steps: %v", s, got)
		}
		e.DebugHealthy(s)
	}
	// A tenant made now gets the final tables; its steps are recorded as not needed.
	e.Create("initech")
	if got := stepsOf(e, "initech"); !slices.Equal(got, []string{"crm/copy_remarks not_needed", "crm/fill_blank_notes not_needed"}) {
		t.Fatalf("initech's recorded steps: %v", got)
	}
	// Never again: not on a pass, not on a reconcile of the tenant alone.
	e.Exec(`UPDATE tenant_acme.contacts SET remarks = 'kept'`)
	pass = reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 3 || len(inspected(pass)) != 0 {
		t.Fatalf("pass after the steps: %+v", pass.Results)
	}
	r, err := e.P.Reconcile(e.Ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{})
	if err != nil || r.Action != controlplane.ActionUnchanged || len(r.Steps) != 0 {
		t.Fatalf("acme reconciled alone: %+v %v", r, err)
	}
	if got := rowsOf(e, "tenant_acme.contacts", "remarks"); !slices.Equal(got, []string{"kept", "kept"}) {
		t.Fatalf("a step ran twice: %v", got)
	}
}

func TestFailingStepRollsBackItsTenantAlone(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.contacts (email, notes) VALUES ('a@x', 'not a number')`)
	e.Exec(`INSERT INTO tenant_globex.contacts (email, notes) VALUES ('g@x', '42')`)
	acmeRows := rowsOf(e, "tenant_acme.contacts", "id", "email", "notes", "updated_at")
	src := strings.Replace(crmV1, `  index "contacts_email_idx" {`, `  column "amount" {
    type = integer
    null = true
  }
  index "contacts_email_idx" {`, 1) + `migration "amount_from_notes" {
  run = "after"
  sql = "UPDATE contacts SET amount = notes::integer"
}
`
	e.WriteModule("crm", src)
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if r := pass.Result("acme"); r.Action != controlplane.ActionFailed || !strings.Contains(r.Error, "crm/amount_from_notes") || !strings.Contains(r.Error, "crm.hcl:") {
		t.Fatalf("acme: %+v", r)
	}
	if r := pass.Result("globex"); r.Action != controlplane.ActionApplied {
		t.Fatalf("globex: %+v", r)
	}
	if slices.Contains(e.Columns("tenant_acme", "contacts"), "amount") || len(stepsOf(e, "acme")) != 0 {
		t.Fatalf("acme half-applied: %v, steps %v", e.Columns("tenant_acme", "contacts"), stepsOf(e, "acme"))
	}
	if got := rowsOf(e, "tenant_acme.contacts", "id", "email", "notes", "updated_at"); !slices.Equal(got, acmeRows) {
		t.Fatalf("acme's rows changed: %v", got)
	}
	if got := rowsOf(e, "tenant_globex.contacts", "amount"); !slices.Equal(got, []string{"42"}) || !slices.Equal(stepsOf(e, "globex"), []string{"crm/amount_from_notes ran"}) {
		t.Fatalf("globex: %v %v", got, stepsOf(e, "globex"))
	}
}

func TestStepTextIsNeverSplit(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.contacts (email) VALUES ('a@x')`)
	e.WriteModule("crm", crmV1+`migration "two_in_one" {
  run = "before"
  sql = "UPDATE contacts SET notes = 'x'; DROP TABLE contacts"
}
`)
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	for _, s := range []string{"acme", "globex"} {
		if r := pass.Result(s); r.Action != controlplane.ActionFailed || !strings.Contains(r.Error, "multiple commands") {
			t.Fatalf("%s: %+v", s, r)
		}
		if !slices.Contains(e.Tables("tenant_"+s), "contacts") {
			t.Fatalf("%s lost its table", s)
		}
	}
	if got := rowsOf(e, "tenant_acme.contacts", "email", "notes"); !slices.Equal(got, []string{"a@x|<null>"}) {
		t.Fatalf("acme's rows: %v", got)
	}
}

func TestBadMigrationBlocksAreRefused(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	for _, bad := range []struct{ src, want string }{
		{"migration \"x\" {\n  run = \"sometime\"\n  sql = \"SELECT 1\"\n}\n", `run is "before" or "after"`},
		{"migration \"x\" {\n  run = \"after\"\n}\n", `needs sql`},
		{"migration \"x\" {\n  run = \"after\"\n  sql = [\"SELECT 1\", 2]\n}\n", `string or a list of strings`},
		{"migration \"x\" {\n  run = \"after\"\n  sql = \"SELECT 1\"\n}\nmigration \"x\" {\n  run = \"after\"\n  sql = \"SELECT 2\"\n}\n", `already declared`},
		{"migration \"x\" {\n  run = \"after\"\n  sql = \"\"\n}\n", `empty`},
		{"migration \"x\" {\n  run = \"after\"\n  sql = \"SELECT 1\"\n  when = \"now\"\n}\n", `no attribute "when"`},
	} {
		if err := writeModuleErr(e, "crm", crmV1+bad.src); err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "crm.hcl:") {
			t.Errorf("bad migration block: %v, want %q with file and line", err, bad.want)
		}
	}
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("pass after refused modules: %+v", pass.Results)
	}
}

// TestKillMidMigrationStep kills a reconcile with SIGKILL between the two statements of a
// migration step in one tenant: every tenant has the step fully run and recorded, or not at all.
func TestKillMidMigrationStep(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	const n = 8
	for i := 0; i < n; i++ {
		s := fmt.Sprintf("t%02d", i)
		e.Create(s)
		e.Exec(`INSERT INTO tenant_` + s + `.categories (name) VALUES ('c')`)
		e.Exec(`INSERT INTO tenant_` + s + `.contacts (email) VALUES ('a@x')`)
	}
	e.WriteModule("crm", crmV1+`migration "mark" {
  run = "after"
  sql = [
    "UPDATE categories SET description = 'step'",
    "UPDATE contacts SET notes = 'step'",
  ]
}
`)
	// t04's second statement waits for this lock; SHARE mode lets its first one through.
	blocker, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.ExecContext(e.Ctx, `LOCK TABLE tenant_t04.contacts IN SHARE MODE`); err != nil {
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
	deadline := time.Now().Add(60 * time.Second)
	for e.Count(`SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
		WHERE NOT l.granted AND c.relname = 'contacts' AND c.relnamespace = 'tenant_t04'::regnamespace`) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child never reached tenant t04's step; output:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	blocker.Rollback()
	untilKilledChildIsDone(t, e)

	var ran, notRun int
	for i := 0; i < n; i++ {
		s := fmt.Sprintf("t%02d", i)
		first := e.Count(`SELECT count(*) FROM tenant_` + s + `.categories WHERE description = 'step'`)
		second := e.Count(`SELECT count(*) FROM tenant_` + s + `.contacts WHERE notes = 'step'`)
		recorded := len(stepsOf(e, s))
		switch {
		case first == 1 && second == 1 && recorded == 1:
			ran++
		case first == 0 && second == 0 && recorded == 0:
			notRun++
		default:
			t.Fatalf("%s has the step half done: first statement %d, second %d, recorded %d", s, first, second, recorded)
		}
	}
	if ran == 0 || notRun == 0 {
		t.Fatalf("the kill did not land mid-rollout: %d ran, %d not", ran, notRun)
	}
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Failed() || pass.Counts[controlplane.ActionApplied] != notRun {
		t.Fatalf("pass after the kill: %+v", pass.Counts)
	}
	for i := 0; i < n; i++ {
		if s := fmt.Sprintf("t%02d", i); len(stepsOf(e, s)) != 1 || e.Count(`SELECT count(*) FROM tenant_`+s+`.contacts WHERE notes = 'step'`) != 1 {
			t.Fatalf("%s after the next pass: %v", s, stepsOf(e, s))
		}
	}
}

// An archived tenant keeps the steps it ran: restored, it runs none of them again, and a purge
// forgets them; the other tenant's record is left alone throughout.
func TestArchiveKeepsMigrationSteps(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.WriteModule("crm", crmV1)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.contacts (email, notes) VALUES ('a@x', 'first')`)
	e.WriteModule("crm", crmSteps)
	reconcileAll(t, e, controlplane.ReconcileOptions{})
	want := []string{"crm/copy_remarks ran", "crm/fill_blank_notes ran"}
	if got := stepsOf(e, "acme"); !slices.Equal(got, want) {
		t.Fatalf("acme's steps: %v", got)
	}
	acme := ident.MustParseSlug("acme")
	if _, err := e.P.ArchiveTenant(e.Ctx, acme); err != nil {
		t.Fatal(err)
	}
	if got := stepsOf(e, "acme"); !slices.Equal(got, want) {
		t.Fatalf("acme's steps while archived: %v", got)
	}
	if _, err := e.P.RestoreTenant(e.Ctx, acme); err != nil {
		t.Fatal(err)
	}
	reconcileAll(t, e, controlplane.ReconcileOptions{})
	if got := rowsOf(e, "tenant_acme.contacts", "remarks"); !slices.Equal(got, []string{"first!"}) {
		t.Fatalf("a restored tenant ran a step again: %v", got)
	}
	if _, err := e.P.ArchiveTenant(e.Ctx, acme); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.PurgeTenant(e.Ctx, acme); err != nil {
		t.Fatal(err)
	}
	if got := stepsOf(e, "acme"); len(got) != 0 {
		t.Fatalf("acme's steps after purge: %v", got)
	}
	if got := stepsOf(e, "globex"); !slices.Equal(got, want) {
		t.Fatalf("globex's steps: %v", got)
	}
}
