package daemon_test

import (
	"fmt"
	"io"
	"net/http"
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

// On Citus, a running daemon keeps serving a tenant while tenant move copies it to another
// worker: every read and write of the moving tenant and of the other one succeeds during the
// move, and every write lands in its own tenant; a module rolled out during a move fails no
// tenant. Runs on ERPCTL_TEST_CITUS_URL's cluster, and skips without it.
func TestCitusDaemonServesThroughAMove(t *testing.T) {
	t.Parallel()
	e := cptest.NewCitus(t)
	e.Create("acme")
	e.Create("globex")
	secrets := map[string]string{}
	for _, s := range []string{"acme", "globex"} {
		_, secret, err := e.P.CreateToken(e.Ctx, ident.MustParseSlug(s), "bot")
		if err != nil {
			t.Fatal(err)
		}
		secrets[s] = secret
	}
	// Enough rows that the copy takes a while.
	e.Exec(`INSERT INTO tenant_acme.products (sku, name) SELECT 'seed-' || g, 'Seed ' || g FROM generate_series(1, 20000) g`)
	// A short lock timeout: a rollout that met the move's locks would fail at once.
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: 200 * time.Millisecond, LockTimeout: 100 * time.Millisecond}})
	d.waitPass(t)

	var (
		stop     atomic.Bool
		served   atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 30 * time.Second}
	call := func(slug, method, path, body string) {
		req, err := http.NewRequestWithContext(e.Ctx, method, "http://"+d.addr+path, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+secrets[slug])
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 300 {
				served.Add(1)
				return
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		mu.Lock()
		failures = append(failures, fmt.Sprintf("%s %s: %v", method, path, err))
		mu.Unlock()
	}
	var writes [2]atomic.Int64 // acme's, globex's
	for i, slug := range []string{"acme", "globex"} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				call(slug, "GET", "/api/"+slug+"/product/products/?page_size=5&ordering=-id", "")
			}
		}()
		go func() {
			defer wg.Done()
			for n := 1; !stop.Load(); n++ {
				call(slug, "POST", "/api/"+slug+"/product/products/", fmt.Sprintf(`{"sku": "%s-%d", "name": "During the move"}`, slug, n))
				writes[i].Add(1)
			}
		}()
	}

	from := e.Strings(`SELECT node FROM (` + `SELECT DISTINCT n.nodename || ':' || n.nodeport AS node FROM pg_dist_shard s
		JOIN pg_dist_placement pl ON pl.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = pl.groupid
		WHERE s.logicalrelid = 'tenant_acme.products'::regclass) x`)[0]
	to := e.Strings(`SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE shouldhaveshards AND groupid <> 0
		AND nodename || ':' || nodeport <> $1 LIMIT 1`, from)[0]
	time.Sleep(300 * time.Millisecond) // the load is running before the move starts
	before := served.Load()
	res, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug("acme"), to)
	during := served.Load() - before
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moved acme from %s to %s in %v; %d requests answered during the move", from, to, res.Duration, during)
	if !res.Moved || res.From != from || res.To != to {
		t.Fatalf("move: %+v", res)
	}
	if len(failures) > 0 {
		t.Fatalf("%d requests failed around the move, first: %s", len(failures), failures[0])
	}
	if during == 0 {
		t.Fatal("no request was answered during the move")
	}
	// Every write is in its own tenant, on acme's new node for acme.
	if n := e.Count(`SELECT count(*) FROM tenant_acme.products WHERE name = 'During the move'`); n != int(writes[0].Load()) || n == 0 {
		t.Fatalf("acme has %d of its %d writes", n, writes[0].Load())
	}
	if n := e.Count(`SELECT count(*) FROM tenant_globex.products WHERE name = 'During the move'`); n != int(writes[1].Load()) || n == 0 {
		t.Fatalf("globex has %d of its %d writes", n, writes[1].Load())
	}
	for a, b := range map[string]string{"acme": "globex", "globex": "acme"} {
		if n := e.Count(`SELECT count(*) FROM tenant_` + a + `.products WHERE sku LIKE '` + b + `-%'`); n != 0 {
			t.Fatalf("%d of %s's writes are in %s", n, b, a)
		}
	}
	if n := e.Count(`SELECT count(*) FROM tenant_acme.products WHERE sku LIKE 'seed-%'`); n != 20000 {
		t.Fatalf("acme has %d of its 20000 seeded rows after the move", n)
	}
	// Move acme back, and let a module arrive while its rows are copied: the daemon rolls it
	// out to globex at once and to acme once the move lets go of it, and fails no tenant. (The
	// data API answers 503 for acme until then when the move outlasts its ready wait: the
	// tenant is behind its modules, and the reconcile that would bring it up waits for the move.)
	movec := make(chan error, 1)
	go func() {
		_, err := e.P.MoveTenant(e.Ctx, ident.MustParseSlug("acme"), from)
		movec <- err
	}()
	waitFor(t, "the move back to start", func() bool {
		return e.Count(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%citus_schema_move(%' AND state = 'active'`) > 0
	})
	e.WriteModule("crm", "schema \"tenant\" {}\ntable \"contacts\" {\n  schema = schema.tenant\n  column \"email\" {\n    type = text\n  }\n}\n")
	if err := <-movec; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollout to reach both tenants", func() bool {
		return e.Count(`SELECT count(*) FROM pg_tables WHERE tablename = 'contacts' AND schemaname IN ('tenant_acme', 'tenant_globex')`) == 2
	})
	if got := e.Strings(`SELECT tenant || ': ' || coalesce(error, '') FROM erpctl.events WHERE outcome = 'failed'`); len(got) != 0 {
		t.Fatalf("failed events around the move: %q", got)
	}
	for _, s := range []string{"acme", "globex"} {
		tn, err := e.P.GetTenant(e.Ctx, ident.MustParseSlug(s))
		if err != nil || tn.Status != controlplane.StatusReady {
			t.Fatalf("%s after the move: %+v %v", s, tn, err)
		}
		e.DebugHealthy(s)
	}
}
