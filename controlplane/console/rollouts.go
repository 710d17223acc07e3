package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/controlplane/rollouts"
)

// Rollout is a generation's rollout as erpctl rollout show -o json prints it; Stage one of its
// stages; RolloutEvent one thing done to it, by a pass or an operator.
type (
	Rollout      = rollouts.Rollout
	Stage        = rollouts.StageStatus
	RolloutEvent = rollouts.Event
)

// Rollouts are the generations' rollouts and what an operator may do to one, recorded with who
// did it (controlplane/rollouts' Store).
type Rollouts interface {
	List(ctx context.Context, limit int) ([]Rollout, error)
	Get(ctx context.Context, id int64) (*Rollout, error)
	Events(ctx context.Context, id int64, limit int) ([]RolloutEvent, error)
	Approve(ctx context.Context, id int64, actor string) (*Rollout, error)
	Pause(ctx context.Context, id int64, actor string) (*Rollout, error)
	Resume(ctx context.Context, id int64, actor string) (*Rollout, error)
	Abort(ctx context.Context, id int64, actor string) (*Rollout, error)
}

// act runs one of rolloutActions.
func act(rs Rollouts, action string) func(ctx context.Context, id int64, actor string) (*Rollout, error) {
	return map[string]func(context.Context, int64, string) (*Rollout, error){
		"approve": rs.Approve, "pause": rs.Pause, "resume": rs.Resume, "abort": rs.Abort}[action]
}

// rolloutActions are the actions of POST /rollouts/ID/ACTION.
var rolloutActions = []string{"approve", "pause", "resume", "abort"}

// openRollout reports whether a rollout in state s may still reach tenants.
func openRollout(s string) bool { return rollouts.Open(s) }

// rolloutFailure is a tenant of a rollout that failed on its way to the rollout's generation.
type rolloutFailure struct {
	Tenant string     `json:"tenant"`
	Stage  string     `json:"stage"`
	Error  string     `json:"error"`
	Since  *time.Time `json:"since"`
}

// rolloutView is the rollout page and its JSON twin: rollout show -o json, with the tenants that
// failed and the rollout's history.
type rolloutView struct {
	*Rollout
	FailedTenants []rolloutFailure `json:"failed_tenants"`
	MoreFailed    bool             `json:"more_failed,omitempty"`
	Events        []RolloutEvent   `json:"events"`
	Done          string           `json:"-"` // the action just taken, for the notice
	Actions       []string         `json:"-"` // what the rollout's state allows
}

func (c *Console) rollouts(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Rollouts == nil {
		c.fail(w, r, s, http.StatusNotFound, "This daemon has no rollouts to show.")
		return
	}
	list, err := c.cfg.Rollouts.List(r.Context(), 100)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, list)
		return
	}
	c.render(w, r, s, http.StatusOK, "rollouts", "Rollouts", list)
}

func (c *Console) rolloutID(w http.ResponseWriter, r *http.Request, s *session) (int64, bool) {
	if c.cfg.Rollouts == nil {
		c.fail(w, r, s, http.StatusNotFound, "This daemon has no rollouts to show.")
		return 0, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		c.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("No rollout %q.", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (c *Console) rollout(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := c.rolloutID(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	ro, err := c.cfg.Rollouts.Get(ctx, id)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v := rolloutView{Rollout: ro, FailedTenants: []rolloutFailure{}, Done: r.URL.Query().Get("done")}
	if !slices.Contains(rolloutActions, v.Done) {
		v.Done = ""
	}
	if v.Events, err = c.cfg.Rollouts.Events(ctx, id, 50); err != nil {
		c.failErr(w, r, s, err)
		return
	}
	if v.FailedTenants, v.MoreFailed, err = c.failedTenants(ctx, ro); err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v.Actions = allowedActions(ro)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	c.render(w, r, s, http.StatusOK, "rollout", fmt.Sprintf("Rollout %d", ro.ID), v)
}

// allowedActions are the buttons a rollout's state allows.
func allowedActions(ro *Rollout) []string {
	var out []string
	for _, st := range ro.Stages {
		if st.State == rollouts.StageApproval && openRollout(ro.State) {
			out = append(out, "approve")
			break
		}
	}
	switch ro.State {
	case rollouts.Running, rollouts.Waiting:
		out = append(out, "pause")
	case rollouts.Paused, rollouts.Halted:
		out = append(out, "resume")
	}
	if openRollout(ro.State) {
		out = append(out, "abort")
	}
	return out
}

// maxFailedShown bounds the failed tenants a rollout page lists; the tenants page has them all.
const maxFailedShown = 100

// failedTenants lists the Failed tenants on their way to the rollout's generation, each with its
// error and its stage.
func (c *Console) failedTenants(ctx context.Context, ro *Rollout) ([]rolloutFailure, bool, error) {
	page, err := c.cfg.Plane.TenantPage(ctx, controlplane.TenantQuery{Status: controlplane.StatusFailed, Limit: maxFailedShown})
	if err != nil {
		return nil, false, err
	}
	// As the rollout assigns them: the first stage whose selector matches (an empty one matches
	// every tenant left, as the stage of the rest does).
	sels := make([]labels.Selector, len(ro.Stages))
	for i, st := range ro.Stages {
		if st.Selector == "" {
			continue
		}
		sel, err := labels.ParseSelector(st.Selector)
		if err != nil {
			return nil, false, fmt.Errorf("rollout %d, stage %q: %w", ro.ID, st.Name, err)
		}
		sels[i] = sel
	}
	out := []rolloutFailure{}
	for _, t := range page.Results {
		if t.Generation != nil && *t.Generation >= ro.Generation {
			continue
		}
		f := rolloutFailure{Tenant: t.Slug, Since: t.LastTransitionAt}
		if t.LastError != nil {
			f.Error = *t.LastError
		}
		for i, sel := range sels {
			if sel.Matches(t.Labels) {
				f.Stage = ro.Stages[i].Name
				break
			}
		}
		out = append(out, f)
	}
	return out, page.Next != "", nil
}

func (c *Console) rolloutAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := c.rolloutID(w, r, s)
	if !ok {
		return
	}
	action := r.PathValue("action")
	if !slices.Contains(rolloutActions, action) {
		c.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("No action %q: a rollout may be approved, paused, resumed or aborted.", action))
		return
	}
	ro, err := act(c.cfg.Rollouts, action)(r.Context(), id, s.op.String()+" in the console")
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	c.log.Info("console rollout action", "rollout", id, "action", action, "operator", s.op.Name)
	if wantsJSON(r) || s.bearer() {
		writeJSON(w, http.StatusOK, ro)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/rollouts/%d?done=%s", id, action), http.StatusSeeOther)
}
