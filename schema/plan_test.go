package schema_test

import (
	"context"
	"database/sql"
	"testing"

	atlas "ariga.io/atlas/sql/schema"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/erpctl/erpctl/internal/pgtest"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T) (*sql.DB, *schema.Planner) {
	t.Helper()
	return openWith(t, schema.PlannerOptions{})
}

func openWith(t *testing.T, opts schema.PlannerOptions) (*sql.DB, *schema.Planner) {
	t.Helper()
	db, err := sql.Open("pgx", pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := schema.NewPlanner(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}

// apply diffs the schema against desired, applies the safe changes in one transaction and
// returns how many statements ran.
func apply(t *testing.T, db *sql.DB, p *schema.Planner, desired *atlas.Schema) int {
	t.Helper()
	ctx := context.Background()
	tx, err := schema.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	cur, err := p.Inspect(ctx, tx, desired.Name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Diff(ctx, cur, desired, schema.ManagedOf(desired))
	if err != nil {
		t.Fatal(err)
	}
	// As erpctl runs plans: unqualified, the same text for every schema, under search_path.
	stmts, err := p.Plan(ctx, d.Apply, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Missing {
		if err := tx.ExecStatements(ctx, `CREATE SCHEMA "`+desired.Name+`"`); err != nil {
			t.Fatal(err)
		}
	}
	if len(stmts) > 0 {
		if err := tx.ExecStatements(ctx, append([]string{`SET LOCAL search_path TO "` + desired.Name + `"`}, stmts...)...); err != nil {
			t.Fatalf("%v: %v", stmts, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return len(stmts)
}

func TestApplyThenRediffIsEmpty(t *testing.T) {
	db, p := open(t)
	reg, err := modules.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"tenant_acme", "tenant_globex"} {
		desired, err := reg.Desired(reg.Names(), name)
		if err != nil {
			t.Fatal(err)
		}
		if n := apply(t, db, p, desired); n == 0 {
			t.Fatal("first apply ran nothing")
		}
		fresh, _ := reg.Desired(reg.Names(), name)
		if n := apply(t, db, p, fresh); n != 0 {
			t.Fatalf("second apply ran %d statements", n)
		}
		cur, err := p.Inspect(ctx, db, name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Diff(ctx, cur, fresh, schema.ManagedOf(fresh))
		if err != nil {
			t.Fatal(err)
		}
		if !d.Empty() || len(d.Unmanaged) > 0 {
			t.Fatalf("re-diff of %s not empty: apply %v destructive %v unmanaged %v", name, d.Apply, d.Destructive, d.Unmanaged)
		}
		// Every built-in table, index, foreign key and check exists as declared.
		for _, tr := range d.Tables() {
			if tr.Status != schema.StatusOK {
				t.Fatalf("%s.%s: %s %v", name, tr.Table, tr.Status, tr.Details)
			}
		}
		for _, tbl := range fresh.Tables {
			ct, ok := cur.Table(tbl.Name)
			if !ok || len(ct.Indexes) != len(tbl.Indexes) || len(ct.ForeignKeys) != len(tbl.ForeignKeys) || len(ct.Columns) != len(tbl.Columns) {
				t.Fatalf("%s.%s differs from its declaration", name, tbl.Name)
			}
		}
	}
	fps, err := schema.Fingerprints(ctx, db, "tenant_")
	if err != nil {
		t.Fatal(err)
	}
	if len(fps) != 2 || fps["tenant_acme"] != fps["tenant_globex"] || fps["tenant_acme"] == "" {
		t.Fatalf("equal schemas fingerprint differently: %v", fps)
	}
	if _, err := db.Exec(`ALTER TABLE tenant_acme.products ADD COLUMN extra text`); err != nil {
		t.Fatal(err)
	}
	fps, _ = schema.Fingerprints(ctx, db, "tenant_")
	if fps["tenant_acme"] == fps["tenant_globex"] {
		t.Fatal("a new column did not change the fingerprint")
	}
	if fp, _ := schema.Fingerprint(ctx, db, "tenant_nope"); fp != "" {
		t.Fatalf("missing schema has fingerprint %q", fp)
	}
}
