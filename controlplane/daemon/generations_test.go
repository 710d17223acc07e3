package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/internal/ident"
)

// salesV1 is a module as a daemon's files have it; salesV2 as an operator edits it: the table
// renamed (declared), the default changed ('draft' to 'pending') and a column added.
const salesV1 = `schema "tenant" {}
table "sales_orders" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "status" {
    type    = text
    default = "draft"
  }
}
`

const salesV2 = `schema "tenant" {}
rename "table" {
  from = "sales_orders"
  to   = "orders"
}
table "orders" {
  schema = schema.tenant
  column "ref" {
    type = text
  }
  column "status" {
    type    = text
    default = "pending"
  }
  column "note" {
    type = text
    null = true
  }
}
`

// genFleet makes tenants with salesV1 published and a row of their own each, and a token each.
func genFleet(t *testing.T, e *cptest.Env, slugs ...string) map[string]string {
	t.Helper()
	e.WriteModule("sales", salesV1)
	tokens := map[string]string{}
	for _, s := range slugs {
		e.Create(s)
		e.Exec(fmt.Sprintf(`INSERT INTO tenant_%s.sales_orders (ref) VALUES ('%s-1')`, s, s))
		_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(s), "client")
		if err != nil {
			t.Fatal(err)
		}
		tokens[s] = secret
	}
	return tokens
}

// daemonWithFiles starts a daemon whose own module files are files (name → source): another
// process than the test's plane, with other files.
func daemonWithFiles(t *testing.T, e *cptest.Env, files map[string]string, log io.Writer, loop daemon.LoopConfig) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.Config
	cfg.ModulesDir, cfg.Registry = dir, nil
	other := *e
	other.Config = cfg
	return startDaemonWith(t, &other, daemon.Config{Loop: loop, Logger: slog.New(slog.NewJSONHandler(log, nil))})
}

// syncBuffer is a bytes.Buffer that the daemon's log and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// generationWatch samples every tenant's generation until stopped, and fails the test if one
// ever goes backwards.
type generationWatch struct {
	stop chan struct{}
	done chan struct{}
	back atomic.Value // string: the first step back seen
}

func watchGenerations(t *testing.T, e *cptest.Env) *generationWatch {
	w := &generationWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := map[string]int64{}
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			rows, err := e.DB.QueryContext(e.Ctx, `SELECT slug, coalesce(generation, 0) FROM erpctl.tenants`)
			if err != nil {
				continue
			}
			for rows.Next() {
				var s string
				var g int64
				if rows.Scan(&s, &g) == nil {
					if g < last[s] && w.back.Load() == nil {
						w.back.Store(fmt.Sprintf("%s went from generation %d back to %d", s, last[s], g))
					}
					last[s] = max(last[s], g)
				}
			}
			rows.Close()
		}
	}()
	return w
}

func (w *generationWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if back := w.back.Load(); back != nil {
		t.Fatal(back)
	}
}

// noEventStepsBack fails the test if a tenant's events record a generation lower than an
// earlier event's.
func noEventStepsBack(t *testing.T, e *cptest.Env) {
	t.Helper()
	back := e.Strings(`SELECT tenant || ': event ' || id || ' at generation ' || generation || ' after ' || prev
		FROM (SELECT tenant, id, generation, max(generation) OVER (PARTITION BY tenant ORDER BY id
			ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM erpctl.events WHERE generation IS NOT NULL) x
		WHERE generation < prev`)
	if len(back) > 0 {
		t.Fatalf("events step back: %v", back)
	}
}

// traffic sends GETs to both names of the table on every tenant until stopped, and counts
// the answers by status.
type traffic struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	status map[int]int
	bad    []string
}

func sendTraffic(d *testDaemon, tokens map[string]string) *traffic {
	tr := &traffic{stop: make(chan struct{}), status: map[int]int{}}
	client := &http.Client{Timeout: 30 * time.Second}
	for slug, token := range tokens {
		for _, path := range []string{"sales/sales-orders/", "sales/orders/"} {
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				for {
					select {
					case <-tr.stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", "http://"+d.addr+"/api/"+slug+"/"+path, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					tr.mu.Lock()
					tr.status[resp.StatusCode]++
					if resp.StatusCode >= 500 && len(tr.bad) < 5 {
						tr.bad = append(tr.bad, fmt.Sprintf("%s %s: %d %s", slug, path, resp.StatusCode, b))
					}
					tr.mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}
	return tr
}

func (tr *traffic) end(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	t.Logf("answers by status: %v", tr.status)
	if len(tr.bad) > 0 {
		t.Fatalf("server errors under traffic: %v", tr.bad)
	}
	if tr.status[200] == 0 {
		t.Fatal("no request was answered")
	}
}

// checkSalesV2 fails unless every tenant has the renamed table with the new default and column,
// and its own row and nobody else's.
func checkSalesV2(t *testing.T, e *cptest.Env, slugs ...string) {
	t.Helper()
	for _, s := range slugs {
		if got := e.Strings(`SELECT ref FROM tenant_` + s + `.orders ORDER BY ref`); strings.Join(got, ",") != s+"-1" {
			t.Errorf("%s's rows: %v", s, got)
		}
		def := e.Strings(`SELECT column_default FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders' AND column_name = 'status'`, "tenant_"+s)
		if len(def) != 1 || !strings.Contains(def[0], "pending") {
			t.Errorf("%s's default: %v", s, def)
		}
		if cols := e.Columns("tenant_"+s, "orders"); !strings.Contains(strings.Join(cols, ","), "note") {
			t.Errorf("%s's columns: %v", s, cols)
		}
		if tables := e.Tables("tenant_" + s); strings.Contains(strings.Join(tables, ","), "sales_orders") {
			t.Errorf("%s still has sales_orders: %v", s, tables)
		}
	}
}

// A daemon started with the old module files and a CLI (the test's plane) that publishes a
// rename, a changed default and a new column, and reconciles: under requests on every tenant,
// through both names, every tenant reaches the new generation within two passes and stays
// there; no event steps back, no request gets a server error, and the daemon says once that its
// files differ.
func TestDaemonWithOldFilesFollowsTheCatalog(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	slugs := []string{"acme", "globex", "initech", "hooli"}
	tokens := genFleet(t, e, slugs...)
	var log syncBuffer
	d := daemonWithFiles(t, e, map[string]string{"sales": salesV1}, &log, daemon.LoopConfig{Interval: 50 * time.Millisecond})
	d.waitPass(t)
	w := watchGenerations(t, e)
	tr := sendTraffic(d, tokens)
	time.Sleep(100 * time.Millisecond)

	e.WriteModule("sales", salesV2)
	gen, _, err := e.P.Generations().Latest(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The CLI applies the new generation itself, as erpctl reconcile --all --publish does, while
	// the daemon's passes (woken by the publish) do too: each takes the tenants the other does
	// not hold. Once the CLI is done, two of the daemon's passes at most see every tenant there.
	cli := make(chan error, 1)
	go func() {
		_, err := e.P.ReconcileAll(context.WithoutCancel(e.Ctx), controlplane.ReconcileOptions{})
		cli <- err
	}()
	select {
	case err := <-cli:
		if err != nil {
			t.Fatalf("the CLI's reconcile: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the CLI's reconcile did not end within 60s")
	}
	for i := 0; ; i++ {
		pass := d.waitPass(t)
		if n := e.Count(`SELECT count(*) FROM erpctl.tenants WHERE generation = $1`, gen); n == len(slugs) {
			break
		}
		if i == 2 {
			t.Fatalf("not every tenant at generation %d after two passes since the CLI's: %+v", gen, pass.Results)
		}
	}
	// And they stay there, through more passes and requests.
	for range 5 {
		d.waitPass(t)
	}
	time.Sleep(200 * time.Millisecond)
	tr.end(t)
	w.check(t)
	if n := e.Count(`SELECT count(*) FROM erpctl.tenants WHERE generation = $1 AND status = 'Ready'`, gen); n != len(slugs) {
		t.Fatalf("%d of %d tenants Ready at generation %d", n, len(slugs), gen)
	}
	noEventStepsBack(t, e)
	checkSalesV2(t, e, slugs...)
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE outcome IN ('failed', 'blocked')`); n != 0 {
		t.Fatalf("%d failed or blocked events", n)
	}
	if n := strings.Count(log.String(), "module files differ from the latest published generation"); n != 1 {
		t.Fatalf("the daemon warned %d times that its files differ, want once:\n%s", n, log.String())
	}
}

// Two daemon replicas with different files (a rolling deploy) during a staged rollout of a
// generation that the CLI published: every tenant moves forward once, none flaps.
func TestDaemonReplicasWithDifferentFilesDoNotFlap(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	slugs := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	tokens := genFleet(t, e, slugs...)
	var oldLog, newLog syncBuffer
	loop := daemon.LoopConfig{Interval: 50 * time.Millisecond, Canary: 1, MaxFailures: 1}
	dOld := daemonWithFiles(t, e, map[string]string{"sales": salesV1}, &oldLog, loop)
	dNew := daemonWithFiles(t, e, map[string]string{"sales": salesV2}, &newLog, loop)
	dOld.waitPass(t)
	dNew.waitPass(t)
	w := watchGenerations(t, e)
	trOld, trNew := sendTraffic(dOld, tokens), sendTraffic(dNew, tokens)

	e.WriteModule("sales", salesV2)
	gen, _, err := e.P.Generations().Latest(e.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every tenant at the new generation", func() bool {
		return e.Count(`SELECT count(*) FROM erpctl.tenants WHERE generation = $1`, gen) == len(slugs)
	})
	for range 3 {
		dOld.waitPass(t)
		dNew.waitPass(t)
	}
	trOld.end(t)
	trNew.end(t)
	w.check(t)
	noEventStepsBack(t, e)
	checkSalesV2(t, e, slugs...)
	// One apply per tenant reached the generation: nobody undid it and did it again.
	if n := e.Count(`SELECT count(*) FROM erpctl.events WHERE generation = $1 AND kind IN ('apply', 'repair')`, gen); n != len(slugs) {
		t.Fatalf("%d applies of generation %d, want one per tenant", n, gen)
	}
	// Each warned once: the new one while its files were ahead of the catalog, the old one once
	// they were behind.
	if o, n := strings.Count(oldLog.String(), "module files differ"), strings.Count(newLog.String(), "module files differ"); o != 1 || n != 1 {
		t.Fatalf("warnings that the files differ: %d from the old daemon, %d from the new one; want one each", o, n)
	}
}
