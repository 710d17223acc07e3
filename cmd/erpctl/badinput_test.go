package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/internal/term"
)

// dbState is what bad input must not change: the tenants, their limits and the schemas.
func (c *cli) dbState() string {
	c.t.Helper()
	n := c.count(`SELECT count(*) FROM erpctl.tenants`)
	ev := c.count(`SELECT count(*) FROM erpctl.events`)
	var limits string
	if err := c.db().QueryRow(context.Background(), `SELECT coalesce(string_agg(format('%s %s %s', tenant, rate, concurrency), ', ' ORDER BY tenant), '')
		FROM erpctl.tenant_limits`).Scan(&limits); err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf("tenants=%d events=%d limits=[%s] schemas=%v", n, ev, limits, c.schemas())
}

// Bad input: a clear one-sentence message, exit 2, and nothing changed in the database.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex", "--modules", "product")
	c.ok("tenant", "limits", "acme", "--rate", "100/minute")
	before := c.dbState()
	acme, globex := c.snapshot("tenant_acme"), c.snapshot("tenant_globex")

	injection := "x'); drop schema erpctl cascade; --"
	long := strings.Repeat("a", 51)
	slugs := []struct{ slug, want string }{
		{"", "the slug is empty"},
		{"Acme", "lowercase"},
		{"public", "reserved"},
		{"erpctl", "reserved"},
		{"pg-x", "reserved"},
		{"a--b", "'--'"},
		{"acme_co", "'_'"},
		{"-acme", "start with a lowercase letter"},
		{"acme-", "end with '-'"},
		{"café", "only lowercase ASCII letters"},
		{long, "51 characters long, the limit is 50"},
		{injection, "only lowercase ASCII letters"},
	}
	type tc struct {
		args []string
		want string
	}
	var cases []tc
	for _, s := range slugs {
		cases = append(cases, tc{[]string{"tenant", "create", "--", s.slug}, s.want})
	}
	for _, args := range [][]string{
		{"tenant", "show", "--", injection},
		{"tenant", "delete", "--yes", "--", injection},
		{"tenant", "enable-module", "--", injection, "product"},
		{"debug", "tables", "--", injection},
		{"reconcile", "--", injection},
		{"plan", "--", injection},
		{"token", "create", "--name", "x", "--", injection},
		{"tenant", "limits", "--rate", "1/s", "--", injection},
	} {
		cases = append(cases, tc{args, "invalid tenant slug"})
	}
	cases = append(cases,
		tc{[]string{"tenant", "create", "acme"}, `"acme": tenant already exists`},
		tc{[]string{"tenant", "create", "newco", "--modules", "product,nope"}, `unknown module "nope"`},
		tc{[]string{"tenant", "enable-module", "acme", "nope"}, `unknown module "nope"`},
		tc{[]string{"tenant", "disable-module", "globex", "inventory"}, "does not have it"},
		tc{[]string{"tenant", "show", "nope"}, `tenant "nope" not found`},
		tc{[]string{"tenant", "delete", "nope", "--yes"}, "not found"},
		tc{[]string{"tenant", "delete", "acme"}, "refusing to delete tenant \"acme\" without --yes"},
		tc{[]string{"tenant", "create", "-acme"}, "unknown shorthand flag"},
		tc{[]string{"tenant", "create"}, "tenant create needs SLUG"},
		tc{[]string{"tenant", "create", "a1", "a2"}, "unexpected \"a2\""},
		tc{[]string{"tenant", "list", "--bogus"}, "unknown flag: --bogus"},
		tc{[]string{"tenant", "frobnicate"}, `unknown command "frobnicate"`},
		tc{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		tc{[]string{"-o", "xml", "tenant", "list"}, `invalid output format "xml"`},
		tc{[]string{"plan"}, "needs a tenant SLUG, --all or -l SELECTOR"},
		tc{[]string{"reconcile", "acme", "--all"}, "give one of a tenant SLUG, --all or -l SELECTOR"},
		tc{[]string{"reconcile", "--all", "--workers", "0"}, "--workers must be at least 1"},
		tc{[]string{"reconcile", "--all", "--lock-timeout", "0s"}, "--lock-timeout must be greater than 0"},
		tc{[]string{"daemon", "--workers", "0"}, "--workers must be at least 1"},
		tc{[]string{"daemon", "--interval", "0s"}, "--interval must be greater than 0"},
		tc{[]string{"daemon", "--interval", "abc"}, `invalid argument "abc" for "--interval"`},
		tc{[]string{"daemon", "--full-check", "0s"}, "--full-check must be greater than 0"},
		tc{[]string{"daemon", "--listen", "nowhere"}, `invalid --listen address "nowhere"`},
		tc{[]string{"daemon", "--debug-listen", "0.0.0.0:6060"}, `is not loopback`},
		tc{[]string{"daemon", "--debug-listen", "6060"}, `invalid debug address "6060"`},
		tc{[]string{"daemon", "--public-url", "erp.example.com"}, `use http:// or https://`},
		tc{[]string{"daemon", "--public-url", "https://erp.example.com/api?x=1"}, `give only a scheme and a host`},
		tc{[]string{"daemon", "--allowed-hosts", "https://erp.example.com"}, `is not a host name`},
		tc{[]string{"daemon", "--cors-origins", "app.example.com"}, `is not an origin`},
		tc{[]string{"daemon", "--cors-origins", "https://app.example.com/"}, `is not an origin`},
		tc{[]string{"daemon", "--console-listen", "0.0.0.0:8081"}, `console address "0.0.0.0:8081" is not loopback`},
		tc{[]string{"daemon", "--console-listen", "8081"}, `invalid console address "8081"`},
		tc{[]string{"daemon", "--log-level", "loud"}, `--log-level "loud": give debug, info, warn or error`},
		tc{[]string{"daemon", "--console-url", "console.example.com"}, `use http:// or https://`},
		tc{[]string{"operator", "token", "create"}, "operator token create needs NAME"},
		tc{[]string{"operator", "token", "create", ""}, "the operator token name is empty"},
		tc{[]string{"operator", "token", "create", "a\x1bb"}, "control character"},
		tc{[]string{"operator", "token", "create", strings.Repeat("n", 101)}, "longer than 100 characters"},
		tc{[]string{"operator", "token", "create", "x", "--console-url", "https://c.example.com/x"}, "give only a scheme and a host"},
		tc{[]string{"operator", "token", "revoke", "abc"}, "invalid operator token ID"},
		tc{[]string{"operator", "token", "revoke", "99999"}, "operator token not found"},
		tc{[]string{"module", "show", "nope"}, `unknown module "nope"`},
		tc{[]string{"token", "revoke", "abc"}, "invalid token ID"},
		tc{[]string{"completion", "pwsh"}, "unsupported shell"},
		tc{[]string{"tenant", "create", "newco", "--modules", ","}, `--modules "," names an empty module`},
		tc{[]string{"tenant", "create", "newco", "--modules", "product,,inventory"}, "names an empty module"},
		tc{[]string{"tenant", "create", "newco", "--modules", ""}, "--modules names no module"},
		tc{[]string{"tenant", "create", "newco", "--name", strings.Repeat("n", 10000)}, "the tenant name is 10000 characters long, the limit is 200"},
		tc{[]string{"tenant", "create", "newco", "--name", "a\x00b"}, "control character"},
		tc{[]string{"daemon", "--api-statement-timeout", "0s"}, "--api-statement-timeout must be at least 1ms"},
		tc{[]string{"daemon", "--api-statement-timeout", "soon"}, `invalid argument "soon" for "--api-statement-timeout"`},
		tc{[]string{"daemon", "--api-conn-tenants", "-5"}, "--api-conn-tenants must be 0 (no bound) or more, got -5"},
		tc{[]string{"daemon", "--api-tenant-share", "0"}, "--api-tenant-share must be more than 0 and at most 1"},
		tc{[]string{"daemon", "--api-tenant-share", "1.5"}, "--api-tenant-share must be more than 0 and at most 1"},
		tc{[]string{"daemon", "--api-tenant-share", "NaN"}, "--api-tenant-share must be more than 0 and at most 1"},
		tc{[]string{"daemon", "--api-tenant-queue", "0"}, "--api-tenant-queue must be at least 1"},
		tc{[]string{"daemon", "--api-queue-wait", "-1s"}, "--api-queue-wait must be greater than 0"},
		tc{[]string{"daemon", "--api-memory", "12"}, `--api-memory "12": give a size of at least 1MiB`},
		tc{[]string{"daemon", "--api-memory", "lots"}, `--api-memory "lots": give a size of at least 1MiB`},
		tc{[]string{"daemon", "--api-memory", "-64MiB"}, `--api-memory "-64MiB"`},
		tc{[]string{"daemon", "--tenant-rate", "10"}, `--tenant-rate: rate "10": write it as N/period`},
		tc{[]string{"daemon", "--tenant-rate", "10/fortnight"}, "the period is second, minute, hour or day"},
		tc{[]string{"daemon", "--tenant-rate", "0/s"}, "the number of requests is a whole number"},
		tc{[]string{"daemon", "--tenant-concurrency", "-1"}, "--tenant-concurrency must be 0 (none) or more"},
		tc{[]string{"daemon", "--max-conns", "-1"}, "--max-conns must be 0"},
		tc{[]string{"tenant", "limits", "acme", "--rate", "0/s"}, "--rate: rate \"0/s\": the number of requests is a whole number"},
		tc{[]string{"tenant", "limits", "acme", "--rate", "fast"}, "write it as N/period"},
		tc{[]string{"tenant", "limits", "acme", "--rate", ""}, "write it as N/period"},
		tc{[]string{"tenant", "limits", "acme", "--concurrency", "0"}, `--concurrency "0": give a number of requests from 1 to 1000000, none, or default`},
		tc{[]string{"tenant", "limits", "acme", "--concurrency", "-3"}, `--concurrency "-3"`},
		tc{[]string{"tenant", "limits", "acme", "--concurrency", "many"}, `--concurrency "many"`},
		tc{[]string{"tenant", "limits", "acme", "--reset", "--rate", "1/s"}, "--reset puts every limit back to the default: give it alone"},
		tc{[]string{"tenant", "limits", "--rate", "1/s"}, "give the tenant whose limits to set"},
		tc{[]string{"tenant", "limits", "--reset"}, "give the tenant whose limits to set"},
		tc{[]string{"tenant", "limits", "nope", "--rate", "1/s"}, `read the limits of tenant "nope": not found`},
		tc{[]string{"tenant", "limits", "nope"}, `read the limits of tenant "nope": not found`},
		tc{[]string{"tenant", "limits", "acme", "globex"}, `unexpected "globex"`},
		tc{[]string{"tenant", "top", "--since", "0s"}, "--since must be more than 0 and at most 1h0m0s"},
		tc{[]string{"tenant", "top", "--since", "2h"}, "--since must be more than 0 and at most 1h0m0s"},
		tc{[]string{"tenant", "top", "--limit", "0"}, "--limit must be from 1 to 10000"},
		tc{[]string{"tenant", "top", "--sort-by", "cpu"}, `--sort-by "cpu": sort by one of requests, errors, throttled, db, rows`},
		tc{[]string{"tenant", "top", "acme"}, `takes no arguments, got "acme"`},
		tc{[]string{"tenant", "top", "-l", "tier in (a"}, `invalid selector "tier in (a"`},
	)
	for _, k := range cases {
		t.Run(strings.Join(k.args, " "), func(t *testing.T) {
			c.t = t
			c.expect(2, k.want, k.args...)
		})
	}
	c.t = t

	// A malformed module file: exit 2, the message names the file, nothing created.
	path := c.writeModule("broken", "schema \"tenant\" {}\ntable \"things\" {\n  schema = schema.tenant\n  column \"a\" {\n    type =\n  }\n}\n")
	c.expect(2, path, "tenant", "create", "newco")
	c.expect(2, path, "reconcile", "--all")
	// --modules-dir naming a file, not a directory.
	c.modulesDir = path
	c.expect(2, "it is a file, not a directory", "tenant", "create", "newco")
	c.expect(2, "it is a file, not a directory", "module", "list")
	c.modulesDir = ""

	if after := c.dbState(); after != before {
		t.Fatalf("bad input changed the database:\nbefore: %s\nafter:  %s", before, after)
	}
	for _, s := range c.schemas() {
		if s != "erpctl" && s != "public" && s != "tenant_acme" && s != "tenant_globex" {
			t.Fatalf("bad input created schema %q", s)
		}
	}
	if c.snapshot("tenant_acme") != acme || c.snapshot("tenant_globex") != globex {
		t.Fatal("bad input changed a tenant schema")
	}
}

// A database that cannot be reached: exit 1, one sentence.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	ios, _, out, errOut := term.Test()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"--database-url", "postgres://x@127.0.0.1:1/x", "tenant", "list"}, ios, func(string) string { return "" })
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	checkErrorMessage(t, r, "cannot connect to the database")
	if strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
		t.Fatalf("want one line on stderr and nothing on stdout; stdout %q stderr %q", r.stdout, r.stderr)
	}
	contains(t, "stderr", r.stderr, "127.0.0.1:1", "connection refused")

	// The URL's password never appears.
	ios, _, _, errOut = term.Test()
	run(ctx, []string{"--database-url", "postgres://x:hunter2@127.0.0.1:1/x", "tenant", "list"}, ios, func(string) string { return "" })
	if strings.Contains(errOut.String(), "hunter2") {
		t.Fatalf("password in the message: %s", errOut.String())
	}
	// From the environment too.
	ios, _, _, errOut = term.Test()
	code = run(ctx, []string{"tenant", "list"}, ios, func(k string) string {
		if k == envDatabaseURL {
			return "postgres://x@127.0.0.1:1/x"
		}
		return ""
	})
	if code != 1 || !strings.Contains(errOut.String(), "127.0.0.1:1") {
		t.Fatalf("ERPCTL_DATABASE_URL not used: exit %d, %s", code, errOut.String())
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, k := range []struct {
		err  error
		code int
	}{
		{usageErrorf("x"), 2},
		{badInput(fmt.Errorf("x")), 2},
		{failedf("x"), 1},
		{fmt.Errorf("boom"), 1},
	} {
		if got := exitCode(k.err); got != k.code {
			t.Errorf("%v: exit %d, want %d", k.err, got, k.code)
		}
	}
	if !slices.Contains([]int{2}, exitCode(fmt.Errorf("unknown command \"x\" for \"erpctl\""))) {
		t.Error("unknown command is not a usage error")
	}
}
