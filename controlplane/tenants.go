package controlplane

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/erpctl/erpctl/controlplane/labels"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// The NOTIFY channels daemons listen on: NotifyTenants carries the slug of a tenant that was
// created, deleted or whose modules changed; NotifyTokens the id of a revoked token.
const (
	NotifyTenants = "erpctl_tenants"
	NotifyTokens  = "erpctl_tokens"
)

// tenantLockKey is the advisory lock key of a tenant: every change to its schema holds it.
func tenantLockKey(slug ident.Slug) int64 {
	h := fnv.New64a()
	h.Write([]byte("erpctl tenant " + slug.String()))
	return int64(h.Sum64())
}

// CreateOptions describe a new tenant.
type CreateOptions struct {
	Slug    ident.Slug
	Name    string   // defaults to the slug
	Modules []string // empty: every module, now and later
	Labels  labels.Labels
	// NoTemplateLabels: a clone (CloneTenant) does not take its template's labels; Labels alone
	// are its labels. Without it the template's labels are the clone's, Labels set on top.
	NoTemplateLabels bool

	// fill, when set, runs in the create transaction once the tables exist (import, clone).
	fill func(ctx context.Context, tx *schema.Tx, schemaName string) error
}

// plan is the SQL that brings an empty tenant schema to a desired state, unqualified so that
// it serves every tenant under its own search_path.
type plan struct {
	hash    string
	stmts   []string
	managed []byte         // JSON of schema.Managed
	steps   []modules.Step // migration steps a new tenant records as not needed

	mu sync.Mutex
	fp string // the fingerprint the plan leaves, learnt from its first use
}

// fingerprint returns the fingerprint a fresh schema has after this plan: computed once per
// database (a per-schema fingerprint scans pg_class: 50 ms with 1,000 tenants) and kept in
// erpctl.meta, as the same SQL on an empty schema always gives the same result. Were it ever
// wrong, the next pass would see the difference and inspect the tenant.
func (pl *plan) fingerprint(ctx context.Context, tx *schema.Tx, schemaName string) (string, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.fp != "" {
		return pl.fp, nil
	}
	// v2: each statement now runs as its own query text, which moves the expression positions
	// PostgreSQL stores (and fingerprints hash) from where they were in the ";"-joined plan.
	key := "create_fingerprint:v2:" + pl.hash
	err := tx.QueryRowContext(ctx, `SELECT value FROM erpctl.meta WHERE key = $1`, key).Scan(&pl.fp)
	if err == nil {
		return pl.fp, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read create fingerprint: %w", err)
	}
	fp, err := schema.Fingerprint(ctx, tx, schemaName)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, fp); err != nil {
		return "", fmt.Errorf("record create fingerprint: %w", err)
	}
	pl.fp = fp
	return fp, nil
}

// createPlan returns the cached plan of a new tenant with the given modules: creating a tenant
// costs no Atlas inspection and, after the first, no planning.
func (p *Plane) createPlan(ctx context.Context, reg *modules.Registry, enabled []string) (*plan, error) {
	hash := reg.Hash(enabled)
	p.plansMu.Lock()
	defer p.plansMu.Unlock()
	if pl, ok := p.plans[hash]; ok {
		return pl, nil
	}
	desired, err := reg.Desired(enabled, modules.Placeholder)
	if err != nil {
		return nil, err
	}
	diff, err := p.planner.Diff(ctx, nil, desired, nil)
	if err != nil {
		return nil, err
	}
	stmts, err := p.planner.Plan(ctx, diff.Apply, "")
	if err != nil {
		return nil, err
	}
	managed, err := json.Marshal(schema.ManagedOf(desired))
	if err != nil {
		return nil, err
	}
	pl := &plan{hash: hash, stmts: stmts, managed: managed, steps: reg.Steps(enabled)}
	p.plans[hash] = pl
	return pl, nil
}

// enabledModules resolves what a tenant has: every module when it follows all, else the
// modules it chose and what they depend on.
func enabledModules(reg *modules.Registry, followAll bool, chosen []string) ([]string, error) {
	if followAll {
		return reg.Names(), nil
	}
	return reg.Closure(chosen)
}

// CreateTenant records the tenant and has the reconciler make its schema with every table of its
// modules, all in one transaction: on any failure nothing is left behind.
func (p *Plane) CreateTenant(ctx context.Context, o CreateOptions) (*Tenant, error) {
	if o.Slug.IsZero() {
		return nil, fmt.Errorf("create tenant: %w: no slug", ErrInvalid)
	}
	if err := validateTenantName(o.Name); err != nil {
		return nil, fmt.Errorf("create tenant %q: %w", o.Slug, err)
	}
	if o.Name == "" {
		o.Name = o.Slug.String()
	}
	followAll := len(o.Modules) == 0
	chosen := o.Modules
	if followAll {
		chosen = []string{}
	}
	if err := o.Labels.Validate(); err != nil {
		return nil, fmt.Errorf("create tenant %q: %w: %w", o.Slug, ErrInvalid, err)
	}
	lbls, err := json.Marshal(o.Labels)
	if err != nil || o.Labels == nil {
		lbls = []byte("{}")
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		// The tenant is made at the latest generation, as read in its own transaction.
		d, err := p.latestDesired(ctx, tx)
		if err != nil {
			return err
		}
		enabled, err := enabledModules(d.reg, followAll, o.Modules)
		if err != nil {
			return err
		}
		pl, err := p.createPlan(ctx, d.reg, enabled)
		if err != nil {
			return err
		}
		tag, err := tx.ExecContext(ctx, `INSERT INTO erpctl.tenants (slug, name, schema_name, follow_all, modules, status,
			status_reason, status_changed_at, labels) VALUES ($1, $2, $3, $4, $5, 'Pending', $6, now(), $7) ON CONFLICT DO NOTHING`,
			o.Slug.String(), o.Name, o.Slug.Schema(), followAll, chosen, ReasonNew, string(lbls))
		if err != nil {
			return err
		}
		if n, err := tag.RowsAffected(); err != nil || n == 0 {
			return fmt.Errorf("tenant %w", ErrExists)
		}
		if err := checkNotArchived(ctx, tx, o.Slug); err != nil {
			return err
		}
		if o.fill != nil {
			if err := p.markSeeds(ctx, tx, o.Slug, d.reg); err != nil {
				return err
			}
		}
		if err := p.reconcileNew(ctx, tx, o.Slug, d, pl); err != nil {
			return err
		}
		if o.fill != nil {
			if err := o.fill(ctx, tx, o.Slug.Schema()); err != nil {
				return err
			}
		}
		return notifyTenant(ctx, tx, o.Slug)
	})
	if err != nil {
		return nil, fmt.Errorf("create tenant %q: %w", o.Slug, err)
	}
	p.applied.notify(o.Slug)
	return p.GetTenant(ctx, o.Slug)
}

// notifyTenant tells every daemon that the tenant changed, when tx commits.
func notifyTenant(ctx context.Context, tx schema.Querier, slug ident.Slug) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyTenants, slug.String())
	return err
}

// begin starts a transaction on the control plane's pool, in which the statements that record
// an apply are prepared where pgx prepares (see Plane.prepare).
func (p *Plane) begin(ctx context.Context) (*schema.Tx, error) {
	tx, err := schema.Begin(ctx, p.db)
	if err != nil {
		return nil, err
	}
	tx.PrepareArgs(p.prepare)
	return tx, nil
}

// inTx runs fn in a database/sql transaction, which Atlas and the rest of a tenant change share.
func (p *Plane) inTx(ctx context.Context, fn func(tx *schema.Tx) error) error {
	tx, err := p.begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func insertEvent(ctx context.Context, db schema.Querier, slug ident.Slug, kind, stmts string, d time.Duration, outcome string, evErr error) error {
	return insertEventWhy(ctx, db, slug, kind, "", stmts, d, outcome, evErr)
}

// insertEventWhy records an event with why it happened ("" for none).
func insertEventWhy(ctx context.Context, db schema.Querier, slug ident.Slug, kind, why, stmts string, d time.Duration, outcome string, evErr error) error {
	return insertGenEvent(ctx, db, slug, 0, kind, why, stmts, d, outcome, evErr)
}

// insertGenEvent records an event of a reconcile to generation gen (0: none).
func insertGenEvent(ctx context.Context, db schema.Querier, slug ident.Slug, gen int64, kind, why, stmts string, d time.Duration, outcome string, evErr error) error {
	var sqlArg, errArg, whyArg *string
	if why != "" {
		whyArg = &why
	}
	if stmts != "" {
		sqlArg = &stmts
	}
	if evErr != nil {
		s := evErr.Error()
		errArg = &s
	}
	_, err := db.ExecContext(ctx, `INSERT INTO erpctl.events (tenant, kind, sql, duration_ms, outcome, error, reason, generation)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		slug.String(), kind, sqlArg, float64(d.Microseconds())/1000, outcome, errArg, whyArg, nullGen(gen))
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// tenantColumns reads a tenant; a pass that found a Ready or Blocked tenant as desired counts as
// its last reconcile (ReconcileAll records passes, not each unchanged tenant). Its modules come
// as text (module names are plain words), which tenantScanner looks up before it splits.
const tenantColumns = `slug, name, schema_name, status, follow_all, array_to_string(modules, ','), created_at,
	CASE WHEN status IN ('Ready', 'Blocked') THEN greatest(last_reconciled_at,
		(SELECT value::timestamptz FROM erpctl.meta WHERE key = 'last_pass_at')) ELSE last_reconciled_at END,
	last_applied_at, last_error, blocked_sql, failures, next_attempt_at, status_reason, coalesce(status_changed_at, updated_at), pinned_node,
	generation, (SELECT max(generation) FROM erpctl.generations), labels`

// scanTenant reads a row of tenantColumns, and into extra what the query selects after them.
func (p *Plane) scanTenant(ctx context.Context, row pgx.Row, extra ...any) (*Tenant, error) {
	return (&tenantScanner{p: p}).scan(ctx, row, extra...)
}

// tenantScanner reads rows of tenantColumns. Across the rows of one query it decodes each
// distinct label set and works out each distinct module choice once, and the tenants share
// them (Tenant says so): a fleet has few of either, and a list of 25,000 tenants spent most of
// its time decoding the same JSON again. For the same reason it keeps one copy of each status,
// reason, node and generation, allocates tenants and their times in blocks, gives a tenant's
// slug, name and schema one string, and scans every row into the same values.
type tenantScanner struct {
	p       *Plane
	labels  map[string]labels.Labels
	modules map[string][]string
	strings map[string]string
	gens    map[int64]*int64
	key     []byte
	names   []byte
	block   []Tenant    // where the next tenants go
	times   []time.Time // and their times
	scanned int
	row     *tenantRow
}

// tenantRow is what a row of tenantColumns scans into, before it becomes a Tenant. The scanner
// reuses it: a row's values escape to the heap, and a long list spent a third of its time
// allocating a new set of them for every row. Where the row is a pgx.Rows, the byte values are
// the row buffer's own (pgtype.DriverBytes), valid until the next row; they are copied or
// interned before then.
type tenantRow struct {
	slug, name, schema, status, chosen, labels, reason, pinned []byte
	followAll                                                  bool
	failures                                                   int
	created                                                    time.Time
	reconciled, applied, next, transition                      pgtype.Timestamptz
	lastErr, blocked                                           pgtype.Text
	applyGen, latestGen                                        pgtype.Int8
	dest                                                       []any
}

func newTenantRow(driverBytes bool) *tenantRow {
	r := &tenantRow{}
	bytesOf := func(b *[]byte) any { return b }
	if driverBytes {
		bytesOf = func(b *[]byte) any { return (*pgtype.DriverBytes)(b) }
	}
	r.dest = []any{bytesOf(&r.slug), bytesOf(&r.name), bytesOf(&r.schema), bytesOf(&r.status), &r.followAll,
		bytesOf(&r.chosen), &r.created, &r.reconciled, &r.applied, &r.lastErr, &r.blocked, &r.failures, &r.next,
		bytesOf(&r.reason), &r.transition, bytesOf(&r.pinned), &r.applyGen, &r.latestGen, bytesOf(&r.labels)}
	return r
}

func (s *tenantScanner) scan(ctx context.Context, row pgx.Row, extra ...any) (*Tenant, error) {
	if s.row == nil {
		_, ok := row.(pgx.Rows) // a QueryRow's row gets copies
		s.row = newTenantRow(ok)
	}
	r := s.row
	dest := r.dest
	if len(extra) > 0 {
		dest = append(dest[:len(dest):len(dest)], extra...)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if len(s.block) == 0 {
		s.block = make([]Tenant, min(1+s.scanned, 256)) // one for a GetTenant
	}
	t := &s.block[0]
	s.block = s.block[1:]
	s.scanned++
	s.names = append(append(append(s.names[:0], r.slug...), r.name...), r.schema...)
	names := string(s.names)
	t.Slug, t.Name, t.Schema = names[:len(r.slug)], names[len(r.slug):len(r.slug)+len(r.name)], names[len(r.slug)+len(r.name):]
	t.FollowAll, t.CreatedAt, t.Failures = r.followAll, r.created, r.failures
	t.Status, t.Reason, t.PinnedNode = s.intern(r.status), s.intern(r.reason), s.intern(r.pinned)
	t.LastReconciledAt, t.LastAppliedAt = s.time(r.reconciled), s.time(r.applied)
	t.NextAttemptAt, t.LastTransitionAt = s.time(r.next), s.time(r.transition)
	t.LastError, t.BlockedSQL = textPtr(r.lastErr), textPtr(r.blocked)
	t.Generation = s.generation(r.applyGen)
	latest := s.generation(r.latestGen)
	lbls, err := s.decodeLabels(r.labels)
	if err != nil {
		return nil, fmt.Errorf("labels of tenant %q: %w", t.Slug, err)
	}
	t.Labels = lbls
	if latest != nil && (t.Generation == nil || *t.Generation != *latest) {
		t.TargetGeneration = latest
	}
	// Its modules as its own generation has them.
	gen := t.Generation
	if gen == nil {
		gen = latest
	}
	t.Modules = s.modulesAt(ctx, gen, t.FollowAll, r.chosen)
	return t, nil
}

// intern returns b as a string, the same string for the same bytes.
func (s *tenantScanner) intern(b []byte) string {
	if v, ok := s.strings[string(b)]; ok {
		return v
	}
	if s.strings == nil {
		s.strings = map[string]string{}
	}
	v := string(b)
	s.strings[v] = v
	return v
}

// time returns a pointer to v's time, kept in a block of times; nil for NULL.
func (s *tenantScanner) time(v pgtype.Timestamptz) *time.Time {
	if !v.Valid {
		return nil
	}
	if len(s.times) == 0 {
		s.times = make([]time.Time, min(4*(1+s.scanned), 1024))
	}
	p := &s.times[0]
	*p = v.Time
	s.times = s.times[1:]
	return p
}

// generation returns a pointer to v's generation, one for each distinct generation; nil for NULL.
func (s *tenantScanner) generation(v pgtype.Int8) *int64 {
	if !v.Valid {
		return nil
	}
	if p, ok := s.gens[v.Int64]; ok {
		return p
	}
	if s.gens == nil {
		s.gens = map[int64]*int64{}
	}
	p := &v.Int64
	s.gens[v.Int64] = p
	return p
}

func textPtr(v pgtype.Text) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}

// decodeLabels decodes a labels column, once for each distinct value.
func (s *tenantScanner) decodeLabels(raw []byte) (labels.Labels, error) {
	if cached, ok := s.labels[string(raw)]; ok {
		return cached, nil
	}
	l := labels.Labels{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, err
		}
	}
	if s.labels == nil {
		s.labels = map[string]labels.Labels{}
	}
	s.labels[string(raw)] = l
	return l, nil
}

// modulesAt is what a tenant has at generation gen: its chosen modules (comma-separated), or
// every module when it follows all, with their dependencies. Without the generation (or when it
// cannot be read) the choice as recorded.
func (s *tenantScanner) modulesAt(ctx context.Context, gen *int64, followAll bool, chosen []byte) []string {
	s.key = s.key[:0]
	if gen != nil {
		s.key = strconv.AppendInt(s.key, *gen, 10)
	}
	s.key = strconv.AppendBool(append(s.key, '|'), followAll)
	s.key = append(append(s.key, '|'), chosen...)
	if m, ok := s.modules[string(s.key)]; ok {
		return m
	}
	var names []string
	if len(chosen) > 0 {
		names = strings.Split(string(chosen), ",")
	}
	mods := names
	if gen != nil {
		if reg, err := s.p.gens.Registry(ctx, nil, *gen); err == nil {
			if m, err := enabledModules(reg, followAll, names); err == nil {
				mods = m
			}
		}
	}
	if mods == nil {
		mods = []string{}
	}
	if s.modules == nil {
		s.modules = map[string][]string{}
	}
	s.modules[string(s.key)] = mods
	return mods
}

// archivedHint is what to add to the ErrNotFound of a tenant the catalog does not hold: how to
// restore it when it is archived, else nothing. Someone asking for a deleted tenant at 3 a.m.
// wants to know it can come back.
func (p *Plane) archivedHint(ctx context.Context, slug ident.Slug) string {
	var archived bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM erpctl.archives WHERE slug = $1)`, slug.String()).Scan(&archived); err == nil && archived {
		return ": it was deleted and is archived; bring it back with erpctl tenant restore " + slug.String()
	}
	return ""
}

// GetTenant returns one tenant; ErrNotFound when there is none.
func (p *Plane) GetTenant(ctx context.Context, slug ident.Slug) (*Tenant, error) {
	t, err := p.scanTenant(ctx, p.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM erpctl.tenants WHERE slug = $1`, slug.String()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("tenant %q %w%s", slug, ErrNotFound, p.archivedHint(ctx, slug))
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant %q: %w", slug, err)
	}
	if err := p.placeTenants(ctx, []*Tenant{t}); err != nil {
		return nil, fmt.Errorf("read tenant %q: %w", slug, err)
	}
	return t, nil
}

// ListTenants returns every tenant by slug.
func (p *Plane) ListTenants(ctx context.Context) ([]Tenant, error) {
	return p.ListTenantsSelected(ctx, labels.Selector{})
}

// ListTenantsSelected returns the tenants whose labels match sel, by slug.
func (p *Plane) ListTenantsSelected(ctx context.Context, sel labels.Selector) ([]Tenant, error) {
	var args []any
	// Sorted here, not by the server: a selector picks its rows through the labels' GIN index
	// in the heap's order, and sorting a quarter of 100,000 wide rows spilled to disk there and
	// drew in parallel workers, which made the list 3 times slower on two cores. The catalog's
	// collation is C, so byte order is the server's order.
	rows, err := p.pool.Query(ctx, `SELECT `+tenantColumns+` FROM erpctl.tenants WHERE `+sel.SQL("labels", &args), args...)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var ptrs []*Tenant
	sc := &tenantScanner{p: p}
	for rows.Next() {
		t, err := sc.scan(ctx, rows)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		ptrs = append(ptrs, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	slices.SortFunc(ptrs, func(a, b *Tenant) int { return strings.Compare(a.Slug, b.Slug) })
	if err := p.placeTenants(ctx, ptrs); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out := make([]Tenant, len(ptrs))
	for i, t := range ptrs {
		out[i] = *t
	}
	return out, nil
}

// TenantEvents returns a tenant's last events, newest first.
func (p *Plane) TenantEvents(ctx context.Context, slug ident.Slug, limit int) ([]Event, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, tenant, at, kind, sql, duration_ms, outcome, error, reason, generation
		FROM erpctl.events WHERE tenant = $1 ORDER BY id DESC LIMIT $2`, slug.String(), limit)
	if err != nil {
		return nil, fmt.Errorf("read events of tenant %q: %w", slug, err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
	if err != nil {
		return nil, fmt.Errorf("read events of tenant %q: %w", slug, err)
	}
	return evs, nil
}

// DeleteTenant archives the tenant (see ArchiveTenant): nothing is dropped until PurgeTenant.
func (p *Plane) DeleteTenant(ctx context.Context, slug ident.Slug) error {
	_, err := p.ArchiveTenant(ctx, slug)
	return err
}

// tenantModules finds module in the generation tenant t has applied, where enabling or disabling
// it only adds or leaves tables (TargetApplied). A module that only the latest generation has
// takes the tenant there (TargetLatest), as erpctl reconcile SLUG would, unless a halted rollout
// holds the tenant where it is.
func (p *Plane) tenantModules(ctx context.Context, t *Tenant, module string) (*modules.Registry, Target, error) {
	var gen int64
	if t.Generation != nil {
		gen = *t.Generation
	}
	d, err := p.tenantDesired(ctx, nil, nullGen(gen))
	if err != nil {
		return nil, 0, err
	}
	_, err = d.reg.Closure([]string{module})
	if err == nil {
		return d.reg, TargetApplied, nil
	}
	if t.TargetGeneration == nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	latest, lerr := p.gens.Registry(ctx, nil, *t.TargetGeneration)
	if lerr != nil {
		return nil, 0, lerr
	}
	if _, lerr := latest.Closure([]string{module}); lerr != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalid, lerr)
	}
	if t.Reason == ReasonRolloutHalted {
		return nil, 0, fmt.Errorf("%w: the tenant is held at module generation %d by a halted rollout, and only generation %d has module %q: "+
			"resume or fix the rollout first (erpctl rollout list)", ErrInvalid, d.gen, *t.TargetGeneration, module)
	}
	return latest, TargetLatest, nil
}

// EnableModule adds a module (and what it depends on) to a tenant and reconciles the tenant, so
// that the tables exist when it returns.
func (p *Plane) EnableModule(ctx context.Context, slug ident.Slug, module string) (*Tenant, error) {
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("enable module %q for tenant %q: %w", module, slug, err)
	}
	_, target, err := p.tenantModules(ctx, t, module)
	if err != nil {
		return nil, fmt.Errorf("enable module for tenant %q: %w", slug, err)
	}
	if slices.Contains(t.Modules, module) {
		return t, nil
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET modules = array_append(modules, $2), updated_at = now()
			WHERE slug = $1 AND NOT follow_all AND NOT $2 = ANY(modules)`, slug.String(), module); err != nil {
			return err
		}
		return notifyTenant(ctx, tx, slug)
	})
	if err != nil {
		return nil, fmt.Errorf("enable module %q for tenant %q: %w", module, slug, err)
	}
	if _, err := p.Reconcile(ctx, slug, ReconcileOptions{Target: target}); err != nil {
		return nil, fmt.Errorf("enable module %q for tenant %q: %w", module, slug, err)
	}
	return p.GetTenant(ctx, slug)
}

// DisableModule removes a module from a tenant. Its tables and their rows stay in the schema,
// no longer managed: erpctl leaves them alone until the module is enabled again.
func (p *Plane) DisableModule(ctx context.Context, slug ident.Slug, module string) (*Tenant, error) {
	t, err := p.GetTenant(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("disable module %q for tenant %q: %w", module, slug, err)
	}
	reg, target, err := p.tenantModules(ctx, t, module)
	if err != nil {
		return nil, fmt.Errorf("disable module for tenant %q: %w", slug, err)
	}
	m, _ := reg.Module(module)
	if !slices.Contains(t.Modules, module) {
		return nil, fmt.Errorf("disable module %q for tenant %q: %w: the tenant does not have it", module, slug, ErrInvalid)
	}
	if deps := reg.Dependents(module, t.Modules); len(deps) > 0 {
		return nil, fmt.Errorf("disable module %q for tenant %q: %w: enabled modules depend on it: %s (disable those first)",
			module, slug, ErrInvalid, strings.Join(deps, ", "))
	}
	var keep []string
	for _, n := range t.Modules {
		if n != module {
			keep = append(keep, n)
		}
	}
	if keep == nil {
		keep = []string{}
	}
	err = p.inTx(ctx, func(tx *schema.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, tenantLockKey(slug)); err != nil {
			return err
		}
		// The module's tables leave the managed set, so no reconcile ever counts them as drops.
		if _, err := tx.ExecContext(ctx, withManagedSet(`(SELECT `+managedSQL+` - $3::text[] FROM erpctl.tenants t WHERE slug = $1)`)+
			`UPDATE erpctl.tenants SET follow_all = false, modules = $2, managed = '{}', managed_key = `+managedSetKey+`,
				updated_at = now() WHERE slug = $1`, slug.String(), keep, m.Tables); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, slug, "disable-module", "", 0, "applied", nil); err != nil {
			return err
		}
		return notifyTenant(ctx, tx, slug)
	})
	if err != nil {
		return nil, fmt.Errorf("disable module %q for tenant %q: %w", module, slug, err)
	}
	if _, err := p.Reconcile(ctx, slug, ReconcileOptions{Target: target}); err != nil {
		return nil, fmt.Errorf("disable module %q for tenant %q: %w", module, slug, err)
	}
	return p.GetTenant(ctx, slug)
}
