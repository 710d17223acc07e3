package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/erpctl/erpctl/controlplane"
)

// WriteWatchConfig tunes the write watch.
type WriteWatchConfig struct {
	Every time.Duration // between probes while the database refuses writes; 0: 1s
	// OnBack is called when the database takes writes again after refusing them.
	OnBack func()
}

func (c WriteWatchConfig) withDefaults() WriteWatchConfig {
	if c.Every <= 0 {
		c.Every = time.Second
	}
	return c
}

// WriteWatch probes, while the database refuses writes (a full disk, read-only), whether it
// takes them again, with a write that needs new space (controlplane.Plane.ProbeWrites). Until a
// probe commits, /readyz stays degraded; when one does, OnBack asks the loop to retry what the
// refusal stopped, without waiting for the interval or the next full check.
type WriteWatch struct {
	runner
	p   *controlplane.Plane
	cfg WriteWatchConfig
	log *slog.Logger
}

// NewWriteWatch returns the write watch over p.
func NewWriteWatch(p *controlplane.Plane, cfg WriteWatchConfig, log *slog.Logger) *WriteWatch {
	return &WriteWatch{p: p, cfg: cfg.withDefaults(), log: log}
}

// Start starts the watch.
func (w *WriteWatch) Start(ctx context.Context) error {
	w.run(ctx, w.watch)
	return nil
}

func (w *WriteWatch) watch(ctx context.Context) error {
	tick := time.NewTicker(w.cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if w.p.WritesRefused() == "" {
			continue
		}
		back, err := w.p.ProbeWrites(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Debug("the database still refuses writes", "err", err)
		}
		if back && w.cfg.OnBack != nil {
			w.cfg.OnBack()
		}
	}
}
