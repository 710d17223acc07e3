package schema_test

import (
	"context"
	"database/sql"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"ariga.io/atlas/sql/postgres"
	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/internal/pgtest"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// extraShapesSQL holds what a module could declare, or a hand could make, beyond the shapes the
// modules and the tests use: serial columns, arrays, domains, collations, generated columns,
// unique constraints beside unique indexes, composite and cross-schema foreign keys, exclusion
// constraints, partitioned tables, INCLUDE, DESC and NULLS FIRST parts, operator classes, index
// storage parameters, comments, views and standalone sequences (which inspection skips).
const extraShapesSQL = `
CREATE SCHEMA shape_extra_ref;
CREATE TABLE shape_extra_ref.ref (id bigint PRIMARY KEY);
CREATE SCHEMA shape_extra;
SET search_path TO shape_extra;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE parent (
	id serial PRIMARY KEY, small smallserial, big bigserial,
	code varchar(12) UNIQUE, tags text[] DEFAULT '{}', grid integer[][], m mood NOT NULL DEFAULT 'ok', ms mood[],
	price numeric, ratio numeric(5,3) CHECK (ratio BETWEEN 0 AND 1), at timestamp(3) DEFAULT now(),
	atz timestamptz(0), d interval hour to minute, b bit(3), vb varbit(8), c char(2), name text COLLATE "C",
	p posint, g bigint GENERATED ALWAYS AS (id * 2) STORED, j jsonb NOT NULL DEFAULT '{}'::jsonb,
	u uuid DEFAULT gen_random_uuid(), f float8 DEFAULT 1.5, r real, ok boolean DEFAULT true, t time(2), dt date DEFAULT CURRENT_DATE,
	x xml, ip inet, mon money, by bytea,
	CONSTRAINT parent_code_name_key UNIQUE (code, name)
);
COMMENT ON TABLE parent IS 'the parent';
COMMENT ON COLUMN parent.code IS 'a code';
CREATE TABLE child (
	id bigint GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 5) PRIMARY KEY,
	parent_id integer REFERENCES parent (id) ON DELETE CASCADE ON UPDATE RESTRICT,
	ref_id bigint REFERENCES shape_extra_ref.ref (id) ON DELETE SET DEFAULT,
	up_id bigint REFERENCES child (id),
	a int, b int, txt text,
	CONSTRAINT child_ab CHECK (a < b AND b < 100) NO INHERIT,
	CONSTRAINT child_ab_key UNIQUE NULLS NOT DISTINCT (a, b)
);
CREATE TABLE pair (x int, y int, PRIMARY KEY (x, y));
CREATE TABLE pair_ref (x int, y int, CONSTRAINT pair_ref_fk FOREIGN KEY (x, y) REFERENCES pair (x, y) ON UPDATE CASCADE);
CREATE UNIQUE INDEX child_lower ON child ((lower(txt)), a) WHERE b > 0;
CREATE INDEX child_desc ON child (a DESC NULLS LAST, b NULLS FIRST) INCLUDE (parent_id, txt);
CREATE INDEX parent_tags ON parent USING gin (tags);
CREATE INDEX parent_name_pattern ON parent (name text_pattern_ops);
CREATE INDEX parent_brin ON parent USING brin (at) WITH (pages_per_range = 32);
CREATE INDEX parent_hash ON parent USING hash (code);
COMMENT ON INDEX child_desc IS 'an index';
CREATE TABLE ranges (r int4range, EXCLUDE USING gist (r WITH &&));
CREATE TABLE part (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE part_2025 PARTITION OF part FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE hashed (id int, k text) PARTITION BY HASH (lower(k));
CREATE VIEW child_view AS SELECT id, a FROM child;
CREATE SEQUENCE standalone;
CREATE TABLE "Mixed Case" ("Col" int, "weird ""name""" text);
RESET search_path;
`

// TestScopedInspectionIsAtlas inspects every table shape erpctl knows both ways, with Atlas's own
// queries over the whole catalog and with the scoped ones, and requires the same rows from each
// query and the same schema values: the built-in modules, every module text in the repository's
// tests, the control plane's catalog, a database an old erpctl made (restored by pg_dump), and
// extraShapesSQL. Each schema has the others beside it, so a scoped query that reached another
// schema's objects would show.
func TestScopedInspectionIsAtlas(t *testing.T) {
	t.Parallel()
	db, p := open(t)
	ctx := context.Background()

	var schemas []string
	// The built-in modules, and each module text of the tests beside them.
	builtin, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	applyModules(t, db, p, builtin, "shape_builtin")
	schemas = append(schemas, "shape_builtin")
	texts := moduleTexts(t)
	loaded := 0
	for i, text := range texts {
		// A text with %s is a template: tried as it stands with nothing put in.
		reg, ok := registryWith(t, strings.ReplaceAll(text, "%s", ""))
		if !ok {
			continue
		}
		name := fmt.Sprintf("shape_test_%02d", i)
		if !tryApplyModules(t, db, p, reg, name) {
			continue
		}
		loaded++
		schemas = append(schemas, name)
	}
	// Most of the tests' module texts are valid modules; the rest test refusals.
	if loaded < len(texts)/2 || loaded < 15 {
		t.Fatalf("only %d of the %d module texts in the tests loaded and applied", loaded, len(texts))
	}

	// The control plane's catalog, from its HCL.
	catalog, err := os.ReadFile("../controlplane/catalog.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var realm atlas.Realm
	if err := postgres.EvalHCLBytes(catalog, &realm, nil); err != nil {
		t.Fatal(err)
	}
	apply(t, db, p, realm.Schemas[0])
	schemas = append(schemas, realm.Schemas[0].Name)

	// An old erpctl's database, as pg_dump restores it, renamed out of the catalog's way, and the
	// extra shapes. Both are trusted fixtures of many statements, run whole by the simple protocol.
	dump, err := os.ReadFile("../controlplane/testdata/catalog-e8397d3.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER SCHEMA erpctl RENAME TO erpctl_now`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{string(dump), `ALTER SCHEMA erpctl RENAME TO erpctl_e8397d3`, `ALTER SCHEMA erpctl_now RENAME TO erpctl`,
		`SELECT pg_catalog.set_config('search_path', 'public', false)`, extraShapesSQL} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s...: %v", q, err)
		}
	}
	schemas = append(schemas, "erpctl_e8397d3", "tenant_acme", "tenant_globex", "shape_extra", "shape_extra_ref")

	// The fingerprint of one schema, read by its OID, is the one the full pass reads by scanning.
	all, err := schema.Fingerprints(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	some, err := schema.FingerprintsOf(ctx, db, schemas)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range schemas {
		one, err := schema.Fingerprint(ctx, db, name)
		if err != nil {
			t.Fatal(err)
		}
		if one == "" || one != all[name] || one != some[name] {
			t.Errorf("fingerprints of %s: %q alone, %q among its list, %q among all", name, one, some[name], all[name])
		}
	}

	for _, name := range schemas {
		t.Run(name, func(t *testing.T) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			tw := &twin{t: t, q: tx}
			drv, err := postgres.Open(tw)
			if err != nil {
				t.Fatal(err)
			}
			want, err := drv.InspectSchema(ctx, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Inspect(ctx, tx, name)
			if err != nil {
				t.Fatal(err)
			}
			if tw.compared < 5 {
				t.Fatalf("only %d of Atlas's queries were compared", tw.compared)
			}
			if len(want.Tables) == 0 {
				t.Fatalf("schema %s has no tables", name)
			}
			for _, pair := range [][2]*atlas.Schema{{want, got}, {got, want}} {
				changes, err := postgres.DefaultDiff.SchemaDiff(pair[0], pair[1])
				if err != nil {
					t.Fatal(err)
				}
				if len(changes) > 0 {
					t.Errorf("diff between the inspections: %d changes, first %T", len(changes), changes[0])
				}
			}
			canonical(want)
			canonical(got)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("the scoped inspection of %s differs from Atlas's", name)
				for i := range min(len(want.Tables), len(got.Tables)) {
					if !reflect.DeepEqual(want.Tables[i], got.Tables[i]) {
						t.Errorf("table %s differs", want.Tables[i].Name)
					}
				}
			}
		})
	}
}

// canonical puts in order what Atlas adds in Go's map order: the constraints an index serves.
func canonical(s *atlas.Schema) {
	for _, t := range s.Tables {
		idxs := slices.Clone(t.Indexes)
		if t.PrimaryKey != nil {
			idxs = append(idxs, t.PrimaryKey)
		}
		for _, idx := range idxs {
			slices.SortStableFunc(idx.Attrs, func(a, b atlas.Attr) int {
				ca, oka := a.(*postgres.Constraint)
				cb, okb := b.(*postgres.Constraint)
				if !oka || !okb {
					return 0
				}
				return strings.Compare(ca.N, cb.N)
			})
		}
	}
}

// twin runs each of Atlas's queries as Atlas wrote it and in its scoped form, requires the same
// rows in the same order, and gives Atlas its own query's rows.
type twin struct {
	t        *testing.T
	q        schema.Querier
	compared int
}

func (w *twin) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return w.q.ExecContext(ctx, query, args...)
}

func (w *twin) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	scoped, err := schema.ScopedQuery(query, len(args))
	if err != nil {
		w.t.Errorf("no scoped form: %v", err)
	} else if scoped != query {
		want, got := w.rows(ctx, query, args), w.rows(ctx, scoped, args)
		if !slices.Equal(want, got) {
			w.t.Errorf("scoped query: rows differ from Atlas's\nquery: %.100s\nAtlas's (%d):\n%s\nscoped (%d):\n%s",
				strings.Join(strings.Fields(query), " "), len(want), strings.Join(want, "\n"), len(got), strings.Join(got, "\n"))
		}
		w.compared++
	}
	return w.q.QueryContext(ctx, query, args...)
}

// rows reads every row of a query as text, one line each.
func (w *twin) rows(ctx context.Context, query string, args []any) []string {
	rows, err := w.q.QueryContext(ctx, query, args...)
	if err != nil {
		w.t.Fatalf("%.80s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			w.t.Fatal(err)
		}
		line := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			line[i] = fmt.Sprintf("%v", v)
		}
		out = append(out, strings.Join(line, " | "))
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// moduleTexts returns every string literal in the repository's tests that is (or may be) a
// module file: one holding the placeholder schema.
func moduleTexts(t *testing.T) []string {
	t.Helper()
	var texts []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, `schema "tenant"`) && strings.Contains(s, "table ") {
					texts = append(texts, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

// registryWith loads text as a module beside the built-in ones: as a new module, or in place of
// each built-in one. ok is false when it loads neither way (a test of a refusal).
func registryWith(t *testing.T, text string) (*modules.Registry, bool) {
	t.Helper()
	for _, name := range []string{"shapes", "product", "inventory"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name+".hcl"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if reg, err := modules.Load(dir); err == nil {
			return reg, true
		}
	}
	return nil, false
}

func applyModules(t *testing.T, db *sql.DB, p *schema.Planner, reg *modules.Registry, name string) {
	t.Helper()
	if !tryApplyModules(t, db, p, reg, name) {
		t.Fatalf("apply the modules to %s", name)
	}
}

// tryApplyModules applies every module of reg to schema name, reporting false when that fails
// (a module that loads but PostgreSQL refuses, as some tests' modules are).
func tryApplyModules(t *testing.T, db *sql.DB, p *schema.Planner, reg *modules.Registry, name string) bool {
	t.Helper()
	desired, err := reg.Desired(reg.Names(), name)
	if err != nil {
		return false
	}
	ctx := context.Background()
	d, err := p.Diff(ctx, nil, desired, schema.ManagedOf(desired))
	if err != nil {
		return false
	}
	stmts, err := p.Plan(ctx, d.Apply, "")
	if err != nil {
		return false
	}
	tx, err := schema.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stmts = append([]string{`CREATE SCHEMA "` + name + `"`, `SET LOCAL search_path TO "` + name + `"`}, stmts...)
	if err := tx.ExecStatements(ctx, stmts...); err != nil {
		t.Logf("%s: %v", name, err)
		return false
	}
	return tx.Commit() == nil
}

// TestInspectionReadsOnlyItsSchema counts the catalog rows that inspecting and fingerprinting one
// tenant schema read, before and after 100 other schemas join it: the count must not grow with
// them, where Atlas's own inspection reads them all (3,202 rows, then some 13,000).
func TestInspectionReadsOnlyItsSchema(t *testing.T) {
	t.Parallel()
	db, p := open(t)
	ctx := context.Background()
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	applyModules(t, db, p, reg, "tenant_acme")
	applyModules(t, db, p, reg, "tenant_globex")
	reads := func() (scoped, atlasOwn int64) {
		rec := &recorder{q: db}
		if s, err := p.Inspect(ctx, rec, "tenant_acme"); err != nil || s == nil || len(s.Tables) != 4 {
			t.Fatalf("inspect tenant_acme: %v, %v", s, err)
		}
		if fp, err := schema.Fingerprint(ctx, rec, "tenant_acme"); err != nil || fp == "" {
			t.Fatalf("fingerprint tenant_acme: %q, %v", fp, err)
		}
		scoped, err := pgtest.CatalogReads(ctx, db, rec.queries)
		if err != nil {
			t.Fatal(err)
		}
		rec = &recorder{q: db}
		drv, err := postgres.Open(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.InspectSchema(ctx, "tenant_acme", nil); err != nil {
			t.Fatal(err)
		}
		atlasOwn, err = pgtest.CatalogReads(ctx, db, rec.queries)
		if err != nil {
			t.Fatal(err)
		}
		return scoped, atlasOwn
	}
	before, atlasBefore := reads()
	if err := pgtest.AddNoise(ctx, db, 100); err != nil {
		t.Fatal(err)
	}
	var noise int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname LIKE 'noise\_%'`).Scan(&noise); err != nil {
		t.Fatal(err)
	}
	after, atlasAfter := reads()
	t.Logf("catalog rows read: scoped %d then %d; Atlas's own %d then %d; the other schemas hold %d relations",
		before, after, atlasBefore, atlasAfter, noise)
	if atlasAfter-atlasBefore < noise {
		t.Fatalf("Atlas's own inspection read %d more rows with %d more relations in the database: the count does not see a whole-catalog read", atlasAfter-atlasBefore, noise)
	}
	// A few more rows at most (deeper indexes, the planner's choices): not the others' thousands.
	if after-before > noise/10 {
		t.Errorf("inspecting one schema read %d catalog rows beside 100 other schemas, against %d alone", after, before)
	}
}

// recorder runs queries and keeps them.
type recorder struct {
	q       schema.Querier
	queries []pgtest.Query
}

func (r *recorder) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, query, args...)
}

func (r *recorder) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.queries = append(r.queries, pgtest.Query{SQL: query, Args: args})
	return r.q.QueryContext(ctx, query, args...)
}
