package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// TestAPIIsolationStress runs both tenants' requests at once over a pool of 4 connections, so
// that every connection serves both tenants in turn, and checks that no row ever crosses.
// The tenants' ids overlap (each table has its own identity), so a request that reached the
// wrong schema would find a row: the check is on what the rows say. It runs on a direct
// connection, and behind PgBouncer in transaction mode, where every transaction may land on a
// server connection another client's transaction (the control plane's, or the other tenant's)
// used last.
func TestAPIIsolationStress(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		a := newAPIEnv(t, api.Config{})
		stress(t, a, controlplane.Config{DatabaseURL: a.URL, MaxConns: 4})
	})
	t.Run("pgbouncer", func(t *testing.T) {
		t.Parallel()
		a := newAPIEnvOn(t, cptest.NewPooled(t), api.Config{})
		stress(t, a, controlplane.Config{DatabaseURL: a.URL, DirectDatabaseURL: a.DirectURL, MaxConns: 4})
		checkPoolerSessions(t, a)
	})
}

func stress(t *testing.T, a *apiEnv, cfg controlplane.Config) {
	p4, err := controlplane.Open(a.Ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p4.Close()
	if n := p4.Pool().Config().MaxConns; n != 4 {
		t.Fatalf("pool of %d", n)
	}
	srv := httptest.NewServer(newHandler(p4, api.Config{}))
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 32

	tenants := []string{"acme", "globex"}
	const workers, rounds = 6, 20
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Sprintf(format, args...):
		default:
		}
	}
	call := func(tenant, method, path, body string) (int, []byte) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+a.tok[tenant])
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			fail("%s %s: %v", method, path, err)
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// own checks that a row belongs to tenant.
	own := func(tenant string, row map[string]any, where string) {
		sku, _ := row["sku"].(string)
		if !strings.HasPrefix(sku, tenant+"-") || row["created_by"] != tenant+"-bot" {
			fail("%s: tenant %s got row %v", where, tenant, row)
		}
	}
	for _, tenant := range tenants {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base := "/api/" + tenant + "/product/products/"
				for i := range rounds {
					st, b := call(tenant, "POST", base, fmt.Sprintf(`{"sku": "%s-%d-%d", "name": "n", "price": "%d.50"}`, tenant, w, i, i))
					var row map[string]any
					if st != 201 || json.Unmarshal(b, &row) != nil {
						fail("create in %s: %d %s", tenant, st, b)
						return
					}
					own(tenant, row, "create")
					id := int64(row["id"].(float64))
					st, b = call(tenant, "GET", fmt.Sprintf("%s%d/", base, id), "")
					row = nil
					if st != 200 || json.Unmarshal(b, &row) != nil {
						fail("get in %s: %d %s", tenant, st, b)
						return
					}
					own(tenant, row, "get")
					// Low ids exist in both tenants.
					low := int64(i%5 + 1)
					if st, b = call(tenant, "PATCH", fmt.Sprintf("%s%d/", base, low), `{"description": "`+tenant+`"}`); st == 200 {
						row = nil
						json.Unmarshal(b, &row)
						own(tenant, row, "patch")
						if row["description"] != tenant {
							fail("patch in %s: %s", tenant, b)
						}
					} else if st != 404 {
						fail("patch in %s: %d %s", tenant, st, b)
					}
					st, b = call(tenant, "GET", base+"?limit=20&ordering=-id&price__gte=0", "")
					var page struct {
						Count   int              `json:"count"`
						Results []map[string]any `json:"results"`
					}
					if st != 200 || json.Unmarshal(b, &page) != nil {
						fail("list in %s: %d %s", tenant, st, b)
						return
					}
					for _, r := range page.Results {
						own(tenant, r, "list")
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, tenant := range tenants {
		s := "tenant_" + tenant
		if n := a.Count(`SELECT count(*) FROM ` + s + `.products`); n != workers*rounds {
			t.Errorf("%s: %d products, want %d", tenant, n, workers*rounds)
		}
		if n := a.Count(`SELECT count(*) FROM `+s+`.products WHERE sku NOT LIKE $1 OR created_by <> $2
			OR (description IS NOT NULL AND description <> $3)`, tenant+"-%", tenant+"-bot", tenant); n != 0 {
			t.Errorf("%s: %d rows of the other tenant", tenant, n)
		}
	}
}

// checkPoolerSessions checks, after a stress behind PgBouncer, that the server connections it
// hands out carry nothing of the requests that ran on them: not the data API's role, not a
// tenant's search_path. It holds as many transactions at once as PgBouncer has server
// connections for the database, so that each of them is looked at.
func checkPoolerSessions(t *testing.T, a *apiEnv) {
	const serverConns = pgtest.PoolSize
	pool, err := pgxpool.New(a.Ctx, a.URL+"&default_query_exec_mode=exec&pool_max_conns="+fmt.Sprint(serverConns))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	owner := a.Strings(`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()`)[0]
	type session struct{ user, role, searchPath, pid string }
	seen := make(chan session, serverConns)
	var wg sync.WaitGroup
	for range serverConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s session
			err := pgx.BeginFunc(a.Ctx, pool, func(tx pgx.Tx) error {
				return tx.QueryRow(a.Ctx, `SELECT current_user, current_setting('role'), current_setting('search_path'),
					pg_backend_pid()::text FROM pg_sleep(0.3)`).Scan(&s.user, &s.role, &s.searchPath, &s.pid)
			})
			if err != nil {
				t.Error(err)
			}
			seen <- s
		}()
	}
	wg.Wait()
	close(seen)
	pids := map[string]bool{}
	for s := range seen {
		pids[s.pid] = true
		if s.user != owner || s.role != "none" || s.searchPath != `"$user", public` {
			t.Errorf("a server connection behind PgBouncer runs as %q (role %q) with search_path %q; want %q, none, the default",
				s.user, s.role, s.searchPath, owner)
		}
	}
	if len(pids) < 2 {
		t.Errorf("PgBouncer served %d transactions at once on %d server connections", serverConns, len(pids))
	}
}
