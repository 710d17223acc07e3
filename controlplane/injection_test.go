package controlplane_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// injectionState is what module text that escaped its statement could change: the tenants'
// catalog rows, the applied events, every schema with its fingerprint, and a canary in public.
func injectionState(e *cptest.Env) string {
	e.T.Helper()
	var b strings.Builder
	rows := e.Strings(`SELECT concat_ws(' ', slug, status, desired_hash, fingerprint, coalesce(last_applied_at::text, '-'))
		FROM erpctl.tenants ORDER BY slug`)
	fmt.Fprintf(&b, "tenants %v\n", rows)
	fmt.Fprintf(&b, "applied events %d\n", e.Count(`SELECT count(*) FROM erpctl.events WHERE outcome = 'applied'`))
	fmt.Fprintf(&b, "canary %v\n", e.Strings(`SELECT x::text FROM public.canary`))
	fps, err := schema.Fingerprints(e.Ctx, e.DB, "")
	if err != nil {
		e.T.Fatal(err)
	}
	for _, s := range e.Strings(`SELECT nspname::text FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema' ORDER BY 1`) {
		fmt.Fprintf(&b, "schema %s %s %v\n", s, fps[s], e.Tables(s))
	}
	return b.String()
}

// Module text that tries to end its statement and start another, through plan, tenant create
// and reconcile: each is a clear error (or refused at load), no shell command runs, public and
// the tenants stay as they were, and nothing is recorded as applied. Behind PgBouncer too, where
// statements go in pgx's exec mode.
func TestModuleTextCannotEscapeItsStatement(t *testing.T) {
	t.Parallel()
	cptest.DirectAndPooled(t, func(t *testing.T, e *cptest.Env) {
		e.Create("acme")
		e.Create("initech")
		e.Create("globex", "product") // does not follow every module: a bystander
		e.Exec(`CREATE TABLE public.canary (x int)`)
		e.Exec(`INSERT INTO public.canary VALUES (1)`)
		// The server, not this process, would run the command: a path it can write to.
		marker := fmt.Sprintf("/tmp/erpctl-injection-%d", time.Now().UnixNano())
		t.Cleanup(func() { os.Remove(marker) })

		table := func(inner string) string {
			return "schema \"tenant\" {}\ntable \"evil\" {\n  schema = schema.tenant\n  column \"q\" {\n    type = integer\n    null = true\n  }\n" + inner + "}\n"
		}
		cases := []struct{ name, src string }{
			{"index where", table("  index \"evil_q\" {\n    columns = [column.q]\n    where   = \"q > 0; COPY (SELECT 1) TO PROGRAM 'touch " + marker + "'\"\n  }\n")},
			{"index where with comment", table("  index \"evil_q\" {\n    columns = [column.q]\n    where   = \"q > 0; COPY (SELECT 1) TO PROGRAM 'touch " + marker + "'; --\"\n  }\n")},
			{"check expr", table("  check \"evil_q\" {\n    expr = \"q > 0)); DROP SCHEMA public CASCADE; --\"\n  }\n")},
			{"check expr copy", table("  check \"evil_q\" {\n    expr = \"q > 0)); COPY (SELECT 1) TO PROGRAM 'touch " + marker + "'; --\"\n  }\n")},
			{"column type", table("  column \"r\" {\n    type = sql(\"integer); DROP SCHEMA public CASCADE; --\")\n    null = true\n  }\n")},
			{"column type plain", table("  column \"r\" {\n    type = sql(\"integer; DROP SCHEMA public CASCADE\")\n    null = true\n  }\n")},
			{"default", table("  column \"r\" {\n    type    = integer\n    null    = true\n    default = sql(\"1; DROP SCHEMA public CASCADE; --\")\n  }\n")},
		}
		before := injectionState(e)
		parent := t
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.T = t
				defer func() { e.T = parent }()
				if err := os.WriteFile(e.ModulesDir+"/evil.hcl", []byte(c.src), 0o644); err != nil {
					t.Fatal(err)
				}
				defer func() {
					os.Remove(e.ModulesDir + "/evil.hcl")
					e.Publish()
				}()
				if err := e.P.ReloadModules(); err != nil {
					t.Logf("refused at load: %v", err)
					if !strings.Contains(err.Error(), "evil.hcl") {
						t.Fatalf("load error does not name the file: %v", err)
					}
					return
				}
				// Publishing stores text; planning it is where the statement must be refused.
				e.Publish()
				plan, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{DryRun: true})
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				for _, slug := range []string{"acme", "initech"} {
					if r := resultOf(plan, slug); r.Action != controlplane.ActionFailed || !refused(r.Error) {
						t.Errorf("plan of %s: %s %q, want a failure refusing the statement", slug, r.Action, r.Error)
					}
				}
				if r := resultOf(plan, "globex"); r.Action != controlplane.ActionUnchanged {
					t.Errorf("plan of globex: %+v", r)
				}
				if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("newco")}); err == nil || !refused(err.Error()) {
					t.Errorf("create: %v, want a refusal of the statement", err)
				} else {
					t.Logf("create: %v", err)
				}
				if _, err := e.P.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("newco2"), Modules: []string{"evil"}}); err == nil {
					t.Error("create with the module alone succeeded")
				}
				pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{IgnoreBackoff: true})
				if err != nil {
					t.Fatalf("reconcile: %v", err)
				}
				for _, slug := range []string{"acme", "initech"} {
					if r := resultOf(pass, slug); r.Action != controlplane.ActionFailed || !refused(r.Error) {
						t.Errorf("reconcile of %s: %s %q", slug, r.Action, r.Error)
					}
				}
				if _, err := os.Stat(marker); err == nil {
					t.Fatalf("module text ran a shell command: %s exists", marker)
				}
				// Failed tenants are marked so, but their schemas and last apply stay as they were.
				e.Exec(`UPDATE erpctl.tenants SET status = 'Ready', last_error = NULL, failures = 0, next_attempt_at = NULL`)
				e.Exec(`DELETE FROM erpctl.events WHERE outcome = 'failed'`)
				if after := injectionState(e); after != before {
					t.Fatalf("module text changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
	})
}

// resultOf is a pass's result for one tenant.
func resultOf(pass *controlplane.Pass, slug string) controlplane.Result {
	for _, r := range pass.Results {
		if r.Tenant == slug {
			return r
		}
	}
	return controlplane.Result{}
}

// refused reports whether PostgreSQL refused a statement as a whole: a second statement in it,
// or text that does not parse as one statement.
func refused(msg string) bool {
	return strings.Contains(msg, "cannot insert multiple commands into a prepared statement") || strings.Contains(msg, "syntax error")
}

// A name with a double quote never reaches SQL: the module is refused at load, with its line.
func TestQuotedNameRefusedAtLoad(t *testing.T) {
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	before := e.Tables("tenant_acme")
	src := "schema \"tenant\" {}\ntable \"evil\\\"; DROP SCHEMA public CASCADE; --\" {\n  schema = schema.tenant\n}\n"
	if err := os.WriteFile(e.ModulesDir+"/evil.hcl", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.P.ReloadModules()
	if err == nil || !strings.Contains(err.Error(), "evil.hcl:2: table name") {
		t.Fatalf("reload: %v, want a refusal naming evil.hcl:2", err)
	}
	// The last good modules stay in use; nothing changes.
	pass := reconcileAll(t, e, controlplane.ReconcileOptions{})
	if pass.Counts[controlplane.ActionUnchanged] != 2 {
		t.Fatalf("pass: %+v", pass.Counts)
	}
	if got := e.Tables("tenant_acme"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("tables changed: %v -> %v", before, got)
	}
	if _, err := controlplane.Open(e.Ctx, controlplane.Config{DatabaseURL: e.URL, ModulesDir: e.ModulesDir}); err == nil {
		t.Fatal("open with the bad module succeeded")
	}
}

// A plan compares a changed default as text: it never evaluates the module's expression, which
// could call a function that reaches the server's file system.
func TestPlanDoesNotEvaluateDefaults(t *testing.T) {
	e := cptest.New(t)
	marker := fmt.Sprintf("/tmp/erpctl-default-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(marker) })
	col := func(def string) string {
		return "schema \"tenant\" {}\ntable \"things\" {\n  schema = schema.tenant\n  column \"n\" {\n    type    = bigint\n    null    = true\n    default = " + def + "\n  }\n}\n"
	}
	e.WriteModule("things", col("0"))
	e.Create("acme")
	e.Create("globex")
	e.WriteModule("things", col(`sql("lo_export(lo_from_bytea(0, '\\x41'::bytea), '`+marker+`')")`))
	plan := reconcileAll(t, e, controlplane.ReconcileOptions{DryRun: true})
	for _, slug := range []string{"acme", "globex"} {
		r := resultOf(plan, slug)
		if r.Action != controlplane.ActionPlanned || len(r.SQL) != 1 || !strings.Contains(r.SQL[0], "SET DEFAULT lo_export") {
			t.Fatalf("plan of %s: %+v", slug, r)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("the plan evaluated the module's default: %s exists", marker)
	}
	if n := e.Count(`SELECT count(*) FROM pg_largeobject_metadata`); n != 0 {
		t.Fatalf("the plan left %d large objects", n)
	}
}

// A database whose create fingerprint was recorded by an older erpctl, from the ";"-joined
// plan: new tenants do not take it over, and the next pass finds them as desired.
func TestStaleCreateFingerprintIgnored(t *testing.T) {
	e := cptest.New(t)
	e.Create("acme")
	e.Exec(`INSERT INTO erpctl.meta (key, value)
		SELECT 'create_fingerprint:' || desired_hash, 'stale' FROM erpctl.tenants WHERE slug = 'acme'`)
	e.Exec(`DELETE FROM erpctl.meta WHERE key LIKE 'create_fingerprint:v2:%'`)
	p2, err := controlplane.Open(e.Ctx, controlplane.Config{DatabaseURL: e.URL, ModulesDir: e.ModulesDir})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.CreateTenant(e.Ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug("globex")}); err != nil {
		t.Fatal(err)
	}
	pass, err := p2.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pass.Counts[controlplane.ActionUnchanged] != 2 || len(inspected(pass)) != 0 {
		t.Fatalf("pass after create: %+v, inspected %v", pass.Counts, inspected(pass))
	}
}
