package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Tx is a database/sql transaction, which Atlas inspects through, held on a connection of its
// own so that planned statements can reach PostgreSQL through pgx underneath.
type Tx struct {
	*sql.Tx
	conn *sql.Conn
}

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

// ExecStatements runs stmts in order, each as exactly one statement, and stops at the first
// error. They go in one round trip, each in its own extended-protocol message, where
// PostgreSQL refuses a second statement: text a module puts in an expression, a type or a name
// cannot end its statement and start another, as it can in a ";"-joined string on the simple
// protocol (which pgx uses for any query without arguments).
//
// Each statement is its own query text, so the positions PostgreSQL stores in expression trees
// (and schema fingerprints hash) depend on that statement alone.
func (t *Tx) ExecStatements(ctx context.Context, stmts ...string) error {
	if len(stmts) == 0 {
		return nil
	}
	return t.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("run statements: the database/sql driver is %T, not pgx", dc)
		}
		b := &pgconn.Batch{}
		for _, s := range stmts {
			b.ExecParams(s, nil, nil, nil, nil)
		}
		results, err := c.Conn().PgConn().ExecBatch(ctx, b).ReadAll()
		for i, r := range results {
			if r.Err != nil {
				return fmt.Errorf("run %q: %w", firstLine(stmts[i]), r.Err)
			}
		}
		// An error before a statement's result starts (parsing it) ends the batch there.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && len(results) < len(stmts) {
			return fmt.Errorf("run %q: %w", firstLine(stmts[len(results)]), err)
		}
		if err != nil {
			return fmt.Errorf("run statements: %w", err)
		}
		if len(results) != len(stmts) {
			return errors.New("run statements: PostgreSQL answered fewer statements than were sent")
		}
		return nil
	})
}
