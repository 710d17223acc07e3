package daemon

import (
	"context"
	"sync"

	"github.com/erpctl/erpctl/internal/ident"
)

// pendingChanges collects, between passes, what woke the loop: tenants whose schemas changed
// (an incremental pass) or a request for a full pass.
type pendingChanges struct {
	mu    sync.Mutex
	full  bool
	slugs map[string]struct{}
}

func (c *pendingChanges) add(slug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slugs == nil {
		c.slugs = map[string]struct{}{}
	}
	// A full pass covers every tenant; a flood of changes need not be kept one by one.
	if len(c.slugs) < 100_000 {
		c.slugs[slug] = struct{}{}
	} else {
		c.full = true
	}
}

func (c *pendingChanges) addFull() {
	c.mu.Lock()
	c.full = true
	c.mu.Unlock()
}

// restore puts back what a pass took and did not do: a full pass, or the tenants it was
// notified of and those it claimed from change tracking.
func (c *pendingChanges) restore(full bool, notified []string, claimed []ident.Slug) {
	if full {
		c.addFull()
	}
	for _, s := range notified {
		c.add(s)
	}
	for _, s := range claimed {
		c.add(s.String())
	}
}

// take returns what is pending and forgets it.
func (c *pendingChanges) take() (full bool, slugs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.slugs {
		slugs = append(slugs, s)
	}
	full, c.full = c.full, false
	clear(c.slugs)
	return full, slugs
}

// incrementalSet is the tenants of an incremental pass: those notified and those change tracking
// recorded, once each; payloads that are no slug are dropped. Never nil: an empty set is a pass
// over no tenant, not over every tenant.
func incrementalSet(notified []string, recorded []ident.Slug) []ident.Slug {
	seen := map[string]bool{}
	out := []ident.Slug{}
	for _, s := range recorded {
		if !seen[s.String()] {
			seen[s.String()] = true
			out = append(out, s)
		}
	}
	for _, s := range notified {
		slug, err := ident.ParseSlug(s)
		if err == nil && !seen[s] {
			seen[s] = true
			out = append(out, slug)
		}
	}
	return out
}

// startTracking installs change tracking when it is asked for. Without a role that may create
// event triggers it says so once, and the interval's full pass stays the only check of drift made
// by hand.
func (l *Loop) startTracking(ctx context.Context) bool {
	if !l.cfg.TrackChanges {
		return false
	}
	ok, err := l.p.EnableChangeTracking(ctx)
	switch {
	case err != nil:
		l.log.Error("change tracking is off: installing it failed; drift made by hand is found by the full pass every --interval", "err", err)
	case !ok:
		l.log.Warn("change tracking is off: creating event triggers needs a superuser; drift made by hand is found by the full pass every --interval")
	default:
		l.log.Info("change tracking is on: DDL on tenant schemas wakes an incremental pass", "full_check", l.cfg.FullCheck.String())
	}
	return ok && err == nil
}
