package schema_test

import (
	"context"
	"testing"

	atlas "ariga.io/atlas/sql/schema"

	"github.com/erpctl/erpctl/schema"
)

// A data check's guard lets the change it guards travel in its batch: where the rows pass, the
// batch runs whole; where they do not, the batch stops at the guard, the guard's refusal is told
// apart from any other error (a division by zero of another statement included), and the
// tenant keeps everything once rolled back to before the guard.
func TestCheckGuardRefusesOnlyWhereRowsFail(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	for _, s := range []string{
		`CREATE SCHEMA tenant_good`, `CREATE TABLE tenant_good.entries (notes text NULL)`, `INSERT INTO tenant_good.entries VALUES ('n')`,
		`CREATE SCHEMA tenant_bad`, `CREATE TABLE tenant_bad.entries (notes text NULL)`, `INSERT INTO tenant_bad.entries VALUES ('n'), (NULL), (NULL)`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	from := &atlas.Column{Name: "notes", Type: &atlas.ColumnType{Type: &atlas.StringType{T: "text"}, Null: true}}
	to := &atlas.Column{Name: "notes", Type: &atlas.ColumnType{Type: &atlas.StringType{T: "text"}}}
	checks, err := schema.DataChecks(ctx, []atlas.Change{&atlas.ModifyTable{T: atlas.New("tenant").AddTables(atlas.NewTable("entries")).Tables[0],
		Changes: []atlas.Change{&atlas.ModifyColumn{From: from, To: to, Change: atlas.ChangeNull}}}})
	if err != nil || len(checks) != 1 || checks[0].Kind != schema.CheckSetNotNull {
		t.Fatalf("checks = %+v, %v", checks, err)
	}
	notNull := func(schemaName string) bool {
		var v bool
		if err := db.QueryRow(`SELECT attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'notes'`,
			schemaName+".entries").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	run := func(schemaName string, stmts ...string) error {
		tx, err := schema.Begin(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := tx.ExecStatements(ctx, stmts...); err != nil {
			if rerr := tx.ExecStatements(ctx, "ROLLBACK TO SAVEPOINT guarded"); rerr != nil {
				t.Fatal(rerr)
			}
			rows, cerr := tx.BatchRows(ctx, schema.CountChecksStmt(schemaName, checks))
			if cerr != nil {
				t.Fatal(cerr)
			}
			failures, cerr := schema.CheckCounts(schemaName, checks, rows[0])
			if cerr != nil || len(failures) != 1 || failures[0].Rows != 2 {
				t.Fatalf("%s: failures after the refusal: %+v, %v", schemaName, failures, cerr)
			}
			return err
		}
		return tx.Commit()
	}
	guarded := func(schemaName string) []string {
		return []string{"SAVEPOINT guarded", schema.CheckGuardSQL(schemaName, checks),
			"ALTER TABLE " + schemaName + ".entries ALTER COLUMN notes SET NOT NULL"}
	}

	if err := run("tenant_good", guarded("tenant_good")...); err != nil || !notNull("tenant_good") {
		t.Fatalf("good: %v, NOT NULL %v", err, notNull("tenant_good"))
	}
	err = run("tenant_bad", guarded("tenant_bad")...)
	if !schema.ChecksRefused(err, 1) || schema.ChecksRefused(err, 2) {
		t.Fatalf("bad: %v, want the guard's refusal at statement 1", err)
	}
	if notNull("tenant_bad") {
		t.Fatal("bad: the change ran after the guard refused it")
	}
	// A division by zero elsewhere in the batch is not a refusal.
	other := append([]string{"SAVEPOINT guarded", "SELECT 1 / 0"}, guarded("tenant_bad")[1:]...)
	if err := run("tenant_bad", other...); err == nil || schema.ChecksRefused(err, 2) {
		t.Fatalf("bad, another statement failing: %v", err)
	}
	var nulls int
	if err := db.QueryRow(`SELECT count(*) FROM tenant_bad.entries WHERE notes IS NULL`).Scan(&nulls); err != nil || nulls != 2 || notNull("tenant_bad") {
		t.Fatalf("bad after its refusals: %d NULLs, NOT NULL %v, %v", nulls, notNull("tenant_bad"), err)
	}
}
