package schema

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// onPgConn runs fn on the pgx connection under the transaction and returns its row count.
func (t *Tx) onPgConn(fn func(*pgconn.PgConn) (pgconn.CommandTag, error)) (int64, error) {
	var n int64
	err := t.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("copy: the database/sql driver is %T, not pgx", dc)
		}
		tag, err := fn(c.Conn().PgConn())
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// CopyFrom runs copySQL (a COPY ... FROM STDIN) in the transaction, streaming r to PostgreSQL,
// and returns the number of rows loaded. It goes through pgx underneath database/sql, which has
// no COPY: memory stays flat whatever r holds.
func (t *Tx) CopyFrom(ctx context.Context, r io.Reader, copySQL string) (int64, error) {
	return t.onPgConn(func(c *pgconn.PgConn) (pgconn.CommandTag, error) { return c.CopyFrom(ctx, r, copySQL) })
}

// CopyTo runs copySQL (a COPY ... TO STDOUT) in the transaction, streaming its rows to w, and
// returns the number of rows written.
func (t *Tx) CopyTo(ctx context.Context, w io.Writer, copySQL string) (int64, error) {
	return t.onPgConn(func(c *pgconn.PgConn) (pgconn.CommandTag, error) { return c.CopyTo(ctx, w, copySQL) })
}
