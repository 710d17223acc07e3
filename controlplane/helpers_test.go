package controlplane_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/hcl"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// env is one test's control plane on a fresh database, with a modules dir the test may write to.
type env struct {
	t          *testing.T
	ctx        context.Context
	p          *controlplane.Plane
	db         *sql.DB
	url        string
	modulesDir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	dir := t.TempDir()
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: dir})
	if err != nil {
		t.Fatalf("open control plane: %v", err)
	}
	t.Cleanup(p.Close)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{t: t, ctx: ctx, p: p, db: db, url: url, modulesDir: dir}
}

func (e *env) create(slug string, mods ...string) *controlplane.Tenant {
	e.t.Helper()
	tn, err := e.p.CreateTenant(e.ctx, controlplane.CreateOptions{Slug: slug, Modules: mods})
	if err != nil {
		e.t.Fatalf("create tenant %s: %v", slug, err)
	}
	return tn
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// writeModule writes a module file into the modules dir and reloads the modules.
func (e *env) writeModule(name, src string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.modulesDir, name+".hcl"), []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := e.p.ReloadModules(); err != nil {
		e.t.Fatalf("reload modules: %v", err)
	}
}

func builtinSource(t *testing.T, name string) string {
	t.Helper()
	b, err := hcl.FS.ReadFile(name + ".hcl")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) columns(schemaName, table string) []string {
	e.t.Helper()
	return e.strings(`SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schemaName, table)
}

func (e *env) tables(schemaName string) []string {
	e.t.Helper()
	return e.strings(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schemaName)
}

// strings runs a query of one text column and returns its values.
func (e *env) strings(q string, args ...any) []string {
	e.t.Helper()
	rows, err := e.db.QueryContext(e.ctx, q, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) debugHealthy(slug string) *controlplane.TablesReport {
	e.t.Helper()
	rep, err := e.p.DebugTables(e.ctx, slug)
	if err != nil {
		e.t.Fatalf("debug tables %s: %v", slug, err)
	}
	if !rep.Healthy {
		e.t.Fatalf("tenant %s unhealthy: %+v", slug, rep.Tables)
	}
	return rep
}
