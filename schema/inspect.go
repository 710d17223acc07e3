package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"
)

// Inspection reads one schema's state from the catalog by the schema's OID, so that it costs the
// same whatever else the database holds. Atlas's inspector still does the work: it sends its
// queries to a scoped querier, which answers each with a query of the same columns and rows that
// reaches the schema's objects through indexes (pg_namespace by name, pg_depend by the
// namespace's OID, pg_class by name and namespace, pg_attribute, pg_index and pg_constraint by the
// table's OID), where Atlas's own read information_schema's views and pg_index, pg_constraint
// and pg_sequences whole: 0.84 s a schema beside 5,000 others, 7 s beside 100,000. What
// PostgreSQL prints and how Atlas turns rows into its schema values stay Atlas's own, so a scoped
// inspection is an Atlas inspection: the tests compare the two on every table shape erpctl knows.
//
// Atlas's queries are recognised by their text. A query of Atlas's that this file does not know
// (a new Atlas version) is refused rather than run over the whole catalog.

// Inspect returns the current state of schema name as q sees it, or nil when it does not exist.
func (p *Planner) Inspect(ctx context.Context, q Querier, name string) (*atlas.Schema, error) {
	return inspect(ctx, &scopedQuerier{q: q}, name)
}

func inspect(ctx context.Context, q Querier, name string) (*atlas.Schema, error) {
	drv, err := postgres.Open(q)
	if err != nil {
		return nil, fmt.Errorf("inspect schema %q: %w", name, err)
	}
	s, err := drv.InspectSchema(ctx, name, nil)
	if atlas.IsNotExistError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect schema %q: %w", name, err)
	}
	return s, nil
}

// scopedQuerier answers Atlas's inspection queries for one schema with scoped ones.
type scopedQuerier struct {
	q Querier
}

func (s *scopedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return nil, errors.New("inspect: Atlas asked to change something while inspecting")
}

func (s *scopedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	scoped, err := scopedQuery(query, len(args))
	if err != nil {
		return nil, err
	}
	return s.q.QueryContext(ctx, scoped, args...)
}

// scopedQuery is the query that answers Atlas's query with nargs arguments for one schema: $1
// is the schema's name and, where Atlas lists tables, $2... their names.
func scopedQuery(query string, nargs int) (string, error) {
	for _, k := range atlasQueries {
		if !strings.Contains(query, k.marker) {
			continue
		}
		switch {
		case k.scoped == "":
			return query, nil
		case k.tables && nargs < 2, !k.tables && nargs != 1:
			return "", fmt.Errorf("inspect: Atlas's %s query with %d arguments: erpctl inspects one schema's tables", k.what, nargs)
		}
		scoped := k.scoped
		if k.tables {
			scoped = strings.Replace(scoped, "%TABLES%", placeholders(2, nargs), 1)
		}
		if k.version != nil {
			scoped = k.version(query, scoped)
		}
		return scoped, nil
	}
	return "", fmt.Errorf("inspect: erpctl has no scoped form of this query of Atlas's, and will not read the whole catalog: %.60q", strings.Join(strings.Fields(query), " "))
}

// placeholders returns "$from, ..., $to".
func placeholders(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if i > from {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// atlasQuery is one of the queries Atlas's PostgreSQL inspector sends, and what answers it.
type atlasQuery struct {
	what   string
	marker string // text only that query of Atlas's holds
	scoped string // "": Atlas's own is already scoped
	tables bool   // Atlas passes the table names after the schema's
	// version, when set, adapts scoped to the server version Atlas chose its query for.
	version func(atlasQuery, scoped string) string
}

var atlasQueries = []atlasQuery{
	// Cheap already: server settings, and one namespace by its unique name.
	{what: "settings", marker: "current_setting('server_version_num')"},
	{what: "schema", marker: "pg_catalog.obj_description(ns.oid) AS comment"},
	{what: "enums", marker: "e.enumlabel AS enum_value", scoped: enumsSQL},
	{what: "tables", marker: "INFORMATION_SCHEMA.TABLES AS t1", scoped: tablesSQL},
	{what: "columns", marker: `"information_schema"."columns" AS t1`, scoped: columnsSQL, tables: true},
	{what: "indexes", marker: "pg_index_column_has_property(idx.indexrelid, idx.ord, 'desc')", scoped: indexesSQL, tables: true,
		version: func(atlasQuery, scoped string) string {
			// Atlas reads indnullsnotdistinct only from PostgreSQL 15 on.
			if strings.Contains(atlasQuery, "idx.indnullsnotdistinct AS indnullsnotdistinct") {
				return strings.Replace(scoped, "%NULLSNOTDISTINCT%", "idx.indnullsnotdistinct", 1)
			}
			return strings.Replace(scoped, "%NULLSNOTDISTINCT%", "false", 1)
		}},
	{what: "foreign keys", marker: "fk.referenced_schema_name", scoped: fksSQL, tables: true},
	{what: "checks", marker: "pg_get_expr(t1.conbin, t1.conrelid) as expression", scoped: checksSQL, tables: true},
}

// scopeSQL names the schema (ns) and the relations it holds (nsrel) by OID: the namespace by its
// unique name, its relations through pg_depend's index on the object they depend on. Every
// relation but an index and a TOAST table depends on its namespace, which is how DROP SCHEMA
// finds them.
const scopeSQL = `WITH ns AS (
	SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = $1
), nsrel AS (
	SELECT c.* FROM ns
	JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = ns.oid AND d.refobjsubid = 0
		AND d.classid = 'pg_catalog.pg_class'::regclass
	JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relnamespace = ns.oid
)`

// tableScopeSQL names the schema (ns) and the tables Atlas asks about (rel), by name within the
// namespace's OID: pg_class's index on (relname, relnamespace).
const tableScopeSQL = `WITH ns AS (
	SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = $1
), rel AS (
	SELECT c.* FROM ns JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname IN (%TABLES%)
)`

// enumsSQL: the rows of Atlas's enumsQuery for one schema, its enum types found through
// pg_depend as its relations are.
const enumsSQL = `WITH ns AS (
	SELECT oid, nspname FROM pg_catalog.pg_namespace WHERE nspname = $1
)
SELECT ns.nspname AS schema_name, e.enumtypid AS enum_id, t.typname AS enum_name, e.enumlabel AS enum_value
FROM ns
JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_namespace'::regclass AND d.refobjid = ns.oid AND d.refobjsubid = 0
	AND d.classid = 'pg_catalog.pg_type'::regclass
JOIN pg_catalog.pg_type t ON t.oid = d.objid AND t.typnamespace = ns.oid
JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
ORDER BY ns.nspname, e.enumtypid, e.enumsortorder`

// tablesSQL: the rows of Atlas's tablesQuery (information_schema.tables' base tables, less
// partitions and extension members) for one schema.
const tablesSQL = scopeSQL + `
SELECT
	c.oid,
	ns.nspname AS table_schema,
	c.relname AS table_name,
	pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
	t4.partattrs AS partition_attrs,
	t4.partstrat AS partition_strategy,
	pg_get_expr(t4.partexprs, t4.partrelid) AS partition_exprs,
	'{}' AS attrs
FROM ns
JOIN nsrel c ON true
LEFT JOIN pg_catalog.pg_partitioned_table AS t4 ON t4.partrelid = c.oid
LEFT JOIN pg_catalog.pg_depend AS t5 ON t5.classid = 'pg_catalog.pg_class'::regclass AND t5.objid = c.oid AND t5.deptype = 'e'
WHERE c.relkind IN ('r', 'p')
	AND ns.oid IS DISTINCT FROM pg_catalog.pg_my_temp_schema()
	AND NOT pg_catalog.pg_is_other_temp_schema(ns.oid)
	AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
		OR pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
		OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
	AND NOT COALESCE(c.relispartition, false)
	AND t5.objid IS NULL
ORDER BY ns.nspname, c.relname`

// columnsSQL: the rows of Atlas's columnsQuery, which reads information_schema.columns, for the
// named tables of one schema. Each column is computed as that view computes it, with the same
// information_schema functions; the last value of an identity column's sequence as
// pg_sequences computes it, from the sequence the column owns rather than a scan of every
// sequence in the database.
const columnsSQL = tableScopeSQL + `
SELECT
	c.relname AS table_name,
	a.attname AS column_name,
	CASE WHEN t.typtype = 'd' THEN
		CASE WHEN bt.typelem <> 0 AND bt.typlen = -1 THEN 'ARRAY'
			WHEN nbt.nspname = 'pg_catalog' THEN pg_catalog.format_type(t.typbasetype, NULL)
			ELSE 'USER-DEFINED' END
	ELSE
		CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN 'ARRAY'
			WHEN nt.nspname = 'pg_catalog' THEN pg_catalog.format_type(a.atttypid, NULL)
			ELSE 'USER-DEFINED' END
	END AS data_type,
	pg_catalog.format_type(a.atttypid, a.atttypmod) AS format_type,
	CASE WHEN a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) THEN 'NO' ELSE 'YES' END AS is_nullable,
	CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END AS column_default,
	information_schema._pg_char_max_length(information_schema._pg_truetypid(a, t), information_schema._pg_truetypmod(a, t)) AS character_maximum_length,
	information_schema._pg_numeric_precision(information_schema._pg_truetypid(a, t), information_schema._pg_truetypmod(a, t)) AS numeric_precision,
	information_schema._pg_datetime_precision(information_schema._pg_truetypid(a, t), information_schema._pg_truetypmod(a, t)) AS datetime_precision,
	information_schema._pg_numeric_scale(information_schema._pg_truetypid(a, t), information_schema._pg_truetypmod(a, t)) AS numeric_scale,
	information_schema._pg_interval_type(information_schema._pg_truetypid(a, t), information_schema._pg_truetypmod(a, t)) AS interval_type,
	NULL::name AS character_set_name,
	co.collname AS collation_name,
	CASE WHEN a.attidentity IN ('a', 'd') THEN 'YES' ELSE 'NO' END AS is_identity,
	seq.seqstart AS identity_start,
	seq.seqincrement AS identity_increment,
	CASE WHEN a.attidentity IN ('a', 'd') THEN
		CASE WHEN pg_catalog.has_sequence_privilege(seq.seqrelid, 'SELECT,USAGE') THEN pg_catalog.pg_sequence_last_value(seq.seqrelid) END
	END AS identity_last,
	CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END AS identity_generation,
	CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END AS generation_expression,
	pg_catalog.col_description(c.oid, a.attnum) AS comment,
	t.typtype,
	t.typelem,
	t.oid,
	a.attnum
FROM ns
JOIN rel c ON true
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace nt ON nt.oid = t.typnamespace
LEFT JOIN (pg_catalog.pg_type bt JOIN pg_catalog.pg_namespace nbt ON nbt.oid = bt.typnamespace)
	ON t.typtype = 'd' AND t.typbasetype = bt.oid
LEFT JOIN (pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace nco ON nco.oid = co.collnamespace)
	ON a.attcollation = co.oid AND (nco.nspname <> 'pg_catalog' OR co.collname <> 'default')
LEFT JOIN (pg_catalog.pg_depend dep JOIN pg_catalog.pg_sequence seq
	ON dep.classid = 'pg_catalog.pg_class'::regclass AND dep.objid = seq.seqrelid AND dep.deptype = 'i')
	ON dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.refobjid = c.oid AND dep.refobjsubid = a.attnum
WHERE c.relkind IN ('r', 'v', 'f', 'p')
	AND NOT pg_catalog.pg_is_other_temp_schema(ns.oid)
	AND (pg_catalog.pg_has_role(c.relowner, 'USAGE') OR pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))
ORDER BY c.relname, a.attnum`

// indexesSQL: the rows of Atlas's indexesQuery for the named tables of one schema. Atlas's
// unnests every index of the database and aggregates every constraint; this one reads only the
// tables' indexes and the constraints that use them.
const indexesSQL = tableScopeSQL + `
SELECT
	t.relname AS table_name,
	i.relname AS index_name,
	am.amname AS index_type,
	a.attname AS column_name,
	(a.attname <> '' AND idx.indnatts > idx.indnkeyatts AND idx.ord > idx.indnkeyatts) AS included,
	idx.indisprimary AS primary,
	idx.indisunique AS unique,
	(CASE WHEN idx.indisexclusion THEN (SELECT conexclop[idx.ord]::regoper FROM pg_catalog.pg_constraint WHERE conindid = idx.indexrelid AND conrelid = idx.indrelid) END) AS excoper,
	con.nametypes AS constraints,
	pg_get_expr(idx.indpred, idx.indrelid) AS predicate,
	pg_get_indexdef(idx.indexrelid, idx.ord, false) AS expression,
	pg_index_column_has_property(idx.indexrelid, idx.ord, 'desc') AS isdesc,
	pg_index_column_has_property(idx.indexrelid, idx.ord, 'nulls_first') AS nulls_first,
	pg_index_column_has_property(idx.indexrelid, idx.ord, 'nulls_last') AS nulls_last,
	obj_description(i.oid, 'pg_class') AS comment,
	i.reloptions AS options,
	op.opcname AS opclass_name,
	op.opcnamespace::regnamespace::text AS opclass_schema,
	op.opcdefault AS opclass_default,
	a2.attoptions AS opclass_params,
	%NULLSNOTDISTINCT% AS indnullsnotdistinct
FROM
	(
		SELECT
			i.*,
			generate_series(1, array_length(i.indkey, 1)) AS ord,
			unnest(i.indkey) AS key
		FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
	) idx
	JOIN pg_catalog.pg_class i ON i.oid = idx.indexrelid
	JOIN rel t ON t.oid = idx.indrelid
	LEFT JOIN (
		-- The constraints an index serves: its table's, and the foreign keys of other tables
		-- (in any schema) that reference it, which depend on it.
		SELECT con.conindid, jsonb_object_agg(con.conname, con.contype) AS nametypes
		FROM pg_catalog.pg_constraint con
		WHERE con.oid IN (
			SELECT c.oid FROM rel JOIN pg_catalog.pg_constraint c ON c.conrelid = rel.oid
			UNION
			SELECT d.objid FROM rel
			JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid
			JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = i.indexrelid
				AND d.classid = 'pg_catalog.pg_constraint'::regclass
		)
		GROUP BY con.conindid
	) con ON con.conindid = idx.indexrelid
	LEFT JOIN pg_catalog.pg_attribute a ON (a.attrelid, a.attnum) = (idx.indrelid, idx.key)
	JOIN pg_catalog.pg_am am ON am.oid = i.relam
	LEFT JOIN pg_catalog.pg_opclass op ON op.oid = idx.indclass[idx.ord-1]
	LEFT JOIN pg_catalog.pg_attribute a2 ON (a2.attrelid, a2.attnum) = (idx.indexrelid, idx.ord)
ORDER BY table_name, index_name, idx.ord`

// fksSQL: the rows of Atlas's fksQuery for the named tables of one schema. Atlas pairs the key
// columns with set-returning functions in the select list; here they are a LATERAL unnest, the
// same rows in the same order, because PostgreSQL cannot estimate the former: it expected 1,000
// rows and merge-joined pg_attribute in index order, which read the whole of it for tables of
// high OIDs (416 ms beside 24,000 other tables, for the schema of a desired state made a
// moment before).
const fksSQL = tableScopeSQL + `
SELECT
	con.conname AS constraint_name,
	t1.relname AS table_name,
	a1.attname AS column_name,
	ns.nspname AS schema_name,
	t2.relname AS referenced_table_name,
	a2.attname AS referenced_column_name,
	ns2.nspname AS referenced_schema_name,
	con.confupdtype,
	con.confdeltype
FROM ns
JOIN rel t1 ON true
JOIN pg_catalog.pg_constraint con ON con.conrelid = t1.oid AND con.contype = 'f'
JOIN pg_catalog.pg_class t2 ON t2.oid = con.confrelid
JOIN pg_catalog.pg_namespace ns2 ON ns2.oid = t2.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(conkey, confkey, ord)
JOIN pg_catalog.pg_attribute a1 ON a1.attrelid = con.conrelid AND a1.attnum = k.conkey
JOIN pg_catalog.pg_attribute a2 ON a2.attrelid = con.confrelid AND a2.attnum = k.confkey
ORDER BY con.conrelid, con.conname, k.ord`

// checksSQL: the rows of Atlas's checksQuery for the named tables of one schema.
const checksSQL = tableScopeSQL + `
SELECT
	rel.relname AS table_name,
	t1.conname AS constraint_name,
	pg_get_expr(t1.conbin, t1.conrelid) AS expression,
	t2.attname AS column_name,
	t1.conkey AS column_indexes,
	t1.connoinherit AS no_inherit
FROM ns
JOIN rel ON true
JOIN pg_catalog.pg_constraint t1 ON t1.conrelid = rel.oid AND t1.contype = 'c' AND t1.connamespace = ns.oid
JOIN pg_catalog.pg_attribute t2 ON t2.attrelid = t1.conrelid AND t2.attnum = ANY (t1.conkey)
ORDER BY t1.conname, array_position(t1.conkey, t2.attnum)`
