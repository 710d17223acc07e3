package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/erpctl/erpctl/controlplane/fair"
)

// UsageConfig tunes the usage service.
type UsageConfig struct {
	// Interval is how often the daemon publishes the usage it counted to the catalog (where
	// erpctl tenant top reads every daemon's), and reads the tenants' limits again. 0: 10s.
	Interval time.Duration
	// OnPublish is a test signal: called with each publication's usage.
	OnPublish func([]fair.Usage)
	// OnLimits is a test signal: called each time the limits were read.
	OnLimits func()
}

// Usage publishes the data API's per-tenant usage, and keeps the scheduler's per-tenant limits
// equal to the catalog's: at start, each Interval, and at once when the listener hears a change.
type Usage struct {
	runner
	store  *fair.Store
	sched  *fair.Scheduler
	cfg    UsageConfig
	log    *slog.Logger
	reload chan struct{}
}

// NewUsage returns the usage service of sched, over the catalog store.
func NewUsage(store *fair.Store, sched *fair.Scheduler, cfg UsageConfig, log *slog.Logger) *Usage {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	return &Usage{store: store, sched: sched, cfg: cfg, log: log, reload: make(chan struct{}, 1)}
}

// Reload asks for the limits to be read again at once (the listener's OnLimits).
func (u *Usage) Reload() {
	select {
	case u.reload <- struct{}{}:
	default:
	}
}

// Start reads the limits once, then runs until ctx ends; its last act is to publish what it
// counted since the last time.
func (u *Usage) Start(ctx context.Context) error {
	u.loadLimits(ctx)
	u.run(ctx, func(ctx context.Context) error {
		tick := time.NewTicker(u.cfg.Interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				u.publish(ctx)
				u.loadLimits(ctx)
			case <-u.reload:
				u.loadLimits(ctx)
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				u.publish(sctx)
				return nil
			}
		}
	})
	return nil
}

func (u *Usage) loadLimits(ctx context.Context) {
	o, err := u.store.Overrides(ctx)
	if err != nil {
		u.log.Warn("read tenant limits", "err", err)
		if o == nil {
			return // keep the last ones
		}
	}
	u.sched.SetOverrides(o)
	if u.cfg.OnLimits != nil {
		u.cfg.OnLimits()
	}
}

func (u *Usage) publish(ctx context.Context) {
	use := u.sched.Drain()
	if err := u.store.Publish(ctx, time.Now(), use); err != nil {
		u.log.Warn("publish tenant usage", "tenants", len(use), "err", err)
	}
	if u.cfg.OnPublish != nil {
		u.cfg.OnPublish(use)
	}
}
