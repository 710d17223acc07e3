package schema_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// depotsV1 and depotsV2: V2 adds a column with its foreign key, a column with its check, and
// changes an existing check, all on one table.
const depotsV1 = `schema "tenant" {}
table "depots" {
  schema = schema.tenant
  column "code" {
    type = text
  }
}
table "parcels" {
  schema = schema.tenant
  column "weight" {
    type = integer
  }
  check "parcels_weight_check" {
    expr = "(weight >= 0)"
  }
}
`

var depotsV2 = strings.Replace(depotsV1, `  check "parcels_weight_check" {
    expr = "(weight >= 0)"
  }`, `  column "depot_id" {
    type = bigint
    null = true
  }
  column "pieces" {
    type    = integer
    default = 1
  }
  check "parcels_weight_check" {
    expr = "((weight >= 0) AND (weight < 1000))"
  }
  check "parcels_pieces_check" {
    expr = "(pieces > 0)"
  }
  foreign_key "parcels_depot_id_fkey" {
    columns     = [column.depot_id]
    ref_columns = [table.depots.column.id]
  }`, 1)

// desiredDepots loads src as module "depots" and returns its desired state in schema name.
func desiredDepots(t *testing.T, src, name string) *atlas.Schema {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "depots.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := modules.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	desired, err := reg.Desired([]string{"depots"}, name)
	if err != nil {
		t.Fatal(err)
	}
	return desired
}

// planNormalized plans desired against the schema as it is, with checks compared (as erpctl
// diffs tenants), and returns the safe changes' SQL.
func planNormalized(t *testing.T, p *schema.Planner, tx *schema.Tx, desired *atlas.Schema) []string {
	t.Helper()
	ctx := context.Background()
	cur, err := p.Inspect(ctx, tx, desired.Name)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := p.Normalize(ctx, tx, desired)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Diff(ctx, cur, norm, schema.ManagedOf(desired), atlas.DiffNormalized())
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := p.Plan(ctx, d.Apply, "")
	if err != nil {
		t.Fatal(err)
	}
	return stmts
}

// Citus refuses an ALTER TABLE that adds a constraint beside any other subcommand: with
// ConstraintsApart (on Citus) the plan gives each constraint an existing table gains a statement
// of its own, after the columns it names; without it (plain PostgreSQL) one statement does it
// all. Either way the result is the declared schema on two tenants, each with its own rows.
func TestPlanAddsEachConstraintAlone(t *testing.T) {
	t.Parallel()
	t.Run("apart", func(t *testing.T) { t.Parallel(); testConstraintsPlanned(t, true) })
	t.Run("together", func(t *testing.T) { t.Parallel(); testConstraintsPlanned(t, false) })
}

func testConstraintsPlanned(t *testing.T, apart bool) {
	db, p := openWith(t, schema.PlannerOptions{ConstraintsApart: apart})
	ctx := context.Background()
	rows := map[string]string{"tenant_acme": "(10), (20)", "tenant_globex": "(999)"}
	for name := range rows {
		apply(t, db, p, desiredDepots(t, depotsV1, name))
		if _, err := db.Exec(`INSERT INTO "` + name + `".parcels (weight) VALUES ` + rows[name]); err != nil {
			t.Fatal(err)
		}
	}
	subcommand := regexp.MustCompile(`(ADD|DROP|ALTER) (COLUMN|CONSTRAINT)`)
	for name := range rows {
		tx, err := schema.Begin(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		stmts := planNormalized(t, p, tx, desiredDepots(t, depotsV2, name))
		if !apart {
			if len(stmts) != 1 || len(subcommand.FindAllString(stmts[0], -1)) != 6 {
				t.Fatalf("%s: want one statement of six subcommands, got %q", name, stmts)
			}
		}
		var adds []string
		for i, s := range stmts {
			if !apart || !strings.Contains(s, "ADD CONSTRAINT") {
				continue
			}
			adds = append(adds, s)
			if n := len(subcommand.FindAllString(s, -1)); n != 1 {
				t.Fatalf("%s: a constraint added beside %d other subcommands: %s", name, n-1, s)
			}
			if slices.ContainsFunc(stmts[i:], func(s string) bool { return strings.Contains(s, "ADD COLUMN") }) {
				t.Fatalf("%s: a constraint is added before a column: %q", name, stmts)
			}
		}
		if apart && len(adds) != 3 {
			t.Fatalf("%s: want the three constraints added one by one, got %q", name, stmts)
		}
		if err := tx.ExecStatements(ctx, append([]string{`SET LOCAL search_path TO "` + name + `"`}, stmts...)...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if again := planNormalized(t, p, tx, desiredDepots(t, depotsV2, name)); len(again) != 0 {
			t.Fatalf("%s: after the apply the plan is still %q", name, again)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string][]string{"tenant_acme": {"10|<null>|1", "20|<null>|1"}, "tenant_globex": {"999|<null>|1"}} {
		var got []string
		r, err := db.Query(`SELECT weight || '|' || coalesce(depot_id::text, '<null>') || '|' || pieces FROM "` + name + `".parcels ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		r.Close()
		if !slices.Equal(got, want) {
			t.Fatalf("%s's parcels: %v, want %v", name, got, want)
		}
		if _, err := db.Exec(`INSERT INTO "` + name + `".parcels (weight, pieces) VALUES (1, 0)`); err == nil {
			t.Fatalf("%s: the new check let a row through", name)
		}
	}
}
