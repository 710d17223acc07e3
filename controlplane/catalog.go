package controlplane

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"

	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

//go:embed catalog.hcl
var catalogHCL []byte

// catalogSchema is where erpctl keeps its own state.
const catalogSchema = "erpctl"

// catalogLockKey is the advisory lock that serialises catalog upgrades between processes.
const catalogLockKey = 0x65727063746c // "erpctl"

// catalogDataUpgrades fill what a catalog of an earlier erpctl lacks, after its schema upgrade.
var catalogDataUpgrades = []string{
	// Statuses recorded before reasons existed get the reason their status implies.
	`UPDATE erpctl.tenants SET status_reason = CASE status
		WHEN 'Ready' THEN '` + ReasonUpToDate + `' WHEN 'Blocked' THEN '` + ReasonDestructiveChange + `'
		WHEN 'Failed' THEN '` + ReasonApplyFailed + `' ELSE '` + ReasonNew + `' END
		WHERE status_reason = ''`,
}

func catalogHash() string {
	sum := sha256.Sum256(catalogHCL)
	return hex.EncodeToString(sum[:16])
}

// ensureCatalog creates or upgrades the catalog schema from catalog.hcl with the same planner as
// tenant schemas. A recorded hash of catalog.hcl skips the Atlas inspection when nothing changed,
// so that a CLI command costs one query, not a scan of the whole catalog.
func (p *Plane) ensureCatalog(ctx context.Context) error {
	want := catalogHash()
	var got string
	err := p.pool.QueryRow(ctx, `SELECT value FROM erpctl.meta WHERE key = 'catalog_hash'`).Scan(&got)
	var pgErr *pgconn.PgError
	switch {
	case err == nil && got == want:
		return nil
	case err == nil, errors.Is(err, pgx.ErrNoRows):
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
	default:
		return fmt.Errorf("read catalog version: %w", err)
	}
	var desired atlas.Realm
	if err := postgres.EvalHCLBytes(catalogHCL, &desired, nil); err != nil {
		return fmt.Errorf("load catalog schema: %w", err)
	}
	tx, err := p.begin(ctx)
	if err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	defer tx.Rollback()
	// Citus must not distribute the catalog.
	if err := p.keepLocal(ctx, tx); err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	if err := tx.ExecStatements(ctx, fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, catalogLockKey)); err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	current, err := p.planner.Inspect(ctx, tx, catalogSchema)
	if err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	want0 := desired.Schemas[0]
	diff, err := p.planner.Diff(ctx, current, want0, schema.ManagedOf(want0))
	if err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	stmts, err := p.planner.Plan(ctx, diff.Apply, catalogSchema)
	if err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	if diff.Missing {
		stmts = append([]string{"CREATE SCHEMA IF NOT EXISTS " + ident.Quote(catalogSchema)}, stmts...)
	}
	if err := tx.ExecStatements(ctx, stmts...); err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	// Data upgrades after the schema's: each is idempotent and cheap once done.
	for _, q := range catalogDataUpgrades {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("upgrade catalog: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ('catalog_hash', $1)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, want); err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("upgrade catalog: %w", err)
	}
	return nil
}
