package controlplane

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/controlplane/labels"
)

// TenantQuery is one page of tenants as the console asks for it: filtered, sorted by a column and
// paged by a cursor (keyset), so that a page costs the same at 100,000 tenants as at 100.
type TenantQuery struct {
	Status     string // "": any
	Generation *int64 // nil: any; 0: tenants at none
	Name       string // the start of the slug or, case-insensitive, of the name; "": any
	Selector   labels.Selector
	Sort       string // one of TenantSorts; "": slug
	Desc       bool
	After      string // the Next of the page before, or
	Before     string // the Previous of the page after; neither: the first page
	Limit      int    // 0: 50; at most 500
}

// TenantSorts are the columns a page of tenants may be sorted by, each read in order from an
// index of the catalog (with the slug after it, which makes the order total).
var TenantSorts = []string{"slug", "name", "status", "generation", "created_at"}

// sortExpr is the expression of each sort column and its type, for the cursor's value.
var sortExpr = map[string][2]string{
	"slug":       {"slug", "text"},
	"name":       {"name", "text"},
	"status":     {"status", "text"},
	"generation": {"coalesce(generation, 0)", "bigint"},
	"created_at": {"created_at", "timestamptz"},
}

// TenantPage is a page of tenants, as the data API pages rows: count is every tenant the
// filters match (at most MaxTenantCount, and then CountCapped), next and previous the cursors of
// the pages beside ("" at either end).
type TenantPage struct {
	Count       int      `json:"count"`
	CountCapped bool     `json:"count_capped,omitempty"`
	Next        string   `json:"next"`
	Previous    string   `json:"previous"`
	Results     []Tenant `json:"results"`
}

// MaxTenantCount is as far as a page counts the tenants its filters match.
const MaxTenantCount = 10000

// ErrBadCursor is wrapped by the error of a page cursor that this query did not make.
var ErrBadCursor = fmt.Errorf("%w: bad page cursor", ErrInvalid)

// TenantPage reads one page of tenants.
func (p *Plane) TenantPage(ctx context.Context, q TenantQuery) (*TenantPage, error) {
	if q.Sort == "" {
		q.Sort = "slug"
	}
	sort, ok := sortExpr[q.Sort]
	if !ok {
		return nil, fmt.Errorf("list tenants: %w: cannot sort by %q (sort by one of %s)", ErrInvalid, q.Sort, strings.Join(TenantSorts, ", "))
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(q.Status))
	}
	if q.Generation != nil {
		where = append(where, "coalesce(generation, 0) = "+arg(*q.Generation))
	}
	if q.Name != "" {
		// A prefix, so that both sides are index range scans (text_pattern_ops) at any size.
		like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q.Name)) + "%"
		a := arg(like)
		where = append(where, "(slug LIKE "+a+" OR lower(name) LIKE "+a+")")
	}
	if !q.Selector.Empty() {
		where = append(where, q.Selector.SQL("labels", &args))
	}
	filter := "true"
	if len(where) > 0 {
		filter = strings.Join(where, " AND ")
	}
	// The count stops at MaxTenantCount: counting every match would cost as much as the fleet.
	var page TenantPage
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT FROM erpctl.tenants WHERE `+filter+` LIMIT `+
		fmt.Sprint(MaxTenantCount+1)+`) m`, args...).Scan(&page.Count); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	if page.Count > MaxTenantCount {
		page.Count, page.CountCapped = MaxTenantCount, true
	}
	// Forward pages walk the index in the sort's direction; a page before a cursor walks it the
	// other way and is turned round.
	backward := q.Before != ""
	cursor := q.After
	if backward {
		cursor = q.Before
	}
	desc := q.Desc != backward
	cmp, dir := ">", "ASC"
	if desc {
		cmp, dir = "<", "DESC"
	}
	if cursor != "" {
		val, slug, err := decodeCursor(cursor)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		if q.Sort == "slug" {
			where = append(where, "slug "+cmp+" "+arg(slug))
		} else {
			where = append(where, fmt.Sprintf("(%s, slug) %s (%s::%s, %s)", sort[0], cmp, arg(val), sort[1], arg(slug)))
		}
	}
	if len(where) > 0 {
		filter = strings.Join(where, " AND ")
	}
	order := sort[0] + " " + dir + ", slug " + dir
	if q.Sort == "slug" {
		order = "slug " + dir
	}
	rows, err := p.pool.Query(ctx, `SELECT `+tenantColumns+`, (`+sort[0]+`)::text AS page_key FROM erpctl.tenants WHERE `+filter+
		` ORDER BY `+order+` LIMIT `+arg(q.Limit+1), args...)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var keys []string
	page.Results = []Tenant{}
	sc := &tenantScanner{p: p}
	for rows.Next() {
		var key string
		t, err := sc.scan(ctx, rows, &key)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		page.Results = append(page.Results, *t)
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	more := len(page.Results) > q.Limit
	if more {
		page.Results, keys = page.Results[:q.Limit], keys[:q.Limit]
	}
	if backward {
		slices.Reverse(page.Results)
		slices.Reverse(keys)
	}
	if n := len(page.Results); n > 0 {
		// Beyond the far end of the walk there is more when the walk found more; behind its start
		// there is the page the cursor came from.
		if (!backward && more) || (backward && cursor != "") {
			page.Next = encodeCursor(keys[n-1], page.Results[n-1].Slug)
		}
		if (backward && more) || (!backward && cursor != "") {
			page.Previous = encodeCursor(keys[0], page.Results[0].Slug)
		}
	}
	ptrs := make([]*Tenant, len(page.Results))
	for i := range page.Results {
		ptrs[i] = &page.Results[i]
	}
	if err := p.placeTenants(ctx, ptrs); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return &page, nil
}

func encodeCursor(val, slug string) string {
	b, _ := json.Marshal([2]string{val, slug})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (val, slug string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	var v [2]string
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return "", "", ErrBadCursor
	}
	return v[0], v[1], nil
}

// FleetSummary is the fleet at a glance: tenants by status and by generation, and what failed
// or drifted lately.
type FleetSummary struct {
	Tenants          int               `json:"tenants"`
	ByStatus         map[string]int    `json:"by_status"`
	ByGeneration     []GenerationCount `json:"by_generation"` // newest first; generation 0: none
	LatestGeneration int64             `json:"latest_generation"`
	Held             int               `json:"held"` // tenants a halted rollout holds
	// Since is the start of the window of Failures and Repairs: an hour ago.
	Since    time.Time `json:"since"`
	Failures []Event   `json:"failures"` // failed or blocked, newest first, at most 20
	Repairs  []Event   `json:"repairs"`  // drift repaired, newest first, at most 20
	// FailureCount and RepairCount count them all in the window.
	FailureCount int `json:"failure_count"`
	RepairCount  int `json:"repair_count"`
}

// GenerationCount is how many tenants have applied a generation.
type GenerationCount struct {
	Generation int64 `json:"generation"`
	Tenants    int   `json:"tenants"`
}

// FleetSummary reads the fleet at a glance.
func (p *Plane) FleetSummary(ctx context.Context) (*FleetSummary, error) {
	s := &FleetSummary{ByStatus: map[string]int{StatusPending: 0, StatusReady: 0, StatusBlocked: 0, StatusFailed: 0},
		ByGeneration: []GenerationCount{}}
	rows, err := p.pool.Query(ctx, `SELECT status, status_reason = $1, coalesce(generation, 0), count(*) FROM erpctl.tenants GROUP BY 1, 2, 3`, ReasonRolloutHalted)
	if err != nil {
		return nil, fmt.Errorf("summarise the fleet: %w", err)
	}
	byGen := map[int64]int{}
	for rows.Next() {
		var status string
		var held bool
		var gen int64
		var n int
		if err := rows.Scan(&status, &held, &gen, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("summarise the fleet: %w", err)
		}
		s.Tenants += n
		s.ByStatus[status] += n
		byGen[gen] += n
		if held {
			s.Held += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarise the fleet: %w", err)
	}
	for g, n := range byGen {
		s.ByGeneration = append(s.ByGeneration, GenerationCount{Generation: g, Tenants: n})
	}
	slices.SortFunc(s.ByGeneration, func(a, b GenerationCount) int { return int(b.Generation - a.Generation) })
	if s.LatestGeneration, _, err = p.gens.Latest(ctx, nil); err != nil {
		return nil, fmt.Errorf("summarise the fleet: %w", err)
	}
	// Each condition is the predicate of a partial index (catalog.hcl), so these read only
	// failures and repairs, however many events the hour holds.
	const failed, repaired = `outcome IN ('failed', 'blocked')`, `kind = 'repair' AND outcome = 'applied'`
	if err := p.pool.QueryRow(ctx, `SELECT since,
		(SELECT count(*) FROM erpctl.events WHERE at > since AND `+failed+`),
		(SELECT count(*) FROM erpctl.events WHERE at > since AND `+repaired+`)
		FROM (SELECT now() - interval '1 hour') AS h(since)`).Scan(&s.Since, &s.FailureCount, &s.RepairCount); err != nil {
		return nil, fmt.Errorf("summarise the fleet: %w", err)
	}
	if s.Failures, err = p.recentEvents(ctx, s.Since, failed); err != nil {
		return nil, err
	}
	if s.Repairs, err = p.recentEvents(ctx, s.Since, repaired); err != nil {
		return nil, err
	}
	return s, nil
}

// recentEvents reads the newest 20 events since a time that match cond, a constant of this file.
func (p *Plane) recentEvents(ctx context.Context, since time.Time, cond string) ([]Event, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, tenant, at, kind, sql, duration_ms, outcome, error, reason, generation
		FROM erpctl.events WHERE at > $1 AND `+cond+` ORDER BY at DESC, id DESC LIMIT 20`, since)
	if err != nil {
		return nil, fmt.Errorf("summarise the fleet: read events: %w", err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
	if err != nil {
		return nil, fmt.Errorf("summarise the fleet: read events: %w", err)
	}
	if evs == nil {
		evs = []Event{}
	}
	return evs, nil
}
