package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/console"
	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	closeBrowser()
	os.Exit(code)
}

// fixture is a console over a fresh control plane, with an operator token.
type fixture struct {
	*cptest.Env
	srv   *httptest.Server
	op    *operators.Created // alice's token and login code
	token string             // alice's token
}

// newFixture starts a console over a fresh database with tenants slugs (product module only:
// fast to create).
func newFixture(t *testing.T, slugs ...string) *fixture {
	t.Helper()
	e := cptest.New(t)
	for _, s := range slugs {
		e.Create(s, "product")
	}
	c, err := console.New(console.Config{Plane: e.P, Generations: e.P.Generations(), Operators: e.P.Operators(), Rollouts: e.P.Rollouts(), Poll: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	op, err := e.P.Operators().Create(e.Ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{Env: e, srv: srv, op: op, token: op.Secret}
}

// label sets labels of tenant slug ("k=v", ...).
func (f *fixture) label(slug string, kv ...string) {
	f.T.Helper()
	edits, err := labels.ParseEdits(kv)
	if err == nil {
		_, err = f.P.LabelTenant(f.Ctx, ident.MustParseSlug(slug), edits, false)
	}
	if err != nil {
		f.T.Fatal(err)
	}
}

// WriteModuleGen writes a module file and publishes it, and returns the generation.
func (f *fixture) WriteModuleGen(name, src string) int64 {
	f.T.Helper()
	f.WriteModule(name, src)
	g, _, err := f.P.Generations().Latest(f.Ctx, nil)
	if err != nil {
		f.T.Fatal(err)
	}
	return g
}

// pass runs a reconcile pass over every tenant, as a daemon's.
func (f *fixture) pass() *controlplane.Pass {
	f.T.Helper()
	pass, err := f.P.ReconcileAll(f.Ctx, controlplane.ReconcileOptions{IgnoreBackoff: true, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		f.T.Fatal(err)
	}
	return pass
}

// loginURL is a fresh one-time login link of a new operator token named name.
func (f *fixture) loginURL(name string) string {
	f.T.Helper()
	c, err := f.P.Operators().Create(f.Ctx, name)
	if err != nil {
		f.T.Fatal(err)
	}
	return operators.LoginURL(f.srv.URL, c.LoginCode)
}

// get fetches path with the given headers (key, value, ...), without following redirects.
func (f *fixture) get(path string, headers ...string) (*http.Response, string) {
	f.T.Helper()
	return f.do(http.DefaultClient, "GET", path, nil, headers...)
}

func (f *fixture) do(client *http.Client, method, path string, body url.Values, headers ...string) (*http.Response, string) {
	f.T.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequestWithContext(f.Ctx, method, f.srv.URL+path, rd)
	if err != nil {
		f.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if client == http.DefaultClient {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	res, err := client.Do(req)
	if err != nil {
		f.T.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// getJSON fetches the JSON twin of path as alice's script, into v.
func (f *fixture) getJSON(path string, v any) {
	f.T.Helper()
	res, body := f.get(path, "Accept", "application/json", "Authorization", "Bearer "+f.token)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		f.T.Fatalf("GET %s: %d %s\n%s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		f.T.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// browserClient is a client that keeps cookies and follows redirects, as a browser does.
func (f *fixture) browserClient() (*http.Client, *cookiejar.Jar) {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}, jar
}

// browserSession is a browser signed in with a login link: an http.Client with the session's
// cookie, and the page's CSRF token.
func (f *fixture) browserSession() (*http.Client, string) {
	f.T.Helper()
	client, _ := f.browserClient()
	res, body := f.do(client, "GET", strings.TrimPrefix(f.loginURL("browser"), f.srv.URL), nil)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/" {
		f.T.Fatalf("login link: %d at %s", res.StatusCode, res.Request.URL)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		f.T.Fatalf("no CSRF token on the fleet page:\n%s", body)
	}
	return client, m[1]
}

// ---- one browser for the whole test binary ----

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// newTab opens a tab in a browser context of its own (its own cookies: tests run in parallel
// against consoles on the same host) of the one Chromium this binary starts. Without Chromium
// the test skips, except in CI, where make test installs it.
func newTab(t *testing.T) context.Context {
	t.Helper()
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is not installed (make test installs it: scripts/ensure-chromium.sh)")
		}
		t.Skip("Chromium is not installed (scripts/ensure-chromium.sh installs it)")
	}
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin),
			chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
		if os.Geteuid() == 0 {
			opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		browser.err = chromedp.Do(bctx) // starts the browser
		browser.ctx, browser.cancel = bctx, func() { bcancel(); acancel() }
	})
	if browser.err != nil {
		t.Fatalf("start Chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancel2)
	return ctx
}

func chromium() string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func closeBrowser() {
	if browser.cancel != nil {
		browser.cancel()
	}
}
