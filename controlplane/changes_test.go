package controlplane_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/ident"
)

// schemaListener LISTENs on change tracking's channel.
type schemaListener struct {
	t    *testing.T
	conn *pgx.Conn
}

func listenSchemas(t *testing.T, e *cptest.Env) *schemaListener {
	t.Helper()
	conn, err := pgx.Connect(e.Ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(e.Ctx, "LISTEN "+controlplane.NotifySchemas); err != nil {
		t.Fatal(err)
	}
	return &schemaListener{t: t, conn: conn}
}

// next is the payload of the next notification, waited for up to 10 s.
func (l *schemaListener) next() string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := l.conn.WaitForNotification(ctx)
	if err != nil {
		l.t.Fatalf("no notification on %s: %v", controlplane.NotifySchemas, err)
	}
	return n.Payload
}

func changed(t *testing.T, e *cptest.Env) []string {
	t.Helper()
	slugs, err := e.P.ChangedTenants(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range slugs {
		out = append(out, s.String())
	}
	slices.Sort(out)
	return out
}

func TestChangeTrackingRecordsDDLMadeOutsideErpctl(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	ok, err := e.P.EnableChangeTracking(e.Ctx)
	if err != nil || !ok {
		t.Fatalf("enable change tracking as a superuser: %v %v", ok, err)
	}
	if ok, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("enable it again: %v %v", ok, err)
	}
	l := listenSchemas(t, e)

	// DDL by hand on one tenant: recorded and notified, for that tenant only.
	e.Exec(`DROP TABLE tenant_acme.stock_items`)
	if got := l.next(); got != "acme" {
		t.Fatalf("notified %q", got)
	}
	if got := changed(t, e); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("changed tenants: %v", got)
	}
	if got := changed(t, e); got != nil {
		t.Fatalf("changed tenants claimed twice: %v", got)
	}

	// An incremental pass reconciles that tenant only; erpctl's own DDL (this repair, a new
	// tenant) is not recorded, so it wakes no pass of its own.
	pass, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{Only: []ident.Slug{ident.MustParseSlug("acme")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pass.Results) != 1 || pass.Result("acme").Action != controlplane.ActionApplied {
		t.Fatalf("incremental pass: %+v", pass.Results)
	}
	e.Create("initech")
	e.Exec(`CREATE TABLE public.not_a_tenant (id int)`)
	e.Exec(`ALTER TABLE tenant_globex.products ADD COLUMN note text`)
	if got := l.next(); got != "globex" {
		t.Fatalf("after erpctl's own DDL, notified %q before globex's change", got)
	}
	if got := changed(t, e); !slices.Equal(got, []string{"globex"}) {
		t.Fatalf("changed tenants: %v", got)
	}

	// A tenant schema dropped whole by hand is recorded too; a tenant deleted by erpctl is not.
	if err := e.P.DeleteTenant(e.Ctx, ident.MustParseSlug("globex")); err != nil {
		t.Fatal(err)
	}
	e.Exec(`DROP SCHEMA tenant_initech CASCADE`)
	if got := l.next(); got != "initech" {
		t.Fatalf("notified %q", got)
	}

	// Change tracking never makes the DDL it watches fail: with its table gone, DDL still runs.
	e.Exec(`ALTER TABLE erpctl.changed_schemas RENAME TO changed_schemas_away`)
	e.Exec(`ALTER TABLE tenant_acme.products ADD COLUMN note text`)
	e.Exec(`ALTER TABLE erpctl.changed_schemas_away RENAME TO changed_schemas`)
	if cols := e.Columns("tenant_acme", "products"); !slices.Contains(cols, "note") {
		t.Fatalf("the DDL did not run: %v", cols)
	}
}

func TestChangeTrackingNeedsASuperuser(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	var suffix [4]byte
	rand.Read(suffix[:])
	role := "erpctl_plain_" + hex.EncodeToString(suffix[:])
	e.Exec(`CREATE ROLE ` + role + ` LOGIN PASSWORD 'plain'`)
	t.Cleanup(func() { e.DB.Exec(`DROP OWNED BY ` + role); e.DB.Exec(`DROP ROLE ` + role) })
	e.Exec(`GRANT ALL ON SCHEMA erpctl, tenant_acme, tenant_globex TO ` + role)
	e.Exec(`GRANT ALL ON ALL TABLES IN SCHEMA erpctl TO ` + role)
	e.Exec(`GRANT ALL ON ALL SEQUENCES IN SCHEMA erpctl TO ` + role)
	e.Exec(`ALTER TABLE tenant_acme.products OWNER TO ` + role)
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "plain")
	plain, err := controlplane.Open(e.Ctx, controlplane.Config{DatabaseURL: u.String(), ModulesDir: e.ModulesDir})
	if err != nil {
		t.Fatalf("open as %s: %v", role, err)
	}
	defer plain.Close()

	// Not a superuser: nothing is installed, and it says so.
	if ok, err := plain.EnableChangeTracking(e.Ctx); err != nil || ok {
		t.Fatalf("enable change tracking without a superuser: %v %v", ok, err)
	}
	if n := e.Count(`SELECT count(*) FROM pg_event_trigger`); n != 0 {
		t.Fatalf("%d event triggers installed without a superuser", n)
	}
	// Once a superuser installed it, it is on for everyone, and DDL by a role with no rights on
	// the catalog's function is recorded.
	if ok, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("enable change tracking as a superuser: %v %v", ok, err)
	}
	if ok, err := plain.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("installed by a superuser, seen by %s: %v %v", role, ok, err)
	}
	conn, err := pgx.Connect(e.Ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(e.Ctx)
	if _, err := conn.Exec(e.Ctx, `ALTER TABLE tenant_acme.products ADD COLUMN note text`); err != nil {
		t.Fatal(err)
	}
	if got := changed(t, e); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("changed tenants after DDL by %s: %v", role, got)
	}
}

// attrLog records one attribute of each log record whose message starts with msg: what a test
// reads of the control plane's debug log.
type attrLog struct {
	msg, key string
	mu       sync.Mutex
	vals     []slog.Value
}

func (l *attrLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *attrLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *attrLog) WithGroup(string) slog.Handler            { return l }
func (l *attrLog) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, l.msg) {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == l.key {
			l.mu.Lock()
			l.vals = append(l.vals, a.Value)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// last is the last value recorded as an integer, -1 when there is none.
func (l *attrLog) last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.vals) == 0 {
		return -1
	}
	return l.vals[len(l.vals)-1].Int64()
}

// texts is every value recorded, as text.
func (l *attrLog) texts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.vals))
	for i, v := range l.vals {
		out[i] = v.String()
	}
	return out
}

// A rollout's pass groups the tenants it moves by the fingerprint their last apply recorded
// while change tracking vouches for it, so that it does not read the whole fleet's catalog; DDL
// by hand that tracking saw sends its tenant to be read, and DDL that bypassed tracking is found
// all the same (the group's SQL fails on it, or the next pass reads the schema).
func TestRolloutTrustsRecordedFingerprintsWhileTracked(t *testing.T) {
	t.Parallel()
	log := &attrLog{msg: "tenants read", key: "trusted"} // each pass's count of tenants trusted
	e := cptest.NewWith(t, controlplane.Config{Logger: slog.New(log)})
	for _, s := range []string{"acme", "globex", "initech", "umbrella"} {
		e.Create(s)
	}
	// Without change tracking, every schema is read.
	e.WriteModule("product", productWithBarcode(t))
	if pass := e.ReconcileAll(); pass.Counts[controlplane.ActionApplied] != 4 || log.last() != 0 {
		t.Fatalf("rollout without change tracking: %v, %d trusted", pass.Counts, log.last())
	}
	if ok, err := e.P.EnableChangeTracking(e.Ctx); err != nil || !ok {
		t.Fatalf("enable change tracking: %v %v", ok, err)
	}
	// acme: a column dropped by hand, which tracking records. Made with the event triggers
	// bypassed, which nothing records: globex (the first of the trusted tenants, whose
	// inspection would plan the group) has the column the next change adds, of a type that
	// cannot be changed without losing data, and umbrella has it already as it will be.
	e.Exec(`ALTER TABLE tenant_acme.products DROP COLUMN description`)
	e.Exec(`SET session_replication_role = replica; ALTER TABLE tenant_globex.products ADD COLUMN weight text; RESET session_replication_role`)
	e.Exec(`SET session_replication_role = replica; ALTER TABLE tenant_umbrella.products ADD COLUMN weight numeric; RESET session_replication_role`)
	if got := e.Count(`SELECT count(*) FROM erpctl.changed_schemas`); got != 1 {
		t.Fatalf("changed schemas: %d, want acme's alone", got)
	}
	e.WriteModule("product", strings.Replace(productWithBarcode(t), `  column "barcode" {`, `  column "weight" {
    type = numeric
    null = true
  }
  column "barcode" {`, 1))
	pass := e.ReconcileAll()
	// globex is Blocked on its own change; had its plan been taken as the group's, initech and
	// umbrella would be Blocked too.
	if r := pass.Result("globex"); r.Action != controlplane.ActionBlocked {
		t.Errorf("globex: %s %s, want blocked", r.Action, r.Error)
	}
	for _, s := range []string{"acme", "initech"} {
		if r := pass.Result(s); r.Action != controlplane.ActionApplied {
			t.Errorf("%s: %s %s, want applied", s, r.Action, r.Error)
		}
	}
	// umbrella's group SQL failed on the column it has, and its own inspection found nothing
	// more to do.
	if r := pass.Result("umbrella"); r.Action != controlplane.ActionApplied && r.Action != controlplane.ActionUnchanged {
		t.Errorf("umbrella: %s %s", r.Action, r.Error)
	}
	// globex, initech and umbrella were trusted; acme was read.
	if got := log.last(); got != 3 {
		t.Fatalf("trusted %d tenants, want 3 (all but acme)", got)
	}
	for _, s := range []string{"acme", "initech", "umbrella"} {
		cols := e.Columns("tenant_"+s, "products")
		if !slices.Contains(cols, "description") || !slices.Contains(cols, "weight") || !slices.Contains(cols, "barcode") {
			t.Errorf("%s: products has %v", s, cols)
		}
		if got := e.Strings(`SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'products' AND column_name = 'weight'`, "tenant_"+s); !slices.Equal(got, []string{"numeric"}) {
			t.Errorf("%s: weight is %v, want numeric", s, got)
		}

	}
	// What was recorded is true: a pass that reads every schema finds nothing to do.
	if pass := e.ReconcileAll(); pass.Counts[controlplane.ActionUnchanged] != 4 {
		t.Fatalf("pass after the rollout: %v", pass.Counts)
	}
	// A dry run reads every schema, as before.
	if _, err := e.P.ReconcileAll(e.Ctx, controlplane.ReconcileOptions{DryRun: true}); err != nil || log.last() != 0 {
		t.Fatalf("dry run: %v, %d trusted", err, log.last())
	}
}
