package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DaemonOptions configure RunDaemon.
type DaemonOptions struct {
	Interval         time.Duration // between passes; 0: 30s
	Listen           string        // HTTP address; "" serves nothing
	Workers          int
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	Logger           *slog.Logger
	// Test signals: called after each pass, and once the HTTP server listens.
	OnPass      func(*Pass)
	OnListening func(addr net.Addr)
}

// daemonMetrics are one daemon's Prometheus metrics, in a registry of its own.
type daemonMetrics struct {
	reg       *prometheus.Registry
	passes    prometheus.Counter
	passTime  prometheus.Histogram
	applyTime prometheus.Histogram
	failures  prometheus.Counter
	tenants   *prometheus.GaugeVec
	modules   prometheus.Gauge
}

func newDaemonMetrics() *daemonMetrics {
	m := &daemonMetrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "erpctl_reconcile_passes_total", Help: "Reconcile passes over every tenant."}),
		passTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "erpctl_reconcile_pass_duration_seconds", Help: "Duration of a reconcile pass.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "erpctl_apply_duration_seconds", Help: "Duration of one tenant's apply transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "erpctl_reconcile_failures_total", Help: "Tenant reconciles that failed."}),
		tenants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "erpctl_tenants", Help: "Tenants by status after the last pass."}, []string{"status"}),
		modules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "erpctl_modules_healthy", Help: "1 when the module files last loaded cleanly, 0 when the last good set is in use."}),
	}
	m.reg.MustRegister(m.passes, m.passTime, m.applyTime, m.failures, m.tenants, m.modules,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *daemonMetrics) observe(pass *Pass) {
	m.passes.Inc()
	m.passTime.Observe(pass.Duration.Seconds())
	counts := map[string]float64{StatusPending: 0, StatusReady: 0, StatusBlocked: 0, StatusFailed: 0}
	for _, r := range pass.Results {
		if r.Status != "" {
			counts[r.Status]++
		}
		switch r.Action {
		case ActionApplied:
			m.applyTime.Observe(r.Duration.Seconds())
		case ActionFailed:
			m.failures.Inc()
		}
	}
	for s, n := range counts {
		m.tenants.WithLabelValues(s).Set(n)
	}
}

// RunDaemon reconciles every tenant each Interval and at once when a tenant is created or its
// modules change, and serves /healthz, /readyz, /metrics and the data API, until ctx ends.
// Several daemons may run against one database: tenant advisory locks keep them apart.
func (p *Plane) RunDaemon(ctx context.Context, o DaemonOptions) error {
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	log := o.Logger
	if log == nil {
		log = p.log
	}
	m := newDaemonMetrics()
	var (
		passed atomic.Bool // a pass has completed
		dbErr  atomic.Value
	)
	dbErr.Store("")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)

	if o.Listen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "ok")
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			var problems []string
			if !passed.Load() {
				problems = append(problems, "first reconcile pass not finished")
			}
			if err := p.ModulesError(); err != nil {
				problems = append(problems, "modules: "+err.Error()+" (serving the last good modules)")
			}
			if s := dbErr.Load().(string); s != "" {
				problems = append(problems, "database: "+s)
			}
			if len(problems) > 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				for _, s := range problems {
					fmt.Fprintln(w, "degraded:", s)
				}
				return
			}
			fmt.Fprintln(w, "ok")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
		mux.Handle("/", p.APIHandler(APIOptions{Logger: log}))
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return fmt.Errorf("daemon: listen on %s: %w", o.Listen, err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info("serving", "addr", ln.Addr().String())
		if o.OnListening != nil {
			o.OnListening(ln.Addr())
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("daemon: serve http: %w", err)
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			srv.Shutdown(sctx)
		}()
	}

	wake := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.listen(ctx, log, wake)
	}()

	ropts := ReconcileOptions{Workers: o.Workers, LockTimeout: o.LockTimeout, StatementTimeout: o.StatementTimeout}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-wake:
			// Let a burst of changes settle into one pass.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		if err := p.ReloadModules(); err != nil {
			m.modules.Set(0)
			log.Error("module files are invalid; keeping the last good modules", "err", err)
		} else {
			m.modules.Set(1)
		}
		pass, err := p.ReconcileAll(ctx, ropts)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			dbErr.Store(err.Error())
			log.Error("reconcile pass failed", "err", err)
		} else {
			dbErr.Store("")
			passed.Store(true)
			m.observe(pass)
			level := slog.LevelDebug
			if len(pass.Results) != pass.Counts[ActionUnchanged] {
				level = slog.LevelInfo
			}
			log.Log(ctx, level, "reconcile pass", "tenants", len(pass.Results), "unchanged", pass.Counts[ActionUnchanged],
				"applied", pass.Counts[ActionApplied], "blocked", pass.Counts[ActionBlocked], "failed", pass.Counts[ActionFailed],
				"skipped", pass.Counts[ActionSkipped], "duration", pass.Duration.Round(time.Millisecond))
			for _, r := range pass.Results {
				if r.Action == ActionFailed || r.Action == ActionBlocked {
					log.Warn("tenant not reconciled", "tenant", r.Tenant, "action", r.Action, "err", r.Error)
				}
			}
			if o.OnPass != nil {
				o.OnPass(pass)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(o.Interval)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	log.Info("daemon stopped")
	return nil
}

// listen wakes the loop on every notification of a tenant change, reconnecting after errors.
func (p *Plane) listen(ctx context.Context, log *slog.Logger, wake chan<- struct{}) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		log.Warn("tenant change listener lost its connection; retrying", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (p *Plane) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	pooled, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection holds a LISTEN: it never goes back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{notifyChannel}.Sanitize()); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}
