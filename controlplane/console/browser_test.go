package console_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/erpctl/erpctl/internal/ident"
)

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor waits until a JavaScript expression is true in the page, across navigations (an
// evaluation during one fails, and is tried again).
func waitFor(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!(`+expr+`)`)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "")`))
	t.Fatalf("waiting for %s: %v\npage: %s", expr, err, text)
}

// screenshot keeps a picture of the page in $ERPCTL_CONSOLE_SCREENSHOTS, when set, to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("ERPCTL_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := run(t, ctx, chromedp.FullScreenshot(100))
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

// click clicks the element a CSS selector finds in one step of the page's own: the regions that
// update themselves may replace an element between a query and a click of the protocol's.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitFor(t, ctx, `document.querySelector(`+strconv.Quote(sel)+`)`)
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+strconv.Quote(sel)+`).click()`))
}

func slugsOnPage(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[data-slug]")].map(r => r.dataset.slug)`))
}

// TestConsoleInABrowser drives the console in Chromium on a fleet of six tenants: the fleet
// page's counts and their live update, the tenants page's filters, a table dropped by hand
// shown missing and brought back by the Fix button, a POST without the CSRF token refused, a
// tenant token refused, the keyboard, a phone's width and the dark theme.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "bravo", "charlie", "delta", "echo", "foxtrot")
	f.Exec(`UPDATE erpctl.tenants SET status = 'Failed', status_reason = 'ApplyFailed', last_error = 'boom' WHERE slug = 'echo'`)
	f.Exec(`UPDATE erpctl.tenants SET status = 'Blocked', status_reason = 'DestructiveChange' WHERE slug = 'foxtrot'`)
	f.label("acme", "tier=free", "region=eu")
	f.label("bravo", "tier=free", "region=us")
	f.label("charlie", "tier=pro", "region=eu")
	f.label("delta", "tier=enterprise", "region=eu")
	f.label("echo", "tier=free", "region=ap")
	f.label("foxtrot", "ring=canary")
	ctx := newTab(t)
	u := f.srv.URL

	// The login link signs in and lands on the fleet page, with the right counts.
	do(t, ctx, chromedp.Navigate(f.loginURL("night-shift")), chromedp.WaitVisible(chromedp.ID("count-all")))
	if got := run(t, ctx, chromedp.Evaluate[string](`location.pathname + location.search`)); got != "/" {
		t.Fatalf("after the login link the browser is at %s", got)
	}
	counts := run(t, ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries(["all", "ready", "failed", "blocked", "pending", "held"].map(
		k => [k, document.getElementById("count-" + k).textContent]))`))
	if want := map[string]string{"all": "6", "ready": "4", "failed": "1", "blocked": "1", "pending": "0", "held": "0"}; !mapsEqual(counts, want) {
		t.Fatalf("fleet counts %v, want %v", counts, want)
	}
	screenshot(t, ctx, "fleet")
	// Live: a tenant created elsewhere shows without a reload.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	f.Create("golf", "product")
	waitFor(t, ctx, `document.getElementById("count-all").textContent === "7" && document.getElementById("count-ready").textContent === "5" && window.notReloaded === true`)

	// Filtering shows exactly the matching tenants.
	do(t, ctx, chromedp.Navigate(u+"/tenants"), chromedp.WaitVisible(chromedp.ID("q")))
	if got := slugsOnPage(t, ctx); len(got) != 7 {
		t.Fatalf("all tenants: %v", got)
	}
	// The keyboard: / goes to the search field.
	do(t, ctx, chromedp.KeyEvent("/"))
	if id := run(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); id != "q" {
		t.Fatalf("/ focused %q", id)
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("q").value = ""`))
	f.Exec(`UPDATE erpctl.tenants SET name = 'Echo Ltd' WHERE slug = 'foxtrot'`)
	do(t, ctx, chromedp.SendKeys(chromedp.ID("q"), "E\r"))
	waitFor(t, ctx, `location.search === "?q=E"`)
	if got := slugsOnPage(t, ctx); !slices.Equal(got, []string{"echo", "foxtrot"}) {
		t.Fatalf("name or slug starting e: %v", got)
	}
	do(t, ctx, chromedp.SetValue(chromedp.ID("status"), "Failed"), chromedp.Click(chromedp.ID("filter")))
	waitFor(t, ctx, `location.search.includes("status=Failed")`)
	if got := slugsOnPage(t, ctx); !slices.Equal(got, []string{"echo"}) || run(t, ctx, chromedp.Evaluate[string](`document.getElementById("tenant-count").textContent`)) != "1" {
		t.Fatalf("e, Failed: %v", got)
	}
	// A label selector, as kubectl takes it.
	do(t, ctx, chromedp.Navigate(u+"/tenants"), chromedp.WaitVisible(chromedp.ID("selector")),
		chromedp.SendKeys(chromedp.ID("selector"), "tier=free,region in (eu,us)\r"))
	waitFor(t, ctx, `location.search.includes("selector=")`)
	if got := slugsOnPage(t, ctx); !slices.Equal(got, []string{"acme", "bravo"}) {
		t.Fatalf("tier=free,region in (eu,us): %v", got)
	}
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("selector").value = ""`))
	do(t, ctx, chromedp.SendKeys(chromedp.ID("selector"), "tier!=free\r"))
	waitFor(t, ctx, `location.search.includes("selector=tier%21%3Dfree")`)
	if got := slugsOnPage(t, ctx); !slices.Equal(got, []string{"charlie", "delta", "foxtrot", "golf"}) {
		t.Fatalf("tier!=free: %v", got)
	}
	// A label on a tenant's row selects its like.
	click(t, ctx, `tr[data-slug="foxtrot"] a.label`)
	waitFor(t, ctx, `location.search === "?selector=ring%3Dcanary"`)
	if got := slugsOnPage(t, ctx); !slices.Equal(got, []string{"foxtrot"}) {
		t.Fatalf("ring=canary: %v", got)
	}
	// Sorting by a column's header.
	do(t, ctx, chromedp.Navigate(u+"/tenants"), chromedp.WaitVisible(chromedp.ID("q")))
	click(t, ctx, `th[aria-sort] a[href*="sort=slug"]`)
	waitFor(t, ctx, `location.search.includes("order=desc")`)
	if got := slugsOnPage(t, ctx); got[0] != "golf" || got[6] != "acme" {
		t.Fatalf("by slug, descending: %v", got)
	}
	screenshot(t, ctx, "tenants")

	// A table dropped by hand shows as missing, with the SQL a fix would run; Fix brings it back.
	f.Exec(`DROP TABLE tenant_charlie.products`)
	do(t, ctx, chromedp.Navigate(u+"/tenants/charlie"), chromedp.WaitVisible(chromedp.CSS(`tr[data-table="products"].state-missing`)))
	if sql := run(t, ctx, chromedp.Text(chromedp.CSS(`tr[data-table="products"] pre`))); !strings.Contains(sql, `CREATE TABLE "products"`) {
		t.Fatalf("the fix SQL of products: %q", sql)
	}
	screenshot(t, ctx, "tenant-missing")
	do(t, ctx, chromedp.Click(chromedp.ID("fix")), chromedp.WaitVisible(chromedp.ID("fixed")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-table="products"].state-ok`)))
	if !slices.Contains(f.Tables("tenant_charlie"), "products") {
		t.Fatal("Fix did not bring products back")
	}
	waitFor(t, ctx, `document.getElementById("events").textContent.includes("operator night-shift")`)
	if n := f.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'charlie' AND kind = 'repair' AND reason LIKE '%operator night-shift%'`); n != 1 {
		t.Fatalf("%d repair events with the operator's name", n)
	}
	screenshot(t, ctx, "tenant-fixed")

	// A POST without the CSRF token, from the console's own page with its cookie, is refused and
	// changes nothing.
	f.Exec(`DROP TABLE tenant_delta.products`)
	status := run(t, ctx, chromedp.Evaluate[int](`fetch("/tenants/delta/fix", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	forged := run(t, ctx, chromedp.Evaluate[int](`fetch("/tenants/delta/fix", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "csrf=forged"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != 403 || forged != 403 || slices.Contains(f.Tables("tenant_delta"), "products") ||
		f.Count(`SELECT count(*) FROM erpctl.events WHERE tenant = 'delta' AND kind = 'repair'`) != 0 {
		t.Fatalf("POST without the CSRF token: %d, forged: %d, tables %v", status, forged, f.Tables("tenant_delta"))
	}

	// A phone's width: nothing wider than the screen; and the dark theme.
	do(t, ctx, chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile), chromedp.Navigate(u+"/tenants/charlie"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-table="products"]`)))
	if w := run(t, ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`)); w[0] > w[1] {
		t.Fatalf("the tenant page is %d px wide on a %d px screen", w[0], w[1])
	}
	do(t, ctx, chromedp.Click(chromedp.ID("theme")), chromedp.Click(chromedp.ID("theme")))
	if bg := run(t, ctx, chromedp.Evaluate[string](`document.documentElement.dataset.theme + " " + getComputedStyle(document.body).backgroundColor`)); bg != "dark rgb(21, 24, 28)" {
		t.Fatalf("dark theme: %q", bg)
	}
	screenshot(t, ctx, "phone-dark")
}

// TestTenantTokenRefusedInABrowser: a tenant's token typed into the login form signs nobody in,
// and every page sends the browser back to the login form.
func TestTenantTokenRefusedInABrowser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "acme", "globex")
	_, secret, err := f.P.CreateToken(f.Ctx, ident.MustParseSlug("acme"), "ci")
	if err != nil {
		t.Fatal(err)
	}
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(f.srv.URL+"/tenants/acme"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), secret+"\r"), chromedp.WaitVisible(chromedp.ID("login-error")))
	for _, p := range pages {
		do(t, ctx, chromedp.Navigate(f.srv.URL+p), chromedp.WaitVisible(chromedp.ID("token")))
		if got := run(t, ctx, chromedp.Evaluate[string](`location.pathname`)); got != "/login" {
			t.Fatalf("%s with a tenant token's attempt: at %s", p, got)
		}
	}
	screenshot(t, ctx, "login-refused")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
