package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Tx is a database/sql transaction, which Atlas inspects through, held on a connection of its
// own so that planned statements can reach PostgreSQL through pgx underneath.
type Tx struct {
	*sql.Tx
	conn    *sql.Conn
	prepare bool
}

// PrepareArgs makes Batch prepare each statement marked Prepare, once per connection, and run it
// by name: the record of an apply (its status, event, steps) then costs no parse and,
// after a few runs, no planning, which were a quarter of the server's time per tenant in a
// rollout. Only on a direct connection: behind a transaction pooler the next transaction may
// run on a server connection that never saw the statement.
func (t *Tx) PrepareArgs(on bool) { t.prepare = on }

// Begin starts a transaction on a connection of db (a pool opened with pgx's stdlib).
func Begin(ctx context.Context, db *sql.DB) (*Tx, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Tx{Tx: tx, conn: conn}, nil
}

// Commit commits and gives the connection back to the pool.
func (t *Tx) Commit() error {
	err := t.Tx.Commit()
	t.conn.Close()
	return err
}

// Rollback rolls back, unless already done, and gives the connection back to the pool.
func (t *Tx) Rollback() error {
	err := t.Tx.Rollback()
	t.conn.Close()
	return err
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

// ExecStatements runs stmts in order, each as exactly one statement, and stops at the first
// error: Batch without arguments.
func (t *Tx) ExecStatements(ctx context.Context, stmts ...string) error {
	batch := make([]Stmt, len(stmts))
	for i, s := range stmts {
		batch[i] = Stmt{SQL: s}
	}
	_, err := t.Batch(ctx, batch...)
	return err
}

// Batch runs stmts in order, each as exactly one statement, and stops at the first error. They
// go in one round trip, each in its own extended-protocol message, where PostgreSQL refuses a
// second statement: text a module puts in an expression, a type or a name cannot end its
// statement and start another, as it can in a ";"-joined string on the simple protocol (which
// pgx uses for any query without arguments). Arguments are sent as text for the server to type,
// as pgx's exec mode does (so a []byte is a bytea: give JSON as a string). It returns, for each
// statement, the first column of its first row as text ("" when it returned none).
//
// Each statement is its own query text, so the positions PostgreSQL stores in expression trees
// (and schema fingerprints hash) depend on that statement alone.
func (t *Tx) Batch(ctx context.Context, stmts ...Stmt) ([]string, error) {
	if len(stmts) == 0 {
		return nil, nil
	}
	out := make([]string, len(stmts))
	err := t.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("run statements: the database/sql driver is %T, not pgx", dc)
		}
		conn := c.Conn()
		b := &pgconn.Batch{}
		for _, s := range stmts {
			var eqb pgx.ExtendedQueryBuilder
			if t.prepare && s.Prepare {
				// Named by its text, pgx prepares a statement once per connection under a name
				// of its own (the text's hash) and returns it without a round trip afterwards.
				sd, err := conn.Prepare(ctx, s.SQL, s.SQL)
				if err != nil {
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
				return fmt.Errorf("run %q: %w", firstLine(stmts[i].SQL), r.Err)
			}
			if len(r.Rows) > 0 && len(r.Rows[0]) > 0 {
				out[i] = string(r.Rows[0][0])
			}
		}
		// An error before a statement's result starts (parsing it) ends the batch there.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && len(results) < len(stmts) {
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
	return out, err
}
