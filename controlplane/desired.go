package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"

	"github.com/erpctl/erpctl/controlplane/generations"
	"github.com/erpctl/erpctl/controlplane/operators"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/modules"
	"github.com/erpctl/erpctl/schema"
)

// The desired state of every tenant is a module generation in the catalog (package generations),
// never the files a process loaded: every writer (a pass, reconcile SLUG, the data API's repair,
// debug tables --fix, tenant create) reads the generation it plans against inside the tenant's
// transaction, so two processes with different files cannot undo each other, and a tenant's
// applied generation never goes backwards.

// Target says which generation a reconcile brings a tenant to.
type Target int

const (
	// TargetLatest is the latest published generation: what passes, reconcile SLUG, tenant create
	// and module changes bring a tenant to.
	TargetLatest Target = iota
	// TargetApplied is the generation the tenant has applied (the latest when it has none yet):
	// it repairs drift made by hand without rolling anything out, so that a tenant held by a
	// rollout stays where it is. The data API's repair and debug tables --fix use it.
	TargetApplied
)

// desired is one generation's modules.
type desired struct {
	gen int64
	reg *modules.Registry
}

// errNoGeneration is returned where a catalog has no generation yet; Open publishes the first.
var errNoGeneration = errors.New("no module generation is published (erpctl module publish)")

// latestDesired returns the latest generation as q sees it (nil: the pool).
func (p *Plane) latestDesired(ctx context.Context, q generations.Querier) (desired, error) {
	n, _, err := p.gens.Latest(ctx, q)
	if err != nil {
		return desired{}, err
	}
	if n == 0 {
		return desired{}, errNoGeneration
	}
	return p.desiredAt(ctx, q, n)
}

// desiredAt returns generation n.
func (p *Plane) desiredAt(ctx context.Context, q generations.Querier, n int64) (desired, error) {
	reg, err := p.gens.Registry(ctx, q, n)
	if err != nil {
		return desired{}, err
	}
	return desired{gen: n, reg: reg}, nil
}

// Actor names this process in what it publishes and in the rollout actions it takes.
func (p *Plane) Actor() string { return p.actor }

// Generations is the catalog's module generations: history, sources and diffs.
func (p *Plane) Generations() *generations.Store { return p.gens }

// LatestModules returns the latest generation's number and modules: the fleet's desired state.
func (p *Plane) LatestModules(ctx context.Context) (int64, *modules.Registry, error) {
	d, err := p.latestDesired(ctx, nil)
	return d.gen, d.reg, err
}

// ModulesAt returns the modules of generation n.
func (p *Plane) ModulesAt(ctx context.Context, n int64) (*modules.Registry, error) {
	return p.gens.Registry(ctx, nil, n)
}

// FilesDiffer reports whether the module files this process loaded differ from the latest
// generation, and that generation's number: such a process follows the catalog, never its files.
func (p *Plane) FilesDiffer(ctx context.Context) (bool, int64, error) {
	n, hash, err := p.gens.Latest(ctx, nil)
	if err != nil {
		return false, 0, err
	}
	return hash != p.LocalModules().ContentHash(), n, nil
}

// PublishOptions describe a publish of the module files this process loaded.
type PublishOptions struct {
	Message string
}

// Publish records the module files this process loaded as the next generation, unless their
// content equals the latest generation's. Every daemon hears of it and rolls it out. Preview
// (PreviewPublish) first says what it changes.
func (p *Plane) Publish(ctx context.Context, o PublishOptions) (*generations.Published, error) {
	var out *generations.Published
	err := p.inTx(ctx, func(tx *schema.Tx) error {
		var err error
		out, err = p.gens.Publish(ctx, tx, p.LocalModules(), p.actor, o.Message)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PreviewPublish is what publishing the module files this process loaded would do to every
// tenant: a dry run against them, nothing applied or published.
func (p *Plane) PreviewPublish(ctx context.Context, o ReconcileOptions) (*Pass, error) {
	o.DryRun, o.Modules = true, p.LocalModules()
	return p.ReconcileAll(ctx, o)
}

// ensureGeneration publishes the first generation of a catalog that has none (a new database, or
// one an erpctl from before generations made) from the module files this process loaded, and
// records at it every tenant whose recorded desired state is that generation's: those the earlier
// erpctl last brought to these modules. The others get it from their next reconcile.
func (p *Plane) ensureGeneration(ctx context.Context) error {
	if n, _, err := p.gens.Latest(ctx, nil); err != nil || n > 0 {
		return err
	}
	return p.inTx(ctx, func(tx *schema.Tx) error {
		pub, err := p.gens.Publish(ctx, tx, p.LocalModules(), p.actor, "the modules erpctl found when it first kept generations")
		if err != nil || !pub.Changed {
			return err // another process published first
		}
		slugs, err := tenantsAt(ctx, tx, p.LocalModules())
		if err != nil {
			return fmt.Errorf("record tenants at generation %d: %w", pub.Generation, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE erpctl.tenants SET generation = $2 WHERE slug = ANY($1) AND generation IS NULL`,
			slugs, pub.Generation); err != nil {
			return fmt.Errorf("record tenants at generation %d: %w", pub.Generation, err)
		}
		return nil
	})
}

// tenantsAt lists the tenants whose last apply brought them to reg's desired state: not Blocked
// (a Blocked tenant records the state it could not reach), with the desired-state hash of their
// modules under reg.
func tenantsAt(ctx context.Context, q generations.Querier, reg *modules.Registry) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT slug, follow_all, modules, desired_hash FROM erpctl.tenants WHERE status <> 'Blocked'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	slugs := []string{}
	for rows.Next() {
		var slug, hash string
		var followAll bool
		var chosen []string
		if err := rows.Scan(&slug, &followAll, &stringArray{&chosen}, &hash); err != nil {
			return nil, err
		}
		if enabled, err := enabledModules(reg, followAll, chosen); err == nil && reg.Hash(enabled) == hash {
			slugs = append(slugs, slug)
		}
	}
	return slugs, rows.Err()
}

// defaultActor is user@host, for what this process publishes.
func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return name
	}
	return name + "@" + host
}

// nullGen is a generation as the catalog stores it: NULL for none.
func nullGen(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: n > 0} }

// passDesired is the generation a pass brings tenants to: the latest, or in a preview the
// modules it previews.
func (p *Plane) passDesired(ctx context.Context, o ReconcileOptions) (desired, error) {
	if o.Modules != nil {
		if !o.DryRun {
			return desired{}, errors.New("reconcile: only a dry run plans against module files; publish them first")
		}
		return desired{reg: o.Modules}, nil
	}
	return p.latestDesired(ctx, nil)
}

// recordCaughtUp records at d's generation the tenants a pass found as desired while recorded at
// an older one: nothing of their modules changed since. Never backwards: a tenant another
// process took further meanwhile keeps its generation.
func (p *Plane) recordCaughtUp(ctx context.Context, slugs []string, d desired) error {
	if len(slugs) == 0 || d.gen == 0 {
		return nil
	}
	_, err := p.db.ExecContext(ctx, `UPDATE erpctl.tenants SET generation = $2
		WHERE slug = ANY($1) AND status = 'Ready' AND (generation IS NULL OR generation < $2)`, slugs, d.gen)
	p.NoteWrite(err)
	if _, refused := WriteRefusal(err); err != nil && !refused {
		return fmt.Errorf("record tenants at generation %d: %w", d.gen, err)
	}
	return nil
}

// tenantDesired is the generation a tenant has applied, or the latest when it has none.
func (p *Plane) tenantDesired(ctx context.Context, q generations.Querier, applied sql.NullInt64) (desired, error) {
	if applied.Valid {
		return p.desiredAt(ctx, q, applied.Int64)
	}
	return p.latestDesired(ctx, q)
}

// Errors of a refused publish: its modules would drop or narrow what tenants have, or they could
// not be planned for some tenant (a module that cannot work there).
var (
	ErrDestructive = errors.New("destructive change")
	ErrUnplannable = errors.New("modules that cannot be planned")
)

// CheckedPublish is what a publish with its check did.
type CheckedPublish struct {
	generations.Published
	// Preview is the dry run of the modules against every tenant, nil when they equal the
	// latest generation's (nothing published, nothing to preview).
	Preview *Pass `json:"preview,omitempty"`
}

// PublishChecked publishes the module files this process loaded, as the explicit acts do (erpctl
// module publish, reconcile --publish, the daemon's --publish-modules): unless they equal the
// latest generation, it first previews them against every tenant (with o's workers) and refuses,
// wrapping ErrDestructive, modules that would drop or narrow anything, unless o.AllowDestructive,
// and, wrapping ErrUnplannable, modules that cannot be planned for some tenant.
// A rollback (content of an older generation) passes the same check as any change.
func (p *Plane) PublishChecked(ctx context.Context, msg string, o ReconcileOptions) (*CheckedPublish, error) {
	n, hash, err := p.gens.Latest(ctx, nil)
	if err != nil {
		return nil, err
	}
	if n > 0 && hash == p.LocalModules().ContentHash() {
		return &CheckedPublish{Published: generations.Published{Generation: n, Hash: hash}}, nil
	}
	preview, err := p.PreviewPublish(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("preview the modules: %w", err)
	}
	var failed []string
	firstErr := ""
	for _, r := range preview.Results {
		if r.Action == ActionFailed {
			failed = append(failed, r.Tenant)
			if firstErr == "" {
				firstErr = r.Error
			}
		}
	}
	if len(failed) > 0 {
		return &CheckedPublish{Preview: preview}, fmt.Errorf("publish modules: %w: they could not be planned for %d tenants (%s): %s",
			ErrUnplannable, len(failed), listSome(failed, 5), firstErr)
	}
	if !o.AllowDestructive {
		var hit []string
		for _, r := range preview.Results {
			if len(r.Destructive) > 0 {
				hit = append(hit, r.Tenant)
			}
		}
		if len(hit) > 0 {
			return &CheckedPublish{Preview: preview}, fmt.Errorf("publish modules: %w: they would drop or narrow what %d tenants have (%s); "+
				"erpctl plan shows the statements; publish with --allow-destructive to publish them anyway", ErrDestructive, len(hit), listSome(hit, 5))
		}
	}
	pub, err := p.Publish(ctx, PublishOptions{Message: msg})
	if err != nil {
		return nil, err
	}
	return &CheckedPublish{Published: *pub, Preview: preview}, nil
}

// listSome joins the first n of ss, saying how many more there are.
func listSome(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ss[:n], ", "), len(ss)-n)
}

// appliedHooks tell the parts of this process that cache what they know of tenants (the data
// API) that a tenant changed: made, brought to another generation, or its status changed.
type appliedHooks struct {
	mu  sync.Mutex
	fns []func(slug string)
}

func (h *appliedHooks) notify(slug ident.Slug) {
	h.mu.Lock()
	fns := h.fns
	h.mu.Unlock()
	for _, fn := range fns {
		fn(slug.String())
	}
}

// OnApplied calls fn, after the commit, with the slug of each tenant this process changes: so
// that a cache of this process serves a tenant at its new generation at once. Other processes'
// changes reach such caches when their entries expire.
func (p *Plane) OnApplied(fn func(slug string)) {
	p.applied.mu.Lock()
	defer p.applied.mu.Unlock()
	p.applied.fns = append(p.applied.fns, fn)
}

// BuiltinsDiffer reports whether the modules built into this erpctl differ from the built-ins of
// the latest generation (an erpctl of another version), and that generation's number. Modules
// from a modules dir, in the generation or not, are not compared.
func (p *Plane) BuiltinsDiffer(ctx context.Context) (bool, int64, error) {
	n, _, err := p.gens.Latest(ctx, nil)
	if err != nil || n == 0 {
		return false, n, err
	}
	g, err := p.gens.Get(ctx, n)
	if err != nil {
		return false, n, err
	}
	published := map[string]modules.Source{}
	for _, s := range g.Sources {
		published[s.Name] = s
	}
	for _, s := range p.LocalModules().Sources() {
		if pub, ok := published[s.Name]; s.Builtin && ok && pub.Builtin && pub.Text != s.Text {
			return true, n, nil
		}
	}
	return false, n, nil
}

// Operators is the console's credentials: operator tokens and browser sessions.
func (p *Plane) Operators() *operators.Store { return p.ops }
