package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

// publishReadWrite writes a module file and publishes it in a transaction that may write while
// the database is read-only for everyone else (SetReadOnly): the last write before the refusals.
func publishReadWrite(t *testing.T, e *cptest.Env, name, src string) {
	t.Helper()
	publishAround(t, e, name, src, func() {})
}

// publishAround writes a module file and publishes it in a transaction that runs meanwhile
// before it commits: the generation's rows are written before, the commit (and the NOTIFY that
// wakes the daemon) after. On a disk that meanwhile fills, the publish is the last write that
// needs room.
func publishAround(t *testing.T, e *cptest.Env, name, src string, meanwhile func()) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.ModulesDir, name+".hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.P.ReloadModules(); err != nil {
		t.Fatal(err)
	}
	tx, err := e.DB.BeginTx(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(e.Ctx, `SET TRANSACTION READ WRITE`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.Generations().Publish(e.Ctx, tx, e.P.LocalModules(), "test", t.Name()); err != nil {
		t.Fatal(err)
	}
	meanwhile()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// While the database refuses writes, /readyz says so in a few words; a rollout in that time
// fails on every tenant without its status being written, and once writes return every one of
// them is reconciled and /readyz is ok again.
func TestReadyzWhileTheDatabaseRefusesWrites(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 100 * time.Millisecond}})
	waitFor(t, "first /readyz ok", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })

	e.SetReadOnly(true)
	// A generation published as the database turns read-only: its rollout fails on both tenants
	// and cannot be recorded.
	publishReadWrite(t, e, "product", strings.Replace(cptest.BuiltinSource(t, "product"),
		"table \"products\" {\n  schema = schema.tenant\n",
		"table \"products\" {\n  schema = schema.tenant\n  column \"barcode\" {\n    type = text\n    null = true\n  }\n", 1))
	var body string
	waitFor(t, "/readyz degraded", func() bool {
		var c int
		c, body = d.get(t, "/readyz")
		return c == 503 && strings.Contains(body, "read-only")
	})
	if strings.Contains(body, "SQLSTATE") || strings.Contains(body, "ERROR") || strings.Contains(body, "tenant_") {
		t.Fatalf("/readyz shows internals: %q", body)
	}
	// A client's write gets a 503 it may retry, with nothing of the server's message.
	req, _ := http.NewRequest("POST", "http://"+d.addr+"/api/acme/product/categories/", strings.NewReader(`{"name": "tools"}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || strings.Contains(string(b), "SQLSTATE") {
		t.Fatalf("POST while read-only: %d %q", resp.StatusCode, b)
	}
	for _, slug := range []string{"acme", "globex"} {
		if got := e.Columns("tenant_"+slug, "products"); strings.Contains(strings.Join(got, ","), "barcode") {
			t.Fatalf("%s got the column while read-only: %v", slug, got)
		}
	}

	e.SetReadOnly(false)
	waitFor(t, "/readyz ok again", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })
	waitFor(t, "both tenants rolled out", func() bool {
		return e.Count(`SELECT count(*) FROM information_schema.columns WHERE table_name = 'products'
			AND column_name = 'barcode' AND table_schema IN ('tenant_acme', 'tenant_globex')`) == 2 &&
			e.Count(`SELECT count(*) FROM erpctl.tenants WHERE status = $1`, controlplane.StatusReady) == 2
	})
	// Each tenant has its own column and nothing of the other's.
	e.Exec(`INSERT INTO tenant_acme.products (sku, name, barcode) VALUES ('a1', 'A', '123')`)
	if n := e.Count(`SELECT count(*) FROM tenant_globex.products`); n != 0 {
		t.Fatalf("globex sees %d rows", n)
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.categories`); n != 0 {
		t.Fatalf("the refused POST left %d rows", n)
	}
}

// send sends an API request with a tenant token and returns the status and body.
func (d *testDaemon) send(t *testing.T, method, path, secret, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// On a full disk, a write that needs a new page fails and a row that fits in a page the table
// has goes through. /readyz stays degraded until a write that needs new space commits: neither
// the daemon's passes nor the API's small writes make it say ok while the disk is full; once
// the disk has room, it is ok within seconds, and the refused write goes through when retried.
func TestReadyzStaysDegradedWhileTheDiskIsFull(t *testing.T) {
	t.Parallel()
	e, disk := cptest.NewOnSmallDisk(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.products (sku, name) VALUES ('a1', 'Anvil')`)
	e.Exec(`INSERT INTO tenant_globex.products (sku, name) VALUES ('g1', 'Gear')`)
	_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug("acme"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 100 * time.Millisecond}})
	d.waitPass(t)
	go func() { // passes go on all along; nothing waits for them here
		for range d.passes {
		}
	}()
	waitFor(t, "first /readyz ok", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })

	disk.Fill(t)
	// acme has no category yet: the first one needs the table's first page.
	if c, body := d.send(t, "POST", "/api/acme/product/categories/", secret, `{"name": "tools"}`); c != 503 {
		t.Fatalf("POST on a full disk: %d %s", c, body)
	}
	waitFor(t, "/readyz degraded", func() bool { c, body := d.get(t, "/readyz"); return c == 503 && strings.Contains(body, "disk is full") })
	// A row that fits in its page is updated, and the passes run and write what fits: none of
	// it shows that the disk has room, and /readyz says so for several probes.
	if c, body := d.send(t, "PATCH", "/api/acme/product/products/"+e.Strings(`SELECT id::text FROM tenant_acme.products`)[0]+"/", secret, `{"price": "12.50"}`); c != 200 {
		t.Fatalf("PATCH on a full disk: %d %s", c, body)
	}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, body := d.get(t, "/readyz"); c != 503 || !strings.Contains(body, "disk is full") {
			t.Fatalf("/readyz with the disk still full: %d %s", c, body)
		}
	}

	disk.Free(t)
	waitFor(t, "/readyz ok once the disk has room", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })
	if c, body := d.send(t, "POST", "/api/acme/product/categories/", secret, `{"name": "tools"}`); c != 201 {
		t.Fatalf("POST once the disk has room: %d %s", c, body)
	}
	if got := e.Strings(`SELECT name FROM tenant_acme.categories`); len(got) != 1 || got[0] != "tools" {
		t.Fatalf("acme's categories: %v", got)
	}
	if got := e.Strings(`SELECT sku || ' ' || price FROM tenant_acme.products UNION ALL SELECT 'globex ' || count(*) FROM tenant_globex.categories
		UNION ALL SELECT sku || ' ' || price FROM tenant_globex.products`); strings.Join(got, ",") != "a1 12.50,globex 0,g1 0.00" {
		t.Fatalf("rows after the full disk: %v", got)
	}
}

// With change tracking on, and no pass due for an hour, a module change on a full disk fails;
// once the disk has room the rollout is retried at once, not at the next full check: both
// tenants get the change, each keeps its rows, and /readyz is ok again.
func TestRolloutRetriedOnceTheDiskHasRoom(t *testing.T) {
	t.Parallel()
	e, disk := cptest.NewOnSmallDisk(t)
	e.Create("acme")
	e.Create("globex")
	e.Exec(`INSERT INTO tenant_acme.products (sku, name) VALUES ('a1', 'Anvil'), ('a2', 'Axe')`)
	e.Exec(`INSERT INTO tenant_globex.products (sku, name) VALUES ('g1', 'Gear')`)
	rows := map[string]string{"acme": e.Checksums("tenant_acme"), "globex": e.Checksums("tenant_globex")}
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour, FullCheck: time.Hour, TrackChanges: true}})
	d.waitPass(t)

	// A new table, whose index needs a page, published as the disk fills.
	publishAround(t, e, "notes", fmt.Sprintf(notesModule, ""), func() { disk.Fill(t) })
	waitFor(t, "/readyz degraded", func() bool { c, body := d.get(t, "/readyz"); return c == 503 && strings.Contains(body, "disk is full") })
	for _, s := range []string{"acme", "globex"} {
		if slices.Contains(e.Tables("tenant_"+s), "notes") {
			t.Fatalf("%s got notes on a full disk", s)
		}
	}

	disk.Free(t)
	waitFor(t, "both tenants rolled out", func() bool {
		return slices.Contains(e.Tables("tenant_acme"), "notes") && slices.Contains(e.Tables("tenant_globex"), "notes") &&
			e.Count(`SELECT count(*) FROM erpctl.tenants WHERE status = $1`, controlplane.StatusReady) == 2
	})
	waitFor(t, "/readyz ok", func() bool { c, _ := d.get(t, "/readyz"); return c == 200 })
	e.Exec(`INSERT INTO tenant_acme.notes (body) VALUES ('acme only')`)
	if n := e.Count(`SELECT count(*) FROM tenant_globex.notes`); n != 0 {
		t.Fatalf("globex sees %d notes", n)
	}
	e.Exec(`DELETE FROM tenant_acme.notes`)
	for s, want := range rows {
		got := e.Checksums("tenant_" + s)
		if !strings.Contains(got, "notes 0 \n") || strings.Replace(got, "notes 0 \n", "", 1) != want {
			t.Fatalf("%s's rows after the rollout:\n%s\nwant\n%s", s, got, want)
		}
	}
}

// --debug-listen serves pprof on its own listener, and nothing of it on the main one.
func TestDebugListenerServesPprof(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	addr := make(chan net.Addr, 1)
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Debug: daemon.DebugConfig{Listen: "127.0.0.1:0", OnListening: func(a net.Addr) { addr <- a }}})
	resp, err := http.Get("http://" + (<-addr).String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "heap profile") {
		t.Fatalf("heap profile: %d %.100q", resp.StatusCode, b)
	}
	if c, _ := d.get(t, "/debug/pprof/heap"); c == 200 {
		t.Fatal("the main listener serves pprof")
	}
}
