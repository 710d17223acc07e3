package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// TablesReport is what `debug tables` shows of a tenant schema.
type TablesReport struct {
	Tenant  string        `json:"tenant"`
	Schema  string        `json:"schema"`
	Healthy bool          `json:"healthy"`
	Tables  []TableStatus `json:"tables"`
	// The tenant's status as the data API judges it, and the last repair the API or the daemon
	// made of it (nil when none).
	Status string `json:"status"`
	Reason string `json:"reason"`
	// The tables are compared with the generation the tenant has applied; the latest, when
	// newer, is still to come and is not drift.
	Generation       *int64  `json:"generation"`
	TargetGeneration *int64  `json:"target_generation,omitempty"`
	LastError        *string `json:"last_error"`
	LastRepair       *Event  `json:"last_repair"`
}

// TableStatus is one table of a tenant schema: ok, missing, drifted or unmanaged.
type TableStatus struct {
	Module  string `json:"module"`
	Table   string `json:"table"`
	Status  string `json:"status"`
	Details string `json:"details"`
}

// DebugTables inspects a tenant schema and reports each table against the generation the tenant
// has applied: drift is what differs from it. The schema is healthy when every declared table,
// column, index and constraint is there as declared; unmanaged tables do not make it unhealthy.
func (p *Plane) DebugTables(ctx context.Context, slug ident.Slug) (*TablesReport, error) {
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("debug tables: %w", err)
	}
	var gen int64
	if t.Generation != nil {
		gen = *t.Generation
	}
	d, err := p.tenantDesired(ctx, nil, nullGen(gen))
	if err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	reg := d.reg
	desired, err := reg.Desired(t.Modules, t.Schema)
	if err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	// Not read-only: comparing check expressions creates the desired tables in a scratch schema,
	// rolled back with the rest.
	tx, err := p.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	defer tx.Rollback()
	// The scratch schema stays local on Citus: distributing it would make shards on a worker
	// only to roll them back. (lockTx does the same for the reconciler's transactions.)
	if err := p.keepLocal(ctx, tx); err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	var managedJSON []byte
	if err := tx.QueryRowContext(ctx, `SELECT `+managedSQL+` FROM erpctl.tenants t WHERE slug = $1`, slug.String()).Scan(&managedJSON); err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	var prev schema.Managed
	if err := json.Unmarshal(managedJSON, &prev); err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: read managed objects: %w", slug, err)
	}
	current, err := p.planner.Inspect(ctx, tx, t.Schema)
	if err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	diff, err := p.diffTenant(ctx, tx, current, desired, reg.Hash(t.Modules), prev, reg.Renames(t.Modules))
	if err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	rep := &TablesReport{Tenant: slug.String(), Schema: t.Schema, Healthy: true, Tables: []TableStatus{},
		Status: t.Status, Reason: t.Reason, LastError: t.LastError, Generation: t.Generation, TargetGeneration: t.TargetGeneration}
	if rep.LastRepair, err = p.lastRepair(ctx, slug); err != nil {
		return nil, fmt.Errorf("debug tables of tenant %q: %w", slug, err)
	}
	for _, tr := range diff.Tables() {
		mod, _ := reg.ModuleOfTable(tr.Table)
		if e, ok := reg.Enum(strings.TrimPrefix(tr.Table, schema.EnumReportName(""))); ok && tr.Table == schema.EnumReportName(e.Name) {
			mod = e.Module
		}
		if tr.Status == schema.StatusUnmanaged {
			mod = ""
		}
		details := strings.Join(tr.Details, "; ")
		if tr.Status == schema.StatusMissing && diff.Missing {
			details = "schema " + t.Schema + " does not exist"
		}
		rep.Tables = append(rep.Tables, TableStatus{Module: mod, Table: tr.Table, Status: tr.Status, Details: details})
		if tr.Status == schema.StatusMissing || tr.Status == schema.StatusDrifted {
			rep.Healthy = false
		}
	}
	return rep, nil
}
