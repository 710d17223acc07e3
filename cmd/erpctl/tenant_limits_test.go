package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane/fair"
)

// tenant limits sets, shows and resets a tenant's limits, the other tenant's untouched; tenant
// top shows the busiest tenants of what the daemons published.
func TestTenantLimitsAndTop(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--label", "tier=gold")
	c.ok("tenant", "create", "globex")

	r := c.ok("tenant", "limits")
	contains(t, "no limits", r.stderr, "No tenant has limits of its own")
	c.ok("tenant", "limits", "acme", "--rate", "100/minute", "--concurrency", "10")
	c.ok("tenant", "limits", "globex", "--rate", "none")
	var one limitsView
	decodeOne(t, c.ok("-o", "json", "tenant", "limits", "acme", "--concurrency", "default").stdout, &one)
	if one.Tenant != "acme" || one.Rate == nil || *one.Rate != "100/minute" || one.Concurrency != nil {
		t.Fatalf("acme's limits: %+v", one)
	}
	r = c.ok("tenant", "limits")
	if lineWith(r.stdout, "acme") == "" || !strings.Contains(lineWith(r.stdout, "acme"), "100/minute") ||
		!strings.Contains(lineWith(r.stdout, "globex"), "none") {
		t.Fatalf("tenant limits:\n%s", r.stdout)
	}
	c.ok("tenant", "limits", "acme", "--reset")
	var all []limitsView
	decodeOne(t, c.ok("-o", "json", "tenant", "limits").stdout, &all)
	if len(all) != 1 || all[0].Tenant != "globex" || *all[0].Rate != "none" {
		t.Fatalf("after reset: %+v", all)
	}

	r = c.ok("tenant", "top")
	contains(t, "no usage", r.stderr, "No data API requests in the last")
	pool, err := pgxpool.New(context.Background(), c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := fair.NewStore(pool).Publish(context.Background(), time.Now(), []fair.Usage{
		{Tenant: "acme", Requests: 600, Errors: 3, DBTime: 3 * time.Second, Rows: 1200},
		{Tenant: "globex", Requests: 60, Throttled: 6, DBTime: time.Second, Rows: 60}}); err != nil {
		t.Fatal(err)
	}
	r = c.ok("tenant", "top")
	contains(t, "tenant top", r.stdout, "REQ/S", "DB %")
	if !strings.Contains(lineWith(r.stdout, "acme"), "75.0") || !strings.Contains(lineWith(r.stdout, "globex"), "25.0") {
		t.Fatalf("tenant top:\n%s", r.stdout)
	}
	var top fair.Top
	decodeOne(t, c.ok("-o", "json", "tenant", "top", "--sort-by", "throttled", "--limit", "1", "--since", "1m").stdout, &top)
	if len(top.Tenants) != 1 || top.Tenants[0].Tenant != "globex" || top.Tenants[0].Throttled != 6 || top.Tenants[0].DBSeconds != 1 {
		t.Fatalf("tenant top -o json: %+v", top)
	}
	decodeOne(t, c.ok("-o", "json", "tenant", "top", "--sort-by", "throttled", "-l", "tier=gold").stdout, &top)
	if len(top.Tenants) != 1 || top.Tenants[0].Tenant != "acme" || top.Tenants[0].DBShare != 0.75 {
		t.Fatalf("tenant top -l tier=gold: %+v", top)
	}
}
