package main

import (
	"context"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

// debug tables shows the state the data API acted on: the status, and the last repair with why.
func TestDebugTablesShowsTheLastRepair(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	c.sql(`ALTER TABLE tenant_acme.products DROP COLUMN description`)
	// What the data API does when a statement meets the missing column.
	ctx := context.Background()
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: c.url})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const why = `data API POST product/products: SQLSTATE 42703 (undefined column): column "description" of relation "products" does not exist`
	res, err := p.Reconcile(ctx, ident.MustParseSlug("acme"), controlplane.ReconcileOptions{Cause: why})
	if err != nil || res.Action != controlplane.ActionApplied {
		t.Fatalf("repair: %+v %v", res, err)
	}

	r := c.ok("debug", "tables", "acme")
	contains(t, "acme", r.stdout, "healthy", "Status: Ready (UpToDate)", "Last repair:", "repair applied", "SQLSTATE 42703")
	if r := c.ok("debug", "tables", "globex"); strings.Contains(r.stdout, "Last repair") {
		t.Fatalf("globex shows a repair:\n%s", r.stdout)
	}
	var report struct {
		Status     string `json:"status"`
		LastRepair *struct {
			Kind   string `json:"kind"`
			Reason string `json:"reason"`
		} `json:"last_repair"`
	}
	decodeOne(t, c.ok("debug", "tables", "acme", "-o", "json").stdout, &report)
	if report.Status != "Ready" || report.LastRepair == nil || report.LastRepair.Kind != "repair" || report.LastRepair.Reason != why {
		t.Fatalf("debug tables -o json: %+v", report)
	}
	contains(t, "tenant show", c.ok("tenant", "show", "acme").stdout, "repair", "SQLSTATE 42703")
}
