package daemon

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/controlplane/fair"
	"github.com/erpctl/erpctl/controlplane/rollouts"
)

// metrics are one daemon's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	passes    prometheus.Counter
	passTime  prometheus.Histogram
	applyTime prometheus.Histogram
	failures  prometheus.Counter
	tenants   *prometheus.GaugeVec
	modules   prometheus.Gauge
	rollouts  *prometheus.GaugeVec
	rolled    *prometheus.GaugeVec
	gen       prometheus.Gauge
	byGen     *prometheus.GaugeVec
	stages    *prometheus.GaugeVec
	stage     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
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
	m.rollouts = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "erpctl_rollouts", Help: "Staged rollouts of changes in the last pass, by state (running, halted, done)."}, []string{"state"})
	m.rolled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "erpctl_rollout_tenants", Help: "Tenants of the last pass's rollouts: applied, failed, held (by a halted rollout), pending."}, []string{"state"})
	m.gen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "erpctl_generation", Help: "The module generation the last pass brought tenants to: the latest published."})
	m.byGen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "erpctl_tenants_by_generation", Help: "Tenants by the module generation they have applied, after the last full pass: " +
			"the newest generations each, older ones together as \"older\", tenants at none as \"none\"."}, []string{"generation"})
	m.stages = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "erpctl_rollout_stage_tenants", Help: "The latest rollout's tenants by stage: tenants, applied, failed, held."}, []string{"stage", "state"})
	m.stage = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "erpctl_rollout_stage", Help: "1 for the stage the latest rollout stands at, by rollout state (none when it is done)."}, []string{"stage", "state"})
	m.reg.MustRegister(m.passes, m.passTime, m.applyTime, m.failures, m.tenants, m.modules, m.rollouts, m.rolled, m.gen, m.byGen, m.stages, m.stage,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// observe records a pass; the tenants by status only after a full one, which saw them all.
func (m *metrics) observe(pass *controlplane.Pass, full bool) {
	m.passes.Inc()
	m.passTime.Observe(pass.Duration.Seconds())
	counts := map[string]float64{controlplane.StatusPending: 0, controlplane.StatusReady: 0,
		controlplane.StatusBlocked: 0, controlplane.StatusFailed: 0}
	for _, r := range pass.Results {
		if r.Status != "" {
			counts[r.Status]++
		}
		switch r.Action {
		case controlplane.ActionApplied:
			m.applyTime.Observe(r.Duration.Seconds())
		case controlplane.ActionFailed:
			m.failures.Inc()
		}
	}
	if !full {
		return
	}
	for s, n := range counts {
		m.tenants.WithLabelValues(s).Set(n)
	}
	m.observeRollouts(pass)
}

// observeRollouts sets where the last pass left its rollouts. Held tenants of a rollout halted
// in an earlier pass count too: the pass holds them again.
func (m *metrics) observeRollouts(pass *controlplane.Pass) {
	states := map[string]float64{controlplane.RolloutRunning: 0, controlplane.RolloutHalted: 0, controlplane.RolloutDone: 0}
	tenants := map[string]float64{"applied": 0, "failed": 0, "held": float64(pass.Counts[controlplane.ActionHeld]), "pending": 0}
	for _, r := range pass.Rollouts {
		states[r.State]++
		tenants["applied"] += float64(r.Applied)
		tenants["failed"] += float64(r.Failed)
		if r.State == controlplane.RolloutRunning {
			tenants["pending"] += float64(r.Tenants - r.Applied - r.Failed)
		}
	}
	for s, n := range states {
		m.rollouts.WithLabelValues(s).Set(n)
	}
	for s, n := range tenants {
		m.rolled.WithLabelValues(s).Set(n)
	}
}

// cacheCollector reports the cache sizes at each scrape: the data API's and the reconciler's
// normalised desired states.
type cacheCollector struct {
	stats         func() []api.CacheStat
	entries, caps *prometheus.Desc
}

func newCacheCollector(stats func() []api.CacheStat) *cacheCollector {
	return &cacheCollector{
		stats: stats,
		entries: prometheus.NewDesc("erpctl_cache_entries", "Entries in each of erpctl's caches.",
			[]string{"cache"}, nil),
		caps: prometheus.NewDesc("erpctl_cache_capacity", "The most entries each of erpctl's caches holds.",
			[]string{"cache"}, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.caps }

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Len), s.Name)
		ch <- prometheus.MustNewConstMetric(c.caps, prometheus.GaugeValue, float64(s.Cap), s.Name)
	}
}

// connCollector reports the HTTP server's connections at each scrape.
type connCollector struct {
	counts func() (open, idle int)
	desc   *prometheus.Desc
}

func newConnCollector(counts func() (open, idle int)) *connCollector {
	return &connCollector{counts: counts, desc: prometheus.NewDesc("erpctl_http_connections",
		"Connections the HTTP server holds open, by state: busy or idle (kept alive between requests, or silent since accepted).",
		[]string{"state"}, nil)}
}

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	open, idle := c.counts()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(open-idle), "busy")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(idle), "idle")
}

// topTenants is how many tenants erpctl_api_top_tenant reports: the metric's series stay this
// few (times its measures) whatever the number of tenants.
const topTenants = 10

// fairCollector reports the data API's scheduler at each scrape: totals over every tenant, what
// it holds now, and the busiest tenants of its last usage interval.
type fairCollector struct {
	s                                              *fair.Scheduler
	requests, errors, throttled, dbTime, rows, top *prometheus.Desc
	slots, slotsCap, waiting, mem, memCap, tenants *prometheus.Desc
}

func newFairCollector(s *fair.Scheduler) *fairCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &fairCollector{s: s,
		requests:  d("erpctl_api_requests_total", "Data API requests with a valid token, every tenant's."),
		errors:    d("erpctl_api_errors_total", "Data API requests answered with a 5xx."),
		throttled: d("erpctl_api_throttled_total", "Data API requests answered 429, by reason: rate, concurrency (the tenant's limits), queue, wait (its share of the pool).", "reason"),
		dbTime:    d("erpctl_api_db_seconds_total", "Time data API requests held a database connection."),
		rows:      d("erpctl_api_rows_total", "Rows the data API returned."),
		top: d("erpctl_api_top_tenant", fmt.Sprintf("The %d tenants with the most requests over the last usage interval: their use per second, by measure "+
			"(requests, errors, throttled, db_seconds, rows).", topTenants), "tenant", "measure"),
		slots:    d("erpctl_api_slots_in_use", "Data API requests running statements now."),
		slotsCap: d("erpctl_api_slots", "Data API requests that may run statements at once: the pool's size."),
		waiting:  d("erpctl_api_waiting_requests", "Data API requests waiting for their tenant's share of the pool."),
		mem:      d("erpctl_api_answer_bytes", "Bytes of answers read from the database and not yet taken by their clients."),
		memCap:   d("erpctl_api_answer_bytes_limit", "The most bytes of answers the daemon holds."),
		tenants:  d("erpctl_api_tenants_tracked", "Tenants the scheduler holds state for: active, or rate-limited, in the last usage interval."),
	}
}

func (c *fairCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.errors, c.throttled, c.dbTime, c.rows, c.top, c.slots, c.slotsCap, c.waiting, c.mem, c.memCap, c.tenants} {
		ch <- d
	}
}

func (c *fairCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.requests, float64(st.Total.Requests))
	counter(c.errors, float64(st.Total.Errors))
	for _, r := range []string{"rate", "concurrency", "queue", "wait"} {
		counter(c.throttled, float64(st.Throttled[r]), r)
	}
	counter(c.dbTime, st.Total.DBTime.Seconds())
	counter(c.rows, float64(st.Total.Rows))
	gauge(c.slots, float64(st.SlotsInUse))
	gauge(c.slotsCap, float64(st.Slots))
	gauge(c.waiting, float64(st.Waiting))
	gauge(c.mem, float64(st.MemInUse))
	gauge(c.memCap, float64(st.Memory))
	gauge(c.tenants, float64(st.Tenants))
	top, d := c.s.Top(topTenants)
	if d <= 0 {
		return
	}
	sec := d.Seconds()
	for _, u := range top {
		gauge(c.top, float64(u.Requests)/sec, u.Tenant, "requests")
		gauge(c.top, float64(u.Errors)/sec, u.Tenant, "errors")
		gauge(c.top, float64(u.Throttled)/sec, u.Tenant, "throttled")
		gauge(c.top, u.DBTime.Seconds()/sec, u.Tenant, "db_seconds")
		gauge(c.top, float64(u.Rows)/sec, u.Tenant, "rows")
	}
}

// generationSeries is how many generations get a series of their own in
// erpctl_tenants_by_generation: the label's values stay bounded however many are published.
const generationSeries = 8

// observeGenerations records the latest generation and how many tenants are at each.
func (m *metrics) observeGenerations(latest int64, byGen map[int64]int) {
	m.gen.Set(float64(latest))
	m.byGen.Reset()
	var older, none float64
	for g, n := range byGen {
		switch {
		case g == 0:
			none += float64(n)
		case g > latest-generationSeries:
			m.byGen.WithLabelValues(strconv.FormatInt(g, 10)).Set(float64(n))
		default:
			older += float64(n)
		}
	}
	m.byGen.WithLabelValues("older").Set(older)
	m.byGen.WithLabelValues("none").Set(none)
}

// observeStages records the latest rollout's stages: a series per stage and count, so bounded by
// the deployment's stages, not by the tenants.
func (m *metrics) observeStages(r *rollouts.Rollout) {
	m.stages.Reset()
	m.stage.Reset()
	if r == nil {
		return
	}
	for _, s := range r.Stages {
		for state, n := range map[string]int{"tenants": s.Tenants, "applied": s.Applied, "failed": s.Failed, "held": s.Held} {
			m.stages.WithLabelValues(s.Name, state).Set(float64(n))
		}
	}
	if r.Stage != "" {
		m.stage.WithLabelValues(r.Stage, r.State).Set(1)
	}
}
