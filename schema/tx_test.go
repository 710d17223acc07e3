package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/erpctl/erpctl/schema"
)

// Each statement goes alone: a second statement hidden in one is refused by PostgreSQL, and
// the statements before it in the batch are rolled back with the transaction.
func TestExecStatementsRunsOneStatementEach(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE canary (x int); INSERT INTO canary VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	tx, err := schema.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	err = tx.ExecStatements(ctx, `CREATE TABLE a (x int)`, `CREATE TABLE b (x int CHECK (x > 0)); DROP TABLE canary`)
	if err == nil || !strings.Contains(err.Error(), "cannot insert multiple commands") || !strings.Contains(err.Error(), `CREATE TABLE b`) {
		t.Fatalf("err = %v, want a refusal naming the statement", err)
	}
	tx.Rollback()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM canary`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("canary: %d, %v", n, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("tables a, b: %d, %v", n, err)
	}

	// In order, in one transaction, on the transaction's own connection.
	tx, err = schema.Begin(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.ExecStatements(ctx, `CREATE TABLE a (x int)`, `INSERT INTO a VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM a`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows in a: %d, %v", n, err)
	}
	if err := tx.ExecStatements(ctx, `INSERT INTO nope VALUES (1)`); err == nil || !strings.Contains(err.Error(), `run "INSERT INTO nope`) {
		t.Fatalf("err = %v", err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("commit of a failed transaction succeeded")
	}
	if err := db.QueryRow(`SELECT count(*) FROM pg_class WHERE relname = 'a'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("table a after a failed transaction: %d, %v", n, err)
	}
}
