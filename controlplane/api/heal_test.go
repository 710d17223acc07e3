package api_test

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/internal/ident"
)

// repairEvents counts a tenant's repair events, and returns the newest one's reason.
func (a *apiEnv) repairEvents(slug string) (int, string) {
	a.T.Helper()
	n := a.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = $1 AND kind = 'repair'`, slug)
	reasons := a.Strings(`SELECT coalesce(reason, '') FROM erpctl.events WHERE tenant = $1 AND kind = 'repair' ORDER BY id DESC LIMIT 1`, slug)
	if len(reasons) == 0 {
		return n, ""
	}
	return n, reasons[0]
}

func TestAPIRepairsATableDroppedByHand(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	for _, slug := range []string{"acme", "globex"} {
		w := a.must(201, "POST", "/api/"+slug+"/inventory/warehouses/", slug, `{"code": "W1", "name": "Main"}`)
		p := a.must(201, "POST", "/api/"+slug+"/product/products/", slug, `{"sku": "A-1", "name": "Anvil"}`)
		a.must(201, "POST", "/api/"+slug+"/inventory/stock-items/", slug,
			`{"product_id": `+strconv.FormatInt(idOf(t, p), 10)+`, "warehouse_id": `+strconv.FormatInt(idOf(t, w), 10)+`, "quantity": 3}`)
	}
	a.Exec(`DROP TABLE tenant_acme.stock_items`)

	// The next request on it succeeds: the table is back (empty: its rows went with it).
	r := a.must(200, "GET", stockURL, "acme", "")
	if r["count"].(float64) != 0 {
		t.Fatalf("stock items after the repair: %v", r)
	}
	n, why := a.repairEvents("acme")
	if n != 1 || !strings.Contains(why, "42P01") || !strings.Contains(why, "inventory/stock-items") || strings.Contains(why, "tenant_acme.") {
		t.Fatalf("acme's repair events: %d, reason %q", n, why)
	}
	rep := a.DebugHealthy("acme")
	if rep.Status != controlplane.StatusReady || rep.LastRepair == nil || rep.LastRepair.Kind != "repair" || *rep.LastRepair.Reason != why {
		t.Fatalf("debug tables after the repair: %+v", rep)
	}
	// The other tenant is untouched: its row is there, and nothing was repaired or applied.
	if n := a.Count(`SELECT count(*) FROM tenant_globex.stock_items WHERE quantity = 3`); n != 1 {
		t.Fatal("globex's stock item is gone")
	}
	if n := a.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'globex' AND kind <> 'create'`); n != 0 {
		t.Fatalf("globex has %d events besides its create", n)
	}
	a.must(200, "GET", "/api/globex/inventory/stock-items/", "globex", "")
}

func TestAPIRepairsAColumnDroppedByHand(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.Exec(`ALTER TABLE tenant_acme.products DROP COLUMN description`)
	p := a.must(201, "POST", productsURL, "acme", `{"sku": "D-1", "name": "Drill", "description": "cordless"}`)
	if p["description"] != "cordless" {
		t.Fatalf("created after the repair: %v", p)
	}
	if n, why := a.repairEvents("acme"); n != 1 || !strings.Contains(why, "42703") || !strings.Contains(why, "description") {
		t.Fatalf("acme's repair events: %d, reason %q", n, why)
	}
	if cols := a.Columns("tenant_globex", "products"); !slices.Contains(cols, "description") {
		t.Fatalf("globex's products: %v", cols)
	}
	if n, _ := a.repairEvents("globex"); n != 0 {
		t.Fatalf("globex was repaired %d times", n)
	}
	a.must(201, "POST", "/api/globex/product/products/", "globex", `{"sku": "D-1", "name": "Drill", "description": "corded"}`)
}

func TestAPIRepairThatNeedsADestructiveChangeAnswers503(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.must(201, "POST", productsURL, "acme", `{"sku": "A-1", "name": "Anvil"}`)
	// Turning the column back from integer to text is not a change erpctl makes on its own.
	a.Exec(`ALTER TABLE tenant_acme.products ALTER COLUMN name TYPE integer USING length(name)`)
	r := a.do("GET", productsURL+"?name__contains=anv", "acme", "")
	detail, _ := r.obj(t)["detail"].(string)
	if r.status != 503 || r.hdr.Get("Retry-After") == "" || !strings.Contains(detail, "product/products") ||
		!strings.Contains(detail, "destructive") {
		t.Fatalf("drift only a destructive change repairs: %s", r)
	}
	for _, internal := range []string{"tenant_acme", "ALTER", "SELECT", "name", "integer", "42"} {
		if strings.Contains(detail, internal) {
			t.Fatalf("the 503 says %q: %s", internal, detail)
		}
	}
	// Nothing dropped or converted: the column is still the integer it was made, with its row.
	if n := a.Count(`SELECT count(*) FROM tenant_acme.products WHERE name = 5`); n != 1 {
		t.Fatal("the repair touched the column")
	}
	tn, err := a.P.GetTenant(a.Ctx, ident.MustParseSlug("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if tn.Status != controlplane.StatusBlocked || tn.Reason != controlplane.ReasonDestructiveChange ||
		tn.LastError == nil || !strings.Contains(*tn.LastError, "data API") {
		t.Fatalf("acme after the refused repair: %+v", tn)
	}
	rep, err := a.P.DebugTables(a.Ctx, ident.MustParseSlug("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != controlplane.StatusBlocked || rep.LastRepair == nil || rep.LastRepair.Kind != "blocked" {
		t.Fatalf("debug tables after the refused repair: %+v", rep)
	}
	a.must(200, "GET", "/api/globex/product/products/?name__contains=anv", "globex", "")
}

func TestAPIConcurrentRequestsOnABrokenTenantMakeOneRepair(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{})
	a.Exec(`DROP TABLE tenant_acme.stock_items`)
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = doWith(a.h, "GET", stockURL, a.auth("acme"), "").status
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("request %d: %d", i, s)
		}
	}
	if got, _ := a.repairEvents("acme"); got != 1 {
		t.Fatalf("%d repair events for %d concurrent requests", got, n)
	}
	if got, _ := a.repairEvents("globex"); got != 0 {
		t.Fatalf("globex: %d repair events", got)
	}
}

func TestAPIRepairThatCannotFinishAnswers503(t *testing.T) {
	t.Parallel()
	a := newAPIEnv(t, api.Config{ReadyWait: 300 * time.Millisecond})
	a.Exec(`DROP TABLE tenant_acme.stock_items`)
	// The repair's foreign keys need a lock on products, held here: it cannot finish in ReadyWait.
	holder, err := a.DB.BeginTx(a.Ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(a.Ctx, `LOCK TABLE tenant_acme.products IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	r := a.do("GET", stockURL, "acme", "")
	detail, _ := r.obj(t)["detail"].(string)
	if r.status != 503 || r.hdr.Get("Retry-After") == "" || !strings.Contains(detail, "inventory/stock-items") ||
		strings.Contains(detail, "tenant_acme") || strings.Contains(detail, "stock_items") {
		t.Fatalf("a repair that cannot finish: %s", r)
	}
	if slices.Contains(a.Tables("tenant_acme"), "stock_items") {
		t.Fatal("half a repair was applied")
	}
	a.must(200, "GET", "/api/globex/inventory/stock-items/", "globex", "")
	holder.Rollback()
	// Once the lock is gone, a request repairs the tenant (after the cached answer expires).
	h := newHandler(a.P, api.Config{})
	if r := doWith(h, "GET", stockURL, a.auth("acme"), ""); r.status != 200 {
		t.Fatalf("after the lock: %s", r)
	}
}
