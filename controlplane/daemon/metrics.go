package daemon

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
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
