package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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

// writeState is what the Plane knows of the database's writes: whether they are refused, and
// the tenants to try again once they are not.
type writeState struct {
	refused atomic.Pointer[string]
	mu      sync.Mutex
	// retry holds the tenants whose failure could not be recorded (the catalog may still say
	// Ready) or whose change the database refused, each with when it was marked. A pass retries
	// them, incremental or not, and forgets each one it handled.
	retry map[ident.Slug]time.Time
}

// NoteWrite records a refused write, which makes WritesRefused report it until ProbeWrites
// finds writes accepted again. A write that went through does not end the refusal: on a full
// disk, a row that fits in a page the table already has is written while no table can grow.
// Errors other than refusals say nothing about writes and are ignored.
func (p *Plane) NoteWrite(err error) {
	if err == nil {
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

// ProbeWrites, while writes are refused, tries a catalog write that needs new space on the
// database's disk: it empties erpctl.write_probe (TRUNCATE gives the table a new, empty file) and
// writes one row, which must add the file's first page. When that commits, the refusal ends and
// back is true. Without a refusal it does nothing.
func (p *Plane) ProbeWrites(ctx context.Context) (back bool, err error) {
	if p.WritesRefused() == "" {
		return false, nil
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		return tx.ExecStatements(ctx, `SET LOCAL lock_timeout = '1s'`, `TRUNCATE erpctl.write_probe`,
			`INSERT INTO erpctl.write_probe (probed_at) VALUES (now())`)
	})
	if err != nil {
		p.NoteWrite(err)
		return false, fmt.Errorf("probe catalog write: %w", err)
	}
	if p.writes.refused.Swap(nil) != nil {
		p.log.Info("the database accepts writes again")
	}
	return true, nil
}

// markRetry remembers a tenant to try again once writes are accepted.
func (p *Plane) markRetry(slug ident.Slug) {
	p.writes.mu.Lock()
	defer p.writes.mu.Unlock()
	if p.writes.retry == nil {
		p.writes.retry = map[ident.Slug]time.Time{}
	}
	p.writes.retry[slug] = time.Now()
}

// toRetry returns the tenants to try again.
func (p *Plane) toRetry() map[ident.Slug]bool {
	p.writes.mu.Lock()
	defer p.writes.mu.Unlock()
	out := make(map[ident.Slug]bool, len(p.writes.retry))
	for s := range p.writes.retry {
		out[s] = true
	}
	return out
}

// retried forgets the tenants to retry that a pass begun at start handled: those it reached (a
// skipped one was not), and those gone from the catalog (not among the refs it read, which hold
// every tenant to retry), unless they were marked again since the pass began.
func (p *Plane) retried(retry map[ident.Slug]bool, refs []*tenantRef, pass *Pass, start time.Time) {
	if len(retry) == 0 {
		return
	}
	handled := make(map[string]bool, len(retry))
	for _, t := range refs {
		if retry[t.slug] {
			handled[t.slug.String()] = false
		}
	}
	for _, r := range pass.Results {
		if _, ok := handled[r.Tenant]; ok {
			handled[r.Tenant] = r.Action != ActionSkipped
		}
	}
	p.writes.mu.Lock()
	defer p.writes.mu.Unlock()
	for s := range retry {
		done, read := handled[s.String()]
		if marked, still := p.writes.retry[s]; still && marked.Before(start) && (done || !read) {
			delete(p.writes.retry, s)
		}
	}
}
