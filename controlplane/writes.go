package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/schema"
)

// writeRefusals are the SQLSTATEs with which a database that works refuses every write for a
// while: a full disk, a read-only database, no connection left. Each gets a short reason for
// /readyz, with nothing of the server's own message.
var writeRefusals = map[string]string{
	"53100": "the database's disk is full",
	"53200": "the database is out of memory",
	"53300": "the database has no connections left",
	"53400": "the database hit a configured limit",
	"25006": "the database is read-only",
	"57P03": "the database is not accepting connections",
	"58030": "the database cannot write its files",
}

// WriteRefusal says whether err is the database refusing writes, and why in a few words.
func WriteRefusal(err error) (reason string, ok bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "", false
	}
	reason, ok = writeRefusals[pgErr.Code]
	return reason, ok
}

// writeState is what the Plane knows of the database's writes: whether the last one it saw was
// refused, and the tenants whose failure could not be recorded because of it, whose status in the
// catalog may still say Ready.
type writeState struct {
	refused    atomic.Pointer[string]
	mu         sync.Mutex
	unrecorded map[ident.Slug]bool
}

// NoteWrite records the outcome of a write to the database: a refusal makes WritesRefused report
// it, a success clears it. Other errors say nothing about writes and are ignored.
func (p *Plane) NoteWrite(err error) {
	if err == nil {
		if p.writes.refused.Load() != nil {
			p.writes.refused.Store(nil)
			p.log.Info("the database accepts writes again")
		}
		return
	}
	if reason, ok := WriteRefusal(err); ok {
		if prev := p.writes.refused.Swap(&reason); prev == nil || *prev != reason {
			p.log.Warn("the database refuses writes", "reason", reason)
		}
	}
}

// WritesRefused is why the database refuses writes, "" when the last write seen went through.
func (p *Plane) WritesRefused() string {
	if s := p.writes.refused.Load(); s != nil {
		return *s
	}
	return ""
}

// ProbeWrites, while writes are refused, tries one small catalog write, so that the refusal
// clears once the database takes writes again even when nothing else writes.
func (p *Plane) ProbeWrites(ctx context.Context) error {
	if p.WritesRefused() == "" {
		return nil
	}
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ('write_probe', now()::text)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`)
		return err
	})
	p.NoteWrite(err)
	if err != nil {
		return fmt.Errorf("probe catalog write: %w", err)
	}
	return nil
}

// markUnrecorded remembers a tenant whose failure could not be written to the catalog.
func (p *Plane) markUnrecorded(slug ident.Slug) {
	p.writes.mu.Lock()
	defer p.writes.mu.Unlock()
	if p.writes.unrecorded == nil {
		p.writes.unrecorded = map[ident.Slug]bool{}
	}
	p.writes.unrecorded[slug] = true
}

// takeUnrecorded returns and forgets the tenants whose failure could not be recorded.
func (p *Plane) takeUnrecorded() map[ident.Slug]bool {
	p.writes.mu.Lock()
	defer p.writes.mu.Unlock()
	u := p.writes.unrecorded
	p.writes.unrecorded = nil
	return u
}
