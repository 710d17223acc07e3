// Package daemon runs `erpctl daemon`: the reconcile loop, the NOTIFY listener, the HTTP server
// (health, readiness, metrics and the data API) and the write watch. Each is a service of its own with a Config and
// its defaults and the same shape: Start returns once it runs, and it stops when the context given
// to Start ends. Several daemons may run against one database: the reconciler's tenant locks keep
// them apart, so there is no coordination between daemons here.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/fair"
)

// Config is the whole daemon's.
type Config struct {
	Loop     LoopConfig
	Server   ServerConfig
	Listener ListenerConfig
	Usage    UsageConfig
	Debug    DebugConfig
	Console  ConsoleConfig
	Logger   *slog.Logger // nil: discard
}

// service is one part of the daemon.
type service interface {
	// Start begins the service and returns once it runs, or with why it could not start. The
	// service runs until ctx ends.
	Start(ctx context.Context) error
	// Done is closed once the service has stopped; Err then says why, nil after ctx ended.
	Done() <-chan struct{}
	Err() error
}

// runner is the start/stop base of every service: run starts fn on its own goroutine and
// records how it ended.
type runner struct {
	done chan struct{}
	err  error
}

func (r *runner) run(ctx context.Context, fn func(ctx context.Context) error) {
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			r.err = err
		}
	}()
}

func (r *runner) Done() <-chan struct{} { return r.done }
func (r *runner) Err() error            { return r.err }

// task is a service that is one function running until ctx ends.
type task struct {
	runner
	fn func(ctx context.Context) error
}

func (t *task) Start(ctx context.Context) error {
	t.run(ctx, t.fn)
	return nil
}

// Run starts every service of the daemon and runs until ctx ends or one of them fails; then it
// stops them all and waits for them.
func Run(ctx context.Context, p *controlplane.Plane, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := newMetrics()
	loop := NewLoop(p, cfg.Loop, log, m)
	var services []service
	lcfg := cfg.Listener
	lcfg.OnTenant = chain(loop.Wake, lcfg.OnTenant)
	lcfg.OnGeneration = chain(loop.Wake, lcfg.OnGeneration)
	if onSchema := lcfg.OnSchema; onSchema != nil {
		lcfg.OnSchema = func(slug string) { loop.WakeFor(slug); onSchema(slug) }
	} else {
		lcfg.OnSchema = loop.WakeFor
	}
	var apiCaches func() []api.CacheStat
	m.reg.MustRegister(newCacheCollector(func() []api.CacheStat {
		n, capacity := p.NormalizedStates()
		stats := []api.CacheStat{{Name: "normalized_states", Len: n, Cap: capacity}}
		if apiCaches != nil {
			stats = append(stats, apiCaches()...)
		}
		return stats
	}))
	if cfg.Server.Listen != "" {
		db, err := p.APIDB(ctx, controlplane.APIOptions{StatementTimeout: cfg.Server.StatementTimeout, ConnTenants: cfg.Server.ConnTenants})
		if err != nil {
			return err
		}
		warnAPIFiles(ctx, p, cfg.Server.ConnTenants, log)
		var sched *fair.Scheduler
		if !cfg.Server.NoFairness {
			fcfg := cfg.Server.Fair
			fcfg.Slots = int(p.Pool().Config().MaxConns) // the data API's pool is the control plane's size
			sched = fair.New(fcfg)
		}
		h := api.New(api.Config{Plane: p, DB: db, Logger: log, Caches: cfg.Server.Caches,
			PublicURL: cfg.Server.PublicURL, AllowedHosts: cfg.Server.AllowedHosts, CORSOrigins: cfg.Server.CORSOrigins,
			Fair: sched, NoFairness: cfg.Server.NoFairness})
		apiCaches = h.CacheStats
		lcfg.OnToken = chain(h.ForgetTokens, lcfg.OnToken)
		next := lcfg.OnConnected // the caller's, kept as chain keeps the others
		lcfg.OnConnected = func(listening bool) {
			h.WatchTokens(listening)
			if next != nil {
				next(listening)
			}
		}
		srv := NewServer(cfg.Server, log, h, m.handler(), loop.health(p))
		m.reg.MustRegister(newConnCollector(srv.connCounts))
		services = append(services, srv, &task{fn: h.RevalidateTenants})
		if sched != nil {
			m.reg.MustRegister(newFairCollector(sched))
			usage := NewUsage(fair.NewStore(p.Pool()), sched, cfg.Usage, log)
			lcfg.OnLimits = chain(usage.Reload, lcfg.OnLimits)
			services = append(services, usage)
		}
	}
	if cfg.Debug.Listen != "" {
		services = append(services, NewDebugServer(cfg.Debug, log))
	}
	if cfg.Console.Listen != "" {
		cs, err := NewConsoleServer(cfg.Console, log, p, loop.consoleHealth(p))
		if err != nil {
			return err
		}
		services = append(services, cs)
	}
	services = append(services, NewListener(p.SessionPool(), lcfg, log), loop,
		NewWriteWatch(p, WriteWatchConfig{OnBack: loop.Retry}, log))

	var started []service
	var err error
	for _, s := range services {
		if err = s.Start(ctx); err != nil {
			break
		}
		started = append(started, s)
	}
	if err == nil {
		err = waitAny(ctx, started)
	}
	cancel()
	for _, s := range started {
		<-s.Done()
		if serr := s.Err(); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return err
	}
	log.Info("daemon stopped")
	return nil
}

// waitAny waits for ctx to end or for a service to stop on its own, and returns why it did.
func waitAny(ctx context.Context, services []service) error {
	stopped := make(chan service, len(services))
	for _, s := range services {
		go func() {
			select {
			case <-s.Done():
				stopped <- s
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case s := <-stopped:
		if err := s.Err(); err != nil {
			return err
		}
		// Stopped as asked: ctx ended before this select (during the services' start, say),
		// both cases were ready, and select picks either.
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("daemon: a service stopped unexpectedly")
	}
}

// chain calls the daemon's own a, then b (a test signal), which may be nil.
func chain(a, b func()) func() {
	if b == nil {
		return a
	}
	return func() { a(); b() }
}

// warnAPIFiles warns, at start, when the server would make the data API's backends close and
// reopen their tenants' table files: a server of the operator's own keeps PostgreSQL's default of
// 1,000 unless told (the embedded one is started with room).
func warnAPIFiles(ctx context.Context, p *controlplane.Plane, connTenants int, log *slog.Logger) {
	f, err := p.APIFiles(ctx, connTenants)
	if err != nil {
		log.Warn("could not compare the server's open files with the data API's tenants", "err", err)
		return
	}
	if f.Short() {
		log.Warn(fmt.Sprintf("the server's max_files_per_process is %d, below the about %d files a data API connection keeps open for the %d tenants it serves: "+
			"its statements would close and reopen table files; raise it (see Open files in docs/operations.md)", f.Setting, f.Need, f.TenantsPerConn),
			"max_files_per_process", f.Setting, "files_needed", f.Need, "tenants_per_connection", f.TenantsPerConn)
	}
}
