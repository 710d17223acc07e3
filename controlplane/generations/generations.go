// Package generations keeps the fleet's desired state in the catalog: numbered, immutable module
// generations, each the full set of module sources (built-ins included) with their hash, when and
// by whom it was published, and a message. The latest generation is the desired state of every
// tenant; module files are only where a new generation comes from. Every erpctl process reads the
// same generations, so two processes with different files cannot undo each other.
package generations

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aymanbagabas/go-udiff"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/erpctl/erpctl/modules"
)

// Notify is the channel a publish notifies, with the new generation's number: daemons wake and
// roll it out.
const Notify = "erpctl_generations"

// lockKey serialises publishes between processes, so that numbers follow each other.
const lockKey = 0x65727067656e // "erpgen"

// Querier is what the store reads and writes through: a *sql.DB or a transaction, so that a
// reconcile reads the latest generation inside the tenant's transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Generation is one published module set.
type Generation struct {
	Number      int64     `json:"generation"`
	Hash        string    `json:"hash"`
	PublishedAt time.Time `json:"published_at"`
	PublishedBy string    `json:"published_by"`
	Message     string    `json:"message"`
	// RollbackOf is the newest older generation with the same content, when this one rolled
	// back to it.
	RollbackOf *int64 `json:"rollback_of,omitempty"`
	// Tenants is how many tenants have applied this generation (History only).
	Tenants int              `json:"tenants"`
	Sources []modules.Source `json:"-"`
}

// Store reads and publishes generations. Generations never change once published, so the
// registries built from them are cached by number.
type Store struct {
	db   Querier
	regs *lru.Cache[int64, *modules.Registry]
	mu   sync.Mutex // one build per generation at a time
}

// New returns the store over db. The cache holds the registries of the generations tenants are
// at: a rollout has two; a halted one and a fix, a few more.
func New(db Querier) *Store {
	c, _ := lru.New[int64, *modules.Registry](32)
	return &Store{db: db, regs: c}
}

// Latest returns the newest generation's number and hash as q sees them; 0 when none was
// published.
func (s *Store) Latest(ctx context.Context, q Querier) (int64, string, error) {
	if q == nil {
		q = s.db
	}
	var n int64
	var hash string
	err := q.QueryRowContext(ctx, `SELECT generation, hash FROM erpctl.generations ORDER BY generation DESC LIMIT 1`).Scan(&n, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the latest module generation: %w", err)
	}
	return n, hash, nil
}

// Registry returns the modules of generation n, read through q (nil: the store's database).
func (s *Store) Registry(ctx context.Context, q Querier, n int64) (*modules.Registry, error) {
	if reg, ok := s.regs.Get(n); ok {
		return reg, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if reg, ok := s.regs.Get(n); ok {
		return reg, nil
	}
	g, err := s.get(ctx, q, n, true)
	if err != nil {
		return nil, err
	}
	reg, err := modules.FromSources(g.Sources)
	if err != nil {
		return nil, fmt.Errorf("load the modules of generation %d: %w", n, err)
	}
	s.regs.Add(n, reg)
	return reg, nil
}

// Get returns generation n with its sources; an error wrapping ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, n int64) (*Generation, error) {
	return s.get(ctx, nil, n, true)
}

// ErrNotFound is wrapped by errors about a generation that was never published.
var ErrNotFound = errors.New("no such generation")

func (s *Store) get(ctx context.Context, q Querier, n int64, withSources bool) (*Generation, error) {
	if q == nil {
		q = s.db
	}
	var g Generation
	var srcs []byte
	err := q.QueryRowContext(ctx, `SELECT generation, hash, published_at, published_by, message, rollback_of,
		CASE WHEN $2 THEN sources ELSE '[]'::jsonb END FROM erpctl.generations WHERE generation = $1`, n, withSources).
		Scan(&g.Number, &g.Hash, &g.PublishedAt, &g.PublishedBy, &g.Message, &g.RollbackOf, &srcs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("module generation %d: %w", n, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read module generation %d: %w", n, err)
	}
	if err := json.Unmarshal(srcs, &g.Sources); err != nil {
		return nil, fmt.Errorf("read module generation %d: %w", n, err)
	}
	return &g, nil
}

// Published is what a publish did.
type Published struct {
	Generation int64  `json:"generation"`
	Hash       string `json:"hash"`
	Changed    bool   `json:"changed"` // false: the content equals the latest generation's, nothing was published
	// RollbackOf is the newest older generation with the same content, when the new one goes
	// back to it.
	RollbackOf *int64 `json:"rollback_of,omitempty"`
}

// Publish records reg's modules as the next generation, in tx, unless they equal the latest
// generation's. It notifies daemons when tx commits.
func (s *Store) Publish(ctx context.Context, tx Querier, reg *modules.Registry, by, message string) (*Published, error) {
	srcs := reg.Sources()
	hash := modules.ContentHash(srcs)
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
		return nil, fmt.Errorf("publish modules: %w", err)
	}
	latest, latestHash, err := s.Latest(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("publish modules: %w", err)
	}
	if latest > 0 && latestHash == hash {
		return &Published{Generation: latest, Hash: hash}, nil
	}
	out := &Published{Generation: latest + 1, Hash: hash, Changed: true}
	var back sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(generation) FROM erpctl.generations WHERE hash = $1`, hash).Scan(&back); err != nil {
		return nil, fmt.Errorf("publish modules: %w", err)
	}
	if back.Valid {
		out.RollbackOf = &back.Int64
	}
	js, err := json.Marshal(srcs)
	if err != nil {
		return nil, fmt.Errorf("publish modules: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO erpctl.generations (generation, hash, sources, published_by, message, rollback_of)
		VALUES ($1, $2, $3, $4, $5, $6)`, out.Generation, hash, string(js), by, message, out.RollbackOf); err != nil {
		return nil, fmt.Errorf("publish modules as generation %d: %w", out.Generation, err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Notify, fmt.Sprint(out.Generation)); err != nil {
		return nil, fmt.Errorf("publish modules: %w", err)
	}
	return out, nil
}

// History returns the generations, newest first, at most limit (0: all), each with how many
// tenants have applied it.
func (s *Store) History(ctx context.Context, limit int) ([]Generation, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT g.generation, g.hash, g.published_at, g.published_by, g.message, g.rollback_of,
			coalesce(c.n, 0)
		FROM erpctl.generations g
		LEFT JOIN (SELECT generation, count(*) AS n FROM erpctl.tenants WHERE generation IS NOT NULL GROUP BY generation) c
			ON c.generation = g.generation
		ORDER BY g.generation DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read module generations: %w", err)
	}
	defer rows.Close()
	out := []Generation{}
	for rows.Next() {
		var g Generation
		if err := rows.Scan(&g.Number, &g.Hash, &g.PublishedAt, &g.PublishedBy, &g.Message, &g.RollbackOf, &g.Tenants); err != nil {
			return nil, fmt.Errorf("read module generations: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read module generations: %w", err)
	}
	return out, nil
}

// TenantsByGeneration counts the tenants at each generation; those at none (an older erpctl's
// tenants that no reconcile has recorded since) count under 0.
func (s *Store) TenantsByGeneration(ctx context.Context) (map[int64]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT coalesce(generation, 0), count(*) FROM erpctl.tenants GROUP BY 1`)
	if err != nil {
		return nil, fmt.Errorf("count tenants by generation: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var g int64
		var n int
		if err := rows.Scan(&g, &n); err != nil {
			return nil, fmt.Errorf("count tenants by generation: %w", err)
		}
		out[g] = n
	}
	return out, rows.Err()
}

// Diff is the difference between two module sets, file by file, as unified diffs of the HCL:
// "" when they declare the same. Labels name each side ("generation 3", "files").
func Diff(aLabel string, a []modules.Source, bLabel string, b []modules.Source) string {
	byName := func(srcs []modules.Source) map[string]string {
		m := make(map[string]string, len(srcs))
		for _, s := range srcs {
			m[s.Name] = s.Text
		}
		return m
	}
	am, bm := byName(a), byName(b)
	names := map[string]bool{}
	for n := range am {
		names[n] = true
	}
	for n := range bm {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	var out strings.Builder
	for _, n := range sorted {
		at, aok := am[n]
		bt, bok := bm[n]
		if at == bt && aok == bok {
			continue
		}
		from, to := aLabel+"/"+n+".hcl", bLabel+"/"+n+".hcl"
		if !aok {
			from = "/dev/null"
		}
		if !bok {
			to = "/dev/null"
		}
		out.WriteString(udiff.Unified(from, to, at, bt))
	}
	return out.String()
}
