package schema

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Tx is a transaction on a database/sql connection of its own, which Atlas inspects through, so
// that planned statements can reach PostgreSQL through pgx underneath. It begins and ends with
// statements of its own, not database/sql's Tx, so that BEGIN can go in the round trip of the
// first batch (BeginBatch) and COMMIT in that of the last (CommitStmt): an apply in a rollout
// then costs two round trips a tenant, not five.
type Tx struct {
	conn    *sql.Conn
	prepare bool
	ended   bool   // committed by a batch (CommitStmt), or by Commit or Rollback
	lead    []Stmt // not yet sent, with BEGIN (BeginLead)
	begun   bool   // BEGIN was sent
}

// PrepareArgs makes Batch prepare each statement marked Prepare, once per connection, and run it
// by name: the record of an apply (its status, event, steps) then costs no parse and,
// after a few runs, no planning, which were a quarter of the server's time per tenant in a
// rollout. Only on a direct connection: behind a transaction pooler the next transaction may
// run on a server connection that never saw the statement.
func (t *Tx) PrepareArgs(on bool) { t.prepare = on }

// BeginLead starts a transaction whose BEGIN and lead go in the round trip of its first batch
// (Batch, BatchRows, ExecStatements), before that batch's statements; any other statement sends
// them first, in a round trip of their own. Nothing of lead is returned. A lead statement that
// must hold for the rest to run raises an error when it does not: PostgreSQL then runs nothing
// after it, and the batch's error is a *LeadError. Until the first batch nothing is sent, and
// Rollback only gives the connection back.
func BeginLead(ctx context.Context, db *sql.DB, prepare bool, lead ...Stmt) (*Tx, error) {
	t, err := conn(ctx, db)
	if err != nil {
		return nil, err
	}
	t.prepare, t.lead = prepare, lead
	return t, nil
}

// LeadError is the error of BEGIN or of a lead statement of BeginLead: the transaction is
// aborted before anything after it ran.
type LeadError struct{ Err error }

func (e *LeadError) Error() string { return e.Err.Error() }
func (e *LeadError) Unwrap() error { return e.Err }

// StmtError is the error of one statement of a batch: At is its index among the statements the
// caller gave, so that a caller can tell a statement whose failure it asked for (a guard) from
// any other.
type StmtError struct {
	At  int
	Err error
}

func (e *StmtError) Error() string { return e.Err.Error() }
func (e *StmtError) Unwrap() error { return e.Err }

// sendLead sends BEGIN and the lead of a BeginLead transaction when they have not gone yet, for
// a statement that cannot carry them.
func (t *Tx) sendLead(ctx context.Context) error {
	if t.begun || t.ended {
		return nil
	}
	_, err := t.batch(ctx, nil)
	return err
}

// Begin starts a transaction on a connection of db (a pool opened with pgx's stdlib).
func Begin(ctx context.Context, db *sql.DB) (*Tx, error) {
	t, err := conn(ctx, db)
	if err != nil {
		return nil, err
	}
	if _, err := t.conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.discard()
		return nil, err
	}
	t.begun = true
	return t, nil
}

// BeginBatch starts a transaction and runs stmts in it, in one round trip: Batch, with BEGIN
// first. prepare is PrepareArgs's. It returns each statement's first row, every column as text
// (see BatchRows). On an error nothing is left open.
func BeginBatch(ctx context.Context, db *sql.DB, prepare bool, stmts ...Stmt) (*Tx, [][]string, error) {
	t, err := conn(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	t.prepare = prepare
	rows, err := t.batch(ctx, stmts)
	if err != nil {
		t.Rollback()
		return nil, nil, err
	}
	return t, rows, nil
}

// ExecContext runs a statement in the transaction.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.ended {
		return nil, sql.ErrTxDone
	}
	if err := t.sendLead(ctx); err != nil {
		return nil, err
	}
	return t.conn.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.ended {
		return nil, sql.ErrTxDone
	}
	if err := t.sendLead(ctx); err != nil {
		return nil, err
	}
	return t.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query of at most one row in the transaction.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if !t.ended && t.sendLead(ctx) != nil {
		t.Rollback() // and the row's error is sql.ErrConnDone, as below
	}
	if t.ended {
		t.conn.Close() // the row's error is then sql.ErrConnDone: nothing runs outside the transaction
	}
	return t.conn.QueryRowContext(ctx, query, args...)
}

func conn(ctx context.Context, db *sql.DB) (*Tx, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &Tx{conn: c}, nil
}

// CommitStmt, last in a batch, commits the transaction in the batch's round trip; Commit then
// only gives the connection back. A batch that fails before it leaves the transaction to be
// rolled back.
var CommitStmt = Stmt{SQL: "COMMIT"}

// errCommitRolledBack is a COMMIT that PostgreSQL answered with ROLLBACK: the transaction had
// failed.
var errCommitRolledBack = errors.New("commit: the transaction had failed and was rolled back")

// Commit commits, unless a batch did, and gives the connection back to the pool.
func (t *Tx) Commit() error {
	if t.ended {
		t.conn.Close()
		return nil
	}
	return t.end("COMMIT")
}

// Rollback rolls back, unless already done, and gives the connection back to the pool.
func (t *Tx) Rollback() error {
	if t.ended {
		t.conn.Close()
		return sql.ErrTxDone
	}
	return t.end("ROLLBACK")
}

// end runs COMMIT or ROLLBACK and gives the connection back; a connection left in a
// transaction, or broken, is discarded instead, so that no one else's statements run in it.
func (t *Tx) end(stmt string) error {
	t.ended = true
	if !t.begun { // a BeginLead transaction that sent nothing
		t.conn.Close()
		return nil
	}
	var err error
	rawErr := t.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			err = fmt.Errorf("%s: the database/sql driver is %T, not pgx", stmt, dc)
			return driver.ErrBadConn
		}
		var res []*pgconn.Result
		res, err = c.Conn().PgConn().Exec(context.Background(), stmt).ReadAll()
		if err == nil && stmt == "COMMIT" && len(res) == 1 && res[0].CommandTag.String() == "ROLLBACK" {
			err = errCommitRolledBack
		}
		if err != nil && c.Conn().PgConn().TxStatus() != 'I' {
			return driver.ErrBadConn
		}
		return nil
	})
	t.conn.Close()
	if err == nil && rawErr != nil && !errors.Is(rawErr, driver.ErrBadConn) {
		err = fmt.Errorf("%s: %w", strings.ToLower(stmt), rawErr)
	}
	return err
}

// discard gives the connection back to be closed.
func (t *Tx) discard() {
	t.ended = true
	_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
	t.conn.Close()
}

// Stmt is one statement of a batch and its arguments.
type Stmt struct {
	SQL  string
	Args []any
	// Prepare asks, on a Tx that PrepareArgs, for the statement to be prepared and run by name.
	// Only for statements of fixed text on objects that exist before the batch runs (the
	// catalog's): the statement is prepared before the batch is sent.
	Prepare bool
}

// Stmts is sqls as statements without arguments, then more.
func Stmts(sqls []string, more ...Stmt) []Stmt {
	out := make([]Stmt, len(sqls), len(sqls)+len(more))
	for i, s := range sqls {
		out[i] = Stmt{SQL: s}
	}
	return append(out, more...)
}

// ExecStatements runs stmts in order, each as exactly one statement, and stops at the first
// error: Batch without arguments.
func (t *Tx) ExecStatements(ctx context.Context, stmts ...string) error {
	_, err := t.Batch(ctx, Stmts(stmts)...)
	return err
}

// Batch runs stmts in order, each as exactly one statement, and stops at the first error. They
// go in one round trip, each in its own extended-protocol message, where PostgreSQL refuses a
// second statement: text a module puts in an expression, a type or a name cannot end its
// statement and start another, as it can in a ";"-joined string on the simple protocol (which
// pgx uses for any query without arguments). Arguments are sent as text for the server to type,
// as pgx's exec mode does (so a []byte is a bytea: give JSON as a string). It returns, for each
// statement, the first column of its first row as text ("" when it returned none). CommitStmt,
// last, commits.
//
// Each statement is its own query text, so the positions PostgreSQL stores in expression trees
// (and schema fingerprints hash) depend on that statement alone.
func (t *Tx) Batch(ctx context.Context, stmts ...Stmt) ([]string, error) {
	rows, err := t.batch(ctx, stmts)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		if len(r) > 0 {
			out[i] = r[0]
		}
	}
	return out, nil
}

// BatchRows is Batch, returning every column of each statement's first row (nil when it
// returned none; a NULL is "").
func (t *Tx) BatchRows(ctx context.Context, stmts ...Stmt) ([][]string, error) {
	return t.batch(ctx, stmts)
}

// batch sends stmts, after BEGIN and the lead when the transaction has not begun yet.
func (t *Tx) batch(ctx context.Context, stmts []Stmt) ([][]string, error) {
	begin, lead := !t.begun && !t.ended, len(t.lead)
	if len(stmts) == 0 && !begin {
		return nil, nil
	}
	if t.ended {
		return nil, sql.ErrTxDone
	}
	if begin {
		stmts = append(append([]Stmt{{SQL: "BEGIN"}}, t.lead...), stmts...)
		t.begun, t.lead = true, nil
	}
	out := make([][]string, len(stmts))
	failedAt := len(stmts) // the statement whose error ended the batch, when one did
	err := t.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("run statements: the database/sql driver is %T, not pgx", dc)
		}
		conn := c.Conn()
		b := &pgconn.Batch{}
		for i, s := range stmts {
			var eqb pgx.ExtendedQueryBuilder
			if t.prepare && s.Prepare {
				// Named by its text, pgx prepares a statement once per connection under a name
				// of its own (the text's hash) and returns it without a round trip afterwards.
				sd, err := conn.Prepare(ctx, s.SQL, s.SQL)
				if err != nil {
					failedAt = i
					return fmt.Errorf("prepare %q: %w", firstLine(s.SQL), err)
				}
				if err := eqb.Build(conn.TypeMap(), sd, s.Args); err != nil {
					return fmt.Errorf("run %q: %w", firstLine(s.SQL), err)
				}
				b.ExecPrepared(sd.Name, eqb.ParamValues, eqb.ParamFormats, nil)
				continue
			}
			if err := eqb.Build(conn.TypeMap(), nil, s.Args); err != nil {
				return fmt.Errorf("run %q: %w", firstLine(s.SQL), err)
			}
			b.ExecParams(s.SQL, eqb.ParamValues, nil, eqb.ParamFormats, nil)
		}
		results, err := conn.PgConn().ExecBatch(ctx, b).ReadAll()
		for i, r := range results {
			if r.Err != nil {
				failedAt = i
				return fmt.Errorf("run %q: %w", firstLine(stmts[i].SQL), r.Err)
			}
			if stmts[i].SQL == CommitStmt.SQL {
				if r.CommandTag.String() == "ROLLBACK" {
					return errCommitRolledBack
				}
				t.ended = true
			}
			if len(r.Rows) > 0 {
				row := make([]string, len(r.Rows[0]))
				for j, v := range r.Rows[0] {
					row[j] = string(v)
				}
				out[i] = row
			}
		}
		// An error before a statement's result starts (parsing it) ends the batch there.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && len(results) < len(stmts) {
			failedAt = len(results)
			return fmt.Errorf("run %q: %w", firstLine(stmts[len(results)].SQL), err)
		}
		if err != nil {
			return fmt.Errorf("run statements: %w", err)
		}
		if len(results) != len(stmts) {
			return errors.New("run statements: PostgreSQL answered fewer statements than were sent")
		}
		return nil
	})
	first := 0 // the index of the caller's first statement
	if begin {
		first = 1 + lead
	}
	switch {
	case err == nil:
	case lead > 0 && failedAt <= lead:
		err = &LeadError{Err: err}
	case failedAt >= first && failedAt < len(stmts):
		err = &StmtError{At: failedAt - first, Err: err}
	}
	return out[first:], err
}
