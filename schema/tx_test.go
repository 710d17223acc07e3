package schema_test

import (
	"context"
	"database/sql"
	"errors"
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

// BEGIN can travel with the first batch and COMMIT with the last: what the batch ran is
// committed whole, a batch that fails before its COMMIT commits nothing, and nothing runs in the
// transaction once a batch committed it.
func TestBatchesBeginAndCommit(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE acme (x int); CREATE TABLE globex (x int)`); err != nil {
		t.Fatal(err)
	}
	count := func(table string) int { return countRows(t, db, table) }

	tx, rows, err := schema.BeginBatch(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (1)`},
		schema.Stmt{SQL: `SELECT count(*), 'a', NULL::text FROM acme`})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0] != nil || strings.Join(rows[1], ",") != "1,a," {
		t.Fatalf("rows: %q", rows)
	}
	if n := count("acme"); n != 0 {
		t.Fatalf("acme has %d rows before the commit", n)
	}
	if _, err := tx.Batch(ctx, schema.Stmt{SQL: `INSERT INTO acme VALUES (2)`}, schema.CommitStmt); err != nil {
		t.Fatal(err)
	}
	if n := count("acme"); n != 2 {
		t.Fatalf("acme has %d rows after the batch's commit, want 2", n)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO acme VALUES (3)`); err == nil {
		t.Fatal("a statement ran after the batch committed")
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after the batch's: %v", err)
	}
	if err := tx.Rollback(); err == nil {
		t.Fatal("rollback after the commit succeeded")
	}

	// A failure before the COMMIT: nothing of the batch stays, and the connection goes back to
	// the pool out of any transaction.
	tx, _, err = schema.BeginBatch(ctx, db, false, schema.Stmt{SQL: `INSERT INTO globex VALUES (1)`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Batch(ctx, schema.Stmt{SQL: `INSERT INTO globex VALUES (2)`}, schema.Stmt{SQL: `INSERT INTO nope VALUES (1)`},
		schema.CommitStmt); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want the failing statement", err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("commit of the failed transaction succeeded")
	}
	if n := count("globex"); n != 0 {
		t.Fatalf("globex has %d rows after a failed batch", n)
	}
	if n := count("acme"); n != 2 {
		t.Fatalf("acme has %d rows, want 2", n)
	}
	if n := count(`pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); n != 0 {
		t.Fatalf("%d connections left in a transaction", n)
	}

	// A BEGIN batch that fails leaves nothing open.
	if _, _, err := schema.BeginBatch(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (9)`}, schema.Stmt{SQL: `SELECT 1/0`}); err == nil {
		t.Fatal("a failing BEGIN batch succeeded")
	}
	if n := count("acme"); n != 2 {
		t.Fatalf("acme has %d rows after a failed BEGIN batch, want 2", n)
	}
}

// A lead goes with BEGIN in the round trip of the transaction's first batch: when it raises,
// nothing after it runs and the error says it was the lead's; a transaction that never sent a
// batch leaves nothing behind; a statement that cannot carry the lead sends it first.
func TestBeginLeadGoesWithTheFirstBatch(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE acme (x int); CREATE TABLE globex (x int); CREATE TABLE gate (open bool); INSERT INTO gate VALUES (true)`); err != nil {
		t.Fatal(err)
	}
	count := func(table string) int { return countRows(t, db, table) }
	guard := schema.Stmt{SQL: `SELECT 1 / count(*) FROM gate WHERE open`}

	tx, err := schema.BeginLead(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (1)`}, guard)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tx.Batch(ctx, schema.Stmt{SQL: `SELECT count(*) FROM acme`}, schema.CommitStmt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "1" {
		t.Fatalf("results %q: want the batch's own two, the lead's row counted in the first", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count("acme"); n != 1 {
		t.Fatalf("acme has %d rows, want 1", n)
	}

	// The guard fails: neither the lead before it nor the batch after it stays.
	if _, err := db.Exec(`UPDATE gate SET open = false`); err != nil {
		t.Fatal(err)
	}
	tx, err = schema.BeginLead(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (2)`}, guard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Batch(ctx, schema.Stmt{SQL: `INSERT INTO globex VALUES (1)`}, schema.CommitStmt)
	var lead *schema.LeadError
	if !errors.As(err, &lead) || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("err = %v, want the guard's, as a LeadError", err)
	}
	tx.Rollback()
	if a, g := count("acme"), count("globex"); a != 1 || g != 0 {
		t.Fatalf("acme %d, globex %d rows after the guard failed: want 1 and 0", a, g)
	}

	// The batch's own failure is not the lead's.
	if _, err := db.Exec(`UPDATE gate SET open = true`); err != nil {
		t.Fatal(err)
	}
	tx, err = schema.BeginLead(ctx, db, false, guard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Batch(ctx, schema.Stmt{SQL: `INSERT INTO globex VALUES (1)`}, schema.Stmt{SQL: `INSERT INTO nope VALUES (1)`}, schema.CommitStmt)
	if err == nil || errors.As(err, &lead) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want the failing statement's, not a LeadError", err)
	}
	tx.Rollback()
	if g := count("globex"); g != 0 {
		t.Fatalf("globex has %d rows after a failed batch", g)
	}

	// Never sent: Rollback and Commit send nothing, and nothing of the lead ran.
	tx, err = schema.BeginLead(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (3)`})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count("acme"); n != 1 {
		t.Fatalf("acme has %d rows after a transaction that sent nothing", n)
	}

	// A query sends the lead first, in the same transaction.
	tx, err = schema.BeginLead(ctx, db, false, schema.Stmt{SQL: `INSERT INTO acme VALUES (4)`})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM acme`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows the transaction sees: %d, %v; want 2", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := count("acme"); n != 1 {
		t.Fatalf("acme has %d rows after the rollback, want 1", n)
	}
	if n := count(`pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); n != 0 {
		t.Fatalf("%d connections left in a transaction", n)
	}
}

// countRows counts the rows of table (or of "table WHERE ...").
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
