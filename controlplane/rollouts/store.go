package rollouts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/erpctl/erpctl/controlplane/labels"
)

// Rollout states.
const (
	Running    = "running"    // a stage is rolling out, or will at the next pass
	Waiting    = "waiting"    // a stage is done and the next waits: for its time (wait) or an approval
	Paused     = "paused"     // an operator paused it: nothing more is applied until resumed
	Halted     = "halted"     // a stage's failures reached its budget: the rest of its tenants are held
	Aborted    = "aborted"    // an operator stopped it for good: the rest stay at their generation
	Done       = "done"       // every stage is done
	Superseded = "superseded" // a newer generation was published before it was done
)

// Stage states.
const (
	StagePending  = "pending"  // not started
	StageRunning  = "running"  // its tenants are being reached
	StageWaiting  = "waiting"  // done; the next stage waits for its time
	StageApproval = "approval" // waits for rollout approve before it starts
	StageDone     = "done"
	StageHalted   = "halted"
)

// Open reports whether a rollout in state s may still reach tenants.
func Open(s string) bool {
	return s == Running || s == Waiting || s == Paused || s == Halted
}

// Rollout is one generation's rollout, as rollout list and show print it.
type Rollout struct {
	ID         int64         `json:"id"`
	Generation int64         `json:"generation"`
	State      string        `json:"state"`
	Stage      string        `json:"stage,omitempty"` // the stage it is at, while open
	Stages     []StageStatus `json:"stages"`
	Message    string        `json:"message,omitempty"`
	StartedAt  time.Time     `json:"started_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

// StageStatus is one stage of a rollout: its settings, where it stands and, counted from the
// catalog when read, its tenants: how many it has, how many are at the generation (applied),
// Failed on their way there, and held by a halted rollout.
type StageStatus struct {
	Name        string     `json:"name"`
	Selector    string     `json:"selector"`
	Parallel    int        `json:"parallel,omitempty"`
	MaxFailures string     `json:"max_failures"`
	Wait        string     `json:"wait,omitempty"`
	Approve     bool       `json:"approve,omitempty"`
	Canary      int        `json:"canary,omitempty"`
	State       string     `json:"state"`
	Tenants     int        `json:"tenants"`
	Applied     int        `json:"applied"`
	Failed      int        `json:"failed"`
	Held        int        `json:"held"`
	Failures    int        `json:"failures"` // failures counted against the budget since it started or resumed
	StartedAt   *time.Time `json:"started_at,omitempty"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	// WaitingSince is when it began to wait for its approval, or for its wait to end.
	WaitingSince *time.Time `json:"waiting_since,omitempty"`
	ApprovedBy   string     `json:"approved_by,omitempty"`
	ApprovedAt   *time.Time `json:"approved_at,omitempty"`
}

// Querier is what the store reads and writes through: a *sql.DB or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Store reads and changes rollouts in the catalog.
type Store struct{ db *sql.DB }

// NewStore returns the store over db.
func NewStore(db *sql.DB) *Store { return &Store{db: db} }

// Errors callers tell apart.
var (
	ErrNotFound = errors.New("no such rollout")
	ErrState    = errors.New("not in a state for that")
)

// statusOf is the stages of a deployment as a new rollout starts them.
func statusOf(stages []Stage) []StageStatus {
	out := make([]StageStatus, len(stages))
	for i, s := range stages {
		out[i] = StageStatus{Name: s.Name, Selector: s.SelectorText(), Parallel: s.Parallel, MaxFailures: s.BudgetText(),
			Approve: s.Approve, Canary: s.Canary, State: StagePending}
		if s.Wait > 0 {
			out[i].Wait = s.Wait.String()
		}
	}
	return out
}

// StagesOf turns the recorded stages back into stages to run: the selectors, budgets and gates as
// the rollout began with them.
func StagesOf(st []StageStatus) ([]Stage, error) {
	out := make([]Stage, len(st))
	for i, s := range st {
		out[i] = Stage{Name: s.Name, Parallel: s.Parallel, Approve: s.Approve, Canary: s.Canary}
		if s.Selector != "" {
			sel, err := labels.ParseSelector(s.Selector)
			if err != nil {
				return nil, fmt.Errorf("stage %q: %w", s.Name, err)
			}
			out[i].Selector = sel
		}
		budget := strings.TrimSuffix(s.MaxFailures, "%")
		out[i].Percent = budget != s.MaxFailures
		if _, err := fmt.Sscan(budget, &out[i].MaxFailures); err != nil {
			return nil, fmt.Errorf("stage %q: budget %q: %w", s.Name, s.MaxFailures, err)
		}
		if s.Wait != "" {
			d, err := time.ParseDuration(s.Wait)
			if err != nil {
				return nil, fmt.Errorf("stage %q: wait %q: %w", s.Name, s.Wait, err)
			}
			out[i].Wait = d
		}
	}
	return out, nil
}

const rolloutColumns = `id, coalesce(generation, 0), state, stages, message, started_at, updated_at`

func scanRollout(row interface{ Scan(...any) error }) (*Rollout, error) {
	var r Rollout
	var stages []byte
	if err := row.Scan(&r.ID, &r.Generation, &r.State, &stages, &r.Message, &r.StartedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(stages, &r.Stages); err != nil {
		return nil, fmt.Errorf("read the stages of rollout %d: %w", r.ID, err)
	}
	if r.Stages == nil {
		r.Stages = []StageStatus{}
	}
	if Open(r.State) {
		for _, s := range r.Stages {
			if s.State != StageDone && s.State != StageWaiting {
				r.Stage = s.Name
				break
			}
		}
	}
	return &r, nil
}

// ForGeneration returns the open rollout of generation gen, read in q, nil when there is none.
func (s *Store) ForGeneration(ctx context.Context, q Querier, gen int64) (*Rollout, error) {
	if q == nil {
		q = s.db
	}
	r, err := scanRollout(q.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM erpctl.rollouts
		WHERE generation = $1 AND state IN ('running', 'waiting', 'paused', 'halted', 'aborted', 'done') ORDER BY id DESC LIMIT 1`, gen))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the rollout of generation %d: %w", gen, err)
	}
	return r, nil
}

// Start records a new rollout of generation gen through stages, and supersedes every open
// rollout of an older generation. Passes that start at once share one rollout: under a lock of
// the generation, one records it and the others find it (started false).
func (s *Store) Start(ctx context.Context, gen int64, stages []Stage) (r *Rollout, started bool, err error) {
	js, err := json.Marshal(statusOf(stages))
	if err != nil {
		return nil, false, err
	}
	if err := s.SupersedeOlder(ctx, gen); err != nil {
		return nil, false, err
	}
	// Finished rollouts are kept a month, for tenant show, the console and rollout list.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM erpctl.rollouts WHERE state IN ('done', 'superseded', 'aborted') AND updated_at < now() - interval '30 days'`); err != nil {
		return nil, false, fmt.Errorf("prune rollouts: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("record the rollout of generation %d: %w", gen, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('erpctl rollout of generation ' || $1::bigint, 0))`, gen); err != nil {
		return nil, false, fmt.Errorf("record the rollout of generation %d: %w", gen, err)
	}
	if r, err := s.ForGeneration(ctx, tx, gen); err != nil || r != nil {
		return r, false, err
	}
	r, err = scanRollout(tx.QueryRowContext(ctx, `INSERT INTO erpctl.rollouts (group_key, desired_hash, generation, state, stages)
		VALUES ($1, '', $2, 'running', $3) RETURNING `+rolloutColumns, fmt.Sprintf("generation %d", gen), gen, string(js)))
	if err != nil {
		return nil, false, fmt.Errorf("record the rollout of generation %d: %w", gen, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("record the rollout of generation %d: %w", gen, err)
	}
	return r, true, nil
}

// SupersedeOlder marks superseded the open rollouts of generations older than gen: a pass at gen
// has nothing of theirs left to do.
func (s *Store) SupersedeOlder(ctx context.Context, gen int64) error {
	var open bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM erpctl.rollouts WHERE state IN ('running', 'waiting', 'paused', 'halted')
		AND (generation IS NULL OR generation < $1))`, gen).Scan(&open); err != nil || !open {
		return err // a pass writes nothing here unless it must
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE erpctl.rollouts SET state = 'superseded', updated_at = now()
		WHERE state IN ('running', 'waiting', 'paused', 'halted') AND (generation IS NULL OR generation < $1)`, gen); err != nil {
		return fmt.Errorf("supersede older rollouts: %w", err)
	}
	return nil
}

// Save writes where a rollout stands (its state, stages and message) unless an operator changed
// its state meanwhile (paused, aborted): then it returns the state they set, and writes nothing.
// An approval given while the pass ran, which leaves the state as it was, is kept: the pass read
// the stage unapproved, and writing its stages as they are would undo it. The daemons the
// approval woke start the stage.
func (s *Store) Save(ctx context.Context, r *Rollout, was string) (string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("record rollout %d: %w", r.ID, err)
	}
	defer tx.Rollback()
	cur, err := scanRollout(tx.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM erpctl.rollouts WHERE id = $1 FOR UPDATE`, r.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("record rollout %d: %w", r.ID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("record rollout %d: %w", r.ID, err)
	}
	if cur.State != was {
		return cur.State, nil
	}
	for i := range r.Stages {
		st := &r.Stages[i]
		if i < len(cur.Stages) && cur.Stages[i].Name == st.Name && st.ApprovedAt == nil && cur.Stages[i].ApprovedAt != nil {
			st.ApprovedBy, st.ApprovedAt = cur.Stages[i].ApprovedBy, cur.Stages[i].ApprovedAt
		}
	}
	js, err := json.Marshal(r.Stages)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE erpctl.rollouts SET state = $2, stages = $3, message = $4, updated_at = now() WHERE id = $1`,
		r.ID, r.State, string(js), r.Message); err != nil {
		return "", fmt.Errorf("record rollout %d: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("record rollout %d: %w", r.ID, err)
	}
	return r.State, nil
}

// List returns the newest rollouts first, at most limit (0: all), with their stages' tenants
// counted now.
func (s *Store) List(ctx context.Context, limit int) ([]Rollout, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+rolloutColumns+` FROM erpctl.rollouts WHERE generation IS NOT NULL ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	var out []Rollout
	for rows.Next() {
		r, err := scanRollout(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		out = append(out, *r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	for i := range out {
		if err := s.count(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = []Rollout{}
	}
	return out, nil
}

// Get returns rollout id with its stages' tenants counted now.
func (s *Store) Get(ctx context.Context, id int64) (*Rollout, error) {
	r, err := scanRollout(s.db.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM erpctl.rollouts WHERE id = $1 AND generation IS NOT NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read rollout %d: %w", id, err)
	}
	if err := s.count(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// count fills each stage's tenants from the catalog, in one query: every tenant in the first
// stage whose selector matches its labels (the last stage takes the rest), at the rollout's
// generation or past it (applied), Failed below it (failed), held by a halted rollout (held).
func (s *Store) count(ctx context.Context, r *Rollout) error {
	if len(r.Stages) == 0 {
		return nil
	}
	stages, err := StagesOf(r.Stages)
	if err != nil {
		return fmt.Errorf("rollout %d: %w", r.ID, err)
	}
	var args []any
	var b strings.Builder
	if len(stages) == 1 {
		b.WriteString("0")
	} else {
		b.WriteString("CASE")
		for i, st := range stages[:len(stages)-1] {
			fmt.Fprintf(&b, " WHEN %s THEN %d", st.Selector.SQL("labels", &args), i)
		}
		fmt.Fprintf(&b, " ELSE %d END", len(stages)-1)
	}
	args = append(args, r.Generation)
	g := fmt.Sprintf("$%d", len(args))
	rows, err := s.db.QueryContext(ctx, `SELECT stage, count(*),
			count(*) FILTER (WHERE generation >= `+g+`),
			count(*) FILTER (WHERE status = 'Failed' AND coalesce(generation, 0) < `+g+`),
			count(*) FILTER (WHERE status_reason = 'RolloutHalted' AND coalesce(generation, 0) < `+g+`)
		FROM (SELECT `+b.String()+` AS stage, generation, status, status_reason FROM erpctl.tenants) t GROUP BY stage`, args...)
	if err != nil {
		return fmt.Errorf("count the tenants of rollout %d: %w", r.ID, err)
	}
	defer rows.Close()
	for i := range r.Stages {
		r.Stages[i].Tenants, r.Stages[i].Applied, r.Stages[i].Failed, r.Stages[i].Held = 0, 0, 0, 0
	}
	for rows.Next() {
		var i, n, applied, failed, held int
		if err := rows.Scan(&i, &n, &applied, &failed, &held); err != nil {
			return fmt.Errorf("count the tenants of rollout %d: %w", r.ID, err)
		}
		st := &r.Stages[i]
		st.Tenants, st.Applied, st.Failed, st.Held = n, applied, failed, held
	}
	return rows.Err()
}

// Event is one thing done to a rollout: by a pass (started, stage done, halted) or an operator.
type Event struct {
	ID      int64     `json:"id"`
	Rollout int64     `json:"rollout"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Stage   string    `json:"stage,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Record adds an event to a rollout's history.
func (s *Store) Record(ctx context.Context, q Querier, id int64, actor, action, stage, msg string) error {
	if q == nil {
		q = s.db
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO erpctl.rollout_events (rollout, actor, action, stage, message) VALUES ($1, $2, $3, $4, $5)`,
		id, actor, action, stage, msg); err != nil {
		return fmt.Errorf("record an event of rollout %d: %w", id, err)
	}
	return nil
}

// Events returns a rollout's history, newest first, at most limit.
func (s *Store) Events(ctx context.Context, id int64, limit int) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, rollout, at, actor, action, stage, message FROM erpctl.rollout_events
		WHERE rollout = $1 ORDER BY id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("read the events of rollout %d: %w", id, err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.Rollout, &e.At, &e.Actor, &e.Action, &e.Stage, &e.Message); err != nil {
			return nil, fmt.Errorf("read the events of rollout %d: %w", id, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
