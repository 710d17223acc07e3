package schema

import (
	"context"
	"fmt"
)

// fingerprintSQL hashes, per schema, what an Atlas diff looks at: tables, their columns (type,
// nullability, identity, generation, default), constraints and indexes, with the schema's own
// name stripped so that two tenants in the same state hash alike. It reads the catalog once
// for every schema, where an Atlas inspection scans the whole catalog per schema.
const fingerprintSQL = `
WITH ns AS (
	SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE %s
), cols AS (
	SELECT c.relnamespace AS nsp, string_agg(
		c.relname || '.' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		|| ' ' || a.attnotnull::text || ' ' || a.attidentity::text || a.attgenerated::text || ' ' || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
		|| ' ' || coalesce(co.collname, ''),
		E'\n' ORDER BY c.relname, a.attname) AS x
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
	LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
	WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'p')
	GROUP BY 1
), cons AS (
	SELECT con.connamespace AS nsp, string_agg(
		c.relname || ' ' || con.conname || ' ' || pg_catalog.pg_get_constraintdef(con.oid),
		E'\n' ORDER BY c.relname, con.conname) AS x
	FROM pg_catalog.pg_constraint con
	JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
	WHERE con.connamespace IN (SELECT oid FROM ns)
	GROUP BY 1
), idx AS (
	SELECT c.relnamespace AS nsp, string_agg(pg_catalog.pg_get_indexdef(i.indexrelid), E'\n' ORDER BY ic.relname) AS x
	FROM pg_catalog.pg_index i
	JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
	JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
	WHERE c.relnamespace IN (SELECT oid FROM ns)
	GROUP BY 1
)
SELECT ns.nspname, md5(replace(
	coalesce(cols.x, '') || E'\n--\n' || coalesce(cons.x, '') || E'\n--\n' || coalesce(idx.x, ''),
	ns.nspname || '.', ''))
FROM ns
LEFT JOIN cols ON cols.nsp = ns.oid
LEFT JOIN cons ON cons.nsp = ns.oid
LEFT JOIN idx ON idx.nsp = ns.oid`

// Fingerprints returns the fingerprint of every existing schema whose name starts with prefix.
// A schema missing from the map does not exist.
func Fingerprints(ctx context.Context, q Querier, prefix string) (map[string]string, error) {
	return fingerprints(ctx, q, "starts_with(nspname, $1)", prefix)
}

// Fingerprint returns the fingerprint of one schema, or "" when it does not exist.
func Fingerprint(ctx context.Context, q Querier, name string) (string, error) {
	m, err := fingerprints(ctx, q, "nspname = $1", name)
	if err != nil {
		return "", err
	}
	return m[name], nil
}

func fingerprints(ctx context.Context, q Querier, where, arg string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf(fingerprintSQL, where), arg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint schemas: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, fp string
		if err := rows.Scan(&name, &fp); err != nil {
			return nil, fmt.Errorf("fingerprint schemas: %w", err)
		}
		out[name] = fp
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fingerprint schemas: %w", err)
	}
	return out, nil
}
