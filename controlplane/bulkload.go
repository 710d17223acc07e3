package controlplane

import (
	"context"
	"fmt"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// bulkLoad runs load with the foreign keys and the secondary indexes of schemaName set aside,
// then makes them again from the definitions PostgreSQL printed of them before: the order
// pg_restore follows. One index build and one join per foreign key cost far less than a
// trigger call and an index insert per row. The objects come back with the same names and
// definitions, so the tenant's fingerprint is the one recorded at create. Indexes that back a
// constraint (the primary key, unique constraints) stay.
func bulkLoad(ctx context.Context, tx *schema.Tx, schemaName string, load func() error) error {
	var drops, remakes []string
	rows, err := tx.QueryContext(ctx, `SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
		FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND con.contype = 'f' ORDER BY con.oid`, schemaName)
	if err != nil {
		return fmt.Errorf("read foreign keys: %w", err)
	}
	var fks []string
	for rows.Next() {
		var table, name, def string
		if err := rows.Scan(&table, &name, &def); err != nil {
			rows.Close()
			return err
		}
		t := ident.Quote(schemaName, table)
		drops = append(drops, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", t, ident.Quote(name)))
		fks = append(fks, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t, ident.Quote(name), def))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT i.relname, pg_get_indexdef(i.oid)
		FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
		WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = x.indexrelid)
		ORDER BY i.oid`, schemaName)
	if err != nil {
		return fmt.Errorf("read indexes: %w", err)
	}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return err
		}
		drops = append(drops, "DROP INDEX "+ident.Quote(schemaName, name))
		remakes = append(remakes, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := tx.ExecStatements(ctx, drops...); err != nil {
		return fmt.Errorf("set constraints aside for the load: %w", err)
	}
	if err := load(); err != nil {
		return err
	}
	// Indexes first: a foreign key's check then finds the rows it joins on by index.
	if err := tx.ExecStatements(ctx, append(remakes, fks...)...); err != nil {
		return fmt.Errorf("make constraints again after the load: %w", err)
	}
	return nil
}
