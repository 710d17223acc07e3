package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/generations"
	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
)

// ---- fleet ----

// fleetView is the fleet page and its JSON twin.
type fleetView struct {
	*controlplane.FleetSummary
	Health *Health `json:"health,omitempty"`
	// Rollouts are those in progress (running, waiting, paused or halted), newest first.
	Rollouts []Rollout `json:"rollouts"`
}

// fleetSummary is the fleet summary, read again once it is a second old.
func (c *Console) fleetSummary(ctx context.Context) (*controlplane.FleetSummary, error) {
	c.sumMu.Lock()
	defer c.sumMu.Unlock()
	if c.sum != nil && time.Since(c.sumAt) < time.Second {
		return c.sum, nil
	}
	sum, err := c.cfg.Plane.FleetSummary(ctx)
	if err != nil {
		return nil, err
	}
	c.sum, c.sumAt = sum, time.Now()
	return sum, nil
}

func (c *Console) fleet(w http.ResponseWriter, r *http.Request, s *session) {
	sum, err := c.fleetSummary(r.Context())
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v := fleetView{FleetSummary: sum, Rollouts: []Rollout{}}
	if c.cfg.Rollouts != nil {
		list, err := c.cfg.Rollouts.List(r.Context(), 10)
		if err != nil {
			c.failErr(w, r, s, err)
			return
		}
		for _, ro := range list {
			if openRollout(ro.State) {
				v.Rollouts = append(v.Rollouts, ro)
			}
		}
	}
	if c.cfg.Health != nil {
		h := c.cfg.Health(r.Context())
		v.Health = &h
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	c.render(w, r, s, http.StatusOK, "fleet", "Fleet", v)
}

// ---- tenants ----

// statuses are the tenant statuses a filter may name.
var statuses = []string{controlplane.StatusReady, controlplane.StatusPending, controlplane.StatusBlocked, controlplane.StatusFailed}

// tenantsView is the tenants page: the filters as given, the page, and the links around it.
type tenantsView struct {
	Q          controlplane.TenantQuery
	Generation string
	Selector   string
	Statuses   []string
	Sorts      []sortLink
	Page       *controlplane.TenantPage
	NextURL    string
	PrevURL    string
	Error      string
}

type sortLink struct {
	Column, Label, URL, Aria string
}

var sortLabels = map[string]string{"slug": "Slug", "name": "Name", "status": "Status", "generation": "Generation", "created_at": "Created"}

// tenantQuery parses the tenants page's query string.
func tenantQuery(v url.Values) (controlplane.TenantQuery, error) {
	q := controlplane.TenantQuery{Name: strings.TrimSpace(v.Get("q")), Sort: v.Get("sort"), After: v.Get("after"), Before: v.Get("before")}
	if sel := v.Get("selector"); strings.TrimSpace(sel) != "" {
		s, err := labels.ParseSelector(sel)
		if err != nil {
			return q, badInput("%s", err)
		}
		q.Selector = s
	}
	if st := v.Get("status"); st != "" {
		i := slices.IndexFunc(statuses, func(s string) bool { return strings.EqualFold(s, st) })
		if i < 0 {
			return q, badInput("no status %q: a tenant is %s", st, strings.Join(statuses, ", "))
		}
		q.Status = statuses[i]
	}
	if g := strings.TrimSpace(v.Get("generation")); g != "" {
		n, err := strconv.ParseInt(g, 10, 64)
		if err != nil || n < 0 {
			return q, badInput("generation %q is not a generation number (0 for tenants at none)", g)
		}
		q.Generation = &n
	}
	switch o := v.Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, badInput("order %q is neither asc nor desc", o)
	}
	if q.Sort != "" && !slices.Contains(controlplane.TenantSorts, q.Sort) {
		return q, badInput("cannot sort by %q: sort by %s", q.Sort, strings.Join(controlplane.TenantSorts, ", "))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return q, badInput("limit %q is not a number from 1 to 500", l)
		}
		q.Limit = n
	}
	return q, nil
}

// tenantsURL is the tenants page with v's filters and the given changes ("" removes a key).
func tenantsURL(v url.Values, set ...string) string {
	u := url.Values{}
	for k, vs := range v {
		if len(vs) > 0 && vs[0] != "" {
			u.Set(k, vs[0])
		}
	}
	for i := 0; i+1 < len(set); i += 2 {
		if set[i+1] == "" {
			u.Del(set[i])
		} else {
			u.Set(set[i], set[i+1])
		}
	}
	if len(u) == 0 {
		return "/tenants"
	}
	return "/tenants?" + u.Encode()
}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request, s *session) {
	v := r.URL.Query()
	q, err := tenantQuery(v)
	view := tenantsView{Q: q, Generation: v.Get("generation"), Selector: v.Get("selector"), Statuses: statuses}
	if err == nil {
		view.Page, err = c.cfg.Plane.TenantPage(r.Context(), q)
	}
	if err != nil {
		if !errors.Is(err, errBadInput) && !errors.Is(err, controlplane.ErrInvalid) {
			c.failErr(w, r, s, err)
			return
		}
		if wantsJSON(r) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": sentence(err)})
			return
		}
		view.Error = sentence(err)
		view.Page = &controlplane.TenantPage{Results: []controlplane.Tenant{}}
		c.render(w, r, s, http.StatusBadRequest, "tenants", "Tenants", view)
		return
	}
	if view.Page.Next != "" {
		view.NextURL = tenantsURL(v, "after", view.Page.Next, "before", "")
	}
	if view.Page.Previous != "" {
		view.PrevURL = tenantsURL(v, "before", view.Page.Previous, "after", "")
	}
	if wantsJSON(r) {
		// The cursors become the links of the pages beside, null at either end, as the data
		// API's next and previous.
		link := func(u string) *string {
			if u == "" {
				return nil
			}
			return &u
		}
		writeJSON(w, http.StatusOK, struct {
			Count       int                   `json:"count"`
			CountCapped bool                  `json:"count_capped,omitempty"`
			Next        *string               `json:"next"`
			Previous    *string               `json:"previous"`
			Results     []controlplane.Tenant `json:"results"`
		}{view.Page.Count, view.Page.CountCapped, link(view.NextURL), link(view.PrevURL), view.Page.Results})
		return
	}
	sortBy := q.Sort
	if sortBy == "" {
		sortBy = "slug"
	}
	for _, col := range controlplane.TenantSorts {
		l := sortLink{Column: col, Label: sortLabels[col], Aria: "none"}
		order := "asc"
		if col == sortBy {
			l.Aria = "ascending"
			if q.Desc {
				l.Aria = "descending"
			} else {
				order = "desc"
			}
		}
		l.URL = tenantsURL(v, "sort", col, "order", order, "after", "", "before", "")
		view.Sorts = append(view.Sorts, l)
	}
	c.render(w, r, s, http.StatusOK, "tenants", "Tenants", view)
}

// ---- one tenant ----

// tenantView is the tenant page and its JSON twin: what erpctl tenant show -o json prints, and
// the tenant's tokens as erpctl token list -o json prints them.
type tenantView struct {
	*controlplane.Tenant
	Events []controlplane.Event `json:"events"`
	Tokens []controlplane.Token `json:"tokens"` // as token list prints them: names, never tokens
	Fixed  string               `json:"-"`      // what the fix just made did, after a Fix
}

// fixedText says what a fix did, for the notice after the Fix button; only the reconciler's
// own actions are shown, whatever the address says.
var fixedText = map[string]string{
	controlplane.ActionApplied:   "Fixed: the missing and drifted objects were applied.",
	controlplane.ActionUnchanged: "Nothing to fix: the tables are as the tenant's generation declares them.",
	controlplane.ActionBlocked:   "Not fixed: only a destructive change would make it match; nothing was applied.",
	controlplane.ActionFailed:    "The fix failed and was rolled back; the events below say why.",
	controlplane.ActionSkipped:   "Not fixed now: another process holds the tenant; try again in a moment.",
}

func (c *Console) slug(w http.ResponseWriter, r *http.Request, s *session) (ident.Slug, bool) {
	slug, err := ident.ParseSlug(r.PathValue("slug"))
	if err != nil {
		c.fail(w, r, s, http.StatusNotFound, fmt.Sprintf("No tenant %q.", r.PathValue("slug")))
		return slug, false
	}
	return slug, true
}

func (c *Console) tenant(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok := c.slug(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	t, err := c.cfg.Plane.GetTenant(ctx, slug)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v := tenantView{Tenant: t, Events: []controlplane.Event{}, Tokens: []controlplane.Token{}, Fixed: fixedText[r.URL.Query().Get("fixed")]}
	evs, err := c.cfg.Plane.TenantEvents(ctx, slug, 50)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	if evs != nil {
		v.Events = evs
	}
	toks, err := c.cfg.Plane.ListTokens(ctx, slug)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	if toks != nil {
		v.Tokens = toks
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	c.render(w, r, s, http.StatusOK, "tenant", t.Slug, v)
}

// tablesView is erpctl debug tables -o json, with the SQL a fix would run: all of it, and for
// each missing or drifted table the statements that name it.
type tablesView struct {
	*controlplane.TablesReport
	Tables         []tableView `json:"tables"`
	FixSQL         []string    `json:"fix_sql"`
	DestructiveSQL []string    `json:"destructive_sql,omitempty"`
	FixError       string      `json:"fix_error,omitempty"`
}

type tableView struct {
	controlplane.TableStatus
	FixSQL []string `json:"fix_sql"`
}

// quotedName finds the names a statement of Atlas's plan quotes.
var quotedName = regexp.MustCompile(`"((?:[^"]|"")+)"`)

func (c *Console) tenantTables(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok := c.slug(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	rep, err := c.cfg.Plane.DebugTables(ctx, slug)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v := tablesView{TablesReport: rep, Tables: []tableView{}, FixSQL: []string{}}
	if !rep.Healthy {
		// What the Fix button would do: the same reconcile, run dry.
		res, err := c.cfg.Plane.Reconcile(ctx, slug, controlplane.ReconcileOptions{DryRun: true, Target: controlplane.TargetApplied})
		switch {
		case err != nil:
			c.failErr(w, r, s, err)
			return
		case res.Error != "":
			v.FixError = res.Error
		}
		v.FixSQL, v.DestructiveSQL = res.SQL, res.Destructive
		if v.FixSQL == nil {
			v.FixSQL = []string{}
		}
	}
	for _, t := range rep.Tables {
		tv := tableView{TableStatus: t, FixSQL: []string{}}
		if t.Status != "missing" && t.Status != "drifted" {
			v.Tables = append(v.Tables, tv)
			continue
		}
		for _, stmt := range v.FixSQL {
			for _, m := range quotedName.FindAllStringSubmatch(stmt, -1) {
				if strings.ReplaceAll(m[1], `""`, `"`) == t.Table {
					tv.FixSQL = append(tv.FixSQL, stmt)
					break
				}
			}
		}
		v.Tables = append(v.Tables, tv)
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	c.render(w, r, s, http.StatusOK, "tables", rep.Tenant+": tables", v)
}

// fix repairs a tenant toward the generation it has applied, as erpctl debug tables --fix does,
// recording the repair with the operator's name.
func (c *Console) fix(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok := c.slug(w, r, s)
	if !ok {
		return
	}
	res, err := c.cfg.Plane.Reconcile(r.Context(), slug, controlplane.ReconcileOptions{Target: controlplane.TargetApplied,
		Cause: "fix by " + s.op.String() + " in the console"})
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	c.log.Info("console fix", "tenant", slug.String(), "operator", s.op.Name, "action", res.Action)
	if wantsJSON(r) || s.bearer() {
		writeJSON(w, http.StatusOK, res)
		return
	}
	http.Redirect(w, r, "/tenants/"+slug.String()+"?fixed="+url.QueryEscape(res.Action)+"#tables", http.StatusSeeOther)
}

// ---- generations ----

func (c *Console) generations(w http.ResponseWriter, r *http.Request, s *session) {
	gens, err := c.cfg.Generations.History(r.Context(), 0)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, gens)
		return
	}
	c.render(w, r, s, http.StatusOK, "generations", "Generations", gens)
}

// diffView is erpctl module diff -o json.
type diffView struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Identical bool   `json:"identical"`
	Diff      string `json:"diff"`

	FromN, ToN int64                    `json:"-"`
	History    []generations.Generation `json:"-"`
}

func (c *Console) generationDiff(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	gens, err := c.cfg.Generations.History(ctx, 0)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	num := func(key string, def int64) (int64, error) {
		v := strings.TrimSpace(r.URL.Query().Get(key))
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, badInput("%s %q is not a generation number (1, 2, ...)", key, v)
		}
		return n, nil
	}
	// By default the latest generation against the one before it.
	var latest int64
	if len(gens) > 0 {
		latest = gens[0].Number
	}
	to, err := num("to", latest)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	from, err := num("from", max(to-1, 1))
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	a, err := c.cfg.Generations.Get(ctx, from)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	b, err := c.cfg.Generations.Get(ctx, to)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	v := diffView{From: fmt.Sprintf("generation %d", from), To: fmt.Sprintf("generation %d", to), FromN: from, ToN: to, History: gens}
	v.Diff = generations.Diff(strings.ReplaceAll(v.From, " ", "-"), a.Sources, strings.ReplaceAll(v.To, " ", "-"), b.Sources)
	v.Identical = v.Diff == ""
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	c.render(w, r, s, http.StatusOK, "diff", fmt.Sprintf("Generations %d and %d", from, to), v)
}
