package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/controlplane/generations"
)

// ListenerConfig says what the NOTIFY listener does with each channel's notifications.
type ListenerConfig struct {
	OnTenant     func() // a tenant was created or deleted, or its modules changed
	OnGeneration func() // a module generation was published
	OnToken      func() // a token was revoked
	// OnSchema is called with the slug of a tenant whose schema change tracking saw change.
	OnSchema func(slug string)
	OnLimits func() // a tenant's limits changed (erpctl tenant limits)
	// OnConnected is called with true once the listener listens on every channel, and with
	// false when it stops (its connection lost): while false, notifications go unheard.
	OnConnected func(listening bool)
	// MaxRetryDelay caps the wait between reconnects after the connection was lost; 0: 10s.
	MaxRetryDelay time.Duration
}

// Listener holds one connection that LISTENs on the control plane's channels, reconnecting after
// errors. Its connection never goes back to the pool: it is bound to its session.
type Listener struct {
	runner
	pool *pgxpool.Pool
	cfg  ListenerConfig
	log  *slog.Logger
}

// NewListener returns a listener on pool's database.
func NewListener(pool *pgxpool.Pool, cfg ListenerConfig, log *slog.Logger) *Listener {
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = 10 * time.Second
	}
	return &Listener{pool: pool, cfg: cfg, log: log}
}

// Start starts listening in the background; a database that cannot be reached yet is retried.
func (l *Listener) Start(ctx context.Context) error {
	l.run(ctx, l.listen)
	return nil
}

func (l *Listener) listen(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		err := l.listenOnce(ctx, first)
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("change listener lost its connection; retrying", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		delay = min(delay*2, l.cfg.MaxRetryDelay)
	}
	return nil
}

// listenOnce listens until the connection fails. After a reconnect it reports a tenant change:
// notifications sent while it was away are lost, and a full pass finds what they said.
func (l *Listener) listenOnce(ctx context.Context, first bool) error {
	pooled, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range []string{controlplane.NotifyTenants, controlplane.NotifyTokens, controlplane.NotifySchemas, generations.Notify, fair.NotifyLimits} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	if l.cfg.OnConnected != nil {
		l.cfg.OnConnected(true)
		defer l.cfg.OnConnected(false)
	}
	if !first {
		call(l.cfg.OnTenant)
		call(l.cfg.OnGeneration)
		call(l.cfg.OnToken)
		call(l.cfg.OnLimits)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case controlplane.NotifyTenants:
			call(l.cfg.OnTenant)
		case controlplane.NotifyTokens:
			call(l.cfg.OnToken)
		case fair.NotifyLimits:
			call(l.cfg.OnLimits)
		case generations.Notify:
			call(l.cfg.OnGeneration)
		case controlplane.NotifySchemas:
			if l.cfg.OnSchema != nil {
				l.cfg.OnSchema(n.Payload)
			}
		}
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}
