package rollouts

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Notify is the channel an operator's action notifies (the one of published generations): every
// daemon wakes for a full pass, which carries the rollout on from where the action left it.
const Notify = "erpctl_generations"

// Approve lets the stage that waits for an approval start: at the next pass, in any daemon.
func (s *Store) Approve(ctx context.Context, id int64, actor string) (*Rollout, error) {
	return s.act(ctx, id, actor, "approve", func(r *Rollout) (string, error) {
		for i := range r.Stages {
			st := &r.Stages[i]
			if st.State == StageApproval {
				if st.ApprovedAt != nil {
					return "", fmt.Errorf("%w: stage %s of rollout %d was approved already, by %s; the next pass starts it", ErrState, st.Name, r.ID, st.ApprovedBy)
				}
				now := time.Now()
				st.ApprovedBy, st.ApprovedAt = actor, &now
				return st.Name, nil
			}
		}
		return "", fmt.Errorf("%w: rollout %d waits for no approval (it is %s)", ErrState, r.ID, r.State)
	})
}

// Pause stops a rollout from reaching more tenants until it is resumed; what is under way ends.
func (s *Store) Pause(ctx context.Context, id int64, actor string) (*Rollout, error) {
	return s.act(ctx, id, actor, "pause", func(r *Rollout) (string, error) {
		if r.State != Running && r.State != Waiting {
			return "", fmt.Errorf("%w: rollout %d is %s; only a running or waiting rollout pauses", ErrState, r.ID, r.State)
		}
		r.State = Paused
		return r.Stage, nil
	})
}

// Resume carries a paused rollout on, or a halted one with its stage's failures forgotten: its
// tenants not reached yet go first, then those that failed are tried again.
func (s *Store) Resume(ctx context.Context, id int64, actor string) (*Rollout, error) {
	return s.act(ctx, id, actor, "resume", func(r *Rollout) (string, error) {
		if r.State != Paused && r.State != Halted {
			return "", fmt.Errorf("%w: rollout %d is %s; only a paused or halted rollout resumes", ErrState, r.ID, r.State)
		}
		for i := range r.Stages {
			if st := &r.Stages[i]; st.State == StageHalted {
				st.State, st.Failures = StageRunning, 0
			}
		}
		r.State, r.Message = Running, ""
		return r.Stage, nil
	})
}

// Abort stops a rollout for good: tenants it has not reached stay at their generation (held) until
// a newer generation is published.
func (s *Store) Abort(ctx context.Context, id int64, actor string) (*Rollout, error) {
	return s.act(ctx, id, actor, "abort", func(r *Rollout) (string, error) {
		if !Open(r.State) {
			return "", fmt.Errorf("%w: rollout %d is %s already", ErrState, r.ID, r.State)
		}
		r.State, r.Message = Aborted, fmt.Sprintf("rollout %d was aborted by %s; its tenants not reached stay at their generation until a newer one is published", r.ID, actor)
		return r.Stage, nil
	})
}

// act changes rollout id under a row lock, records who did what, and wakes every daemon.
func (s *Store) act(ctx context.Context, id int64, actor, action string, change func(*Rollout) (stage string, err error)) (*Rollout, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, err)
	}
	defer tx.Rollback()
	r, err := scanRollout(tx.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM erpctl.rollouts WHERE id = $1 AND generation IS NOT NULL FOR UPDATE`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, err)
	}
	stage, err := change(r)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(r.Stages)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE erpctl.rollouts SET state = $2, stages = $3, message = $4, updated_at = now() WHERE id = $1`,
		id, r.State, string(js), r.Message); err != nil {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, err)
	}
	if err := s.Record(ctx, tx, id, actor, action, stage, ""); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Notify, fmt.Sprintf("rollout %d %s", id, action)); err != nil {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%s rollout %d: %w", action, id, err)
	}
	return s.Get(ctx, id)
}
