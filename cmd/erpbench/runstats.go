package main

import (
	"context"
	"fmt"
	"math"
	"runtime/metrics"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/internal/ident"
)

// runStats is what the erpbench process saw during one wrk run, to tell where a latency tail
// comes from: waiting for a pool connection, GC pauses, or goroutines waiting for a CPU.
type runStats struct {
	acquires, emptyAcquires int64         // pool acquires, and those that had to wait for a connection
	acquireWait             time.Duration // total time spent acquiring
	gcs                     uint64
	gcPauseP99, gcPauseMax  float64 // seconds, stop-the-world pauses
	schedP99                float64 // seconds a runnable goroutine waited for a CPU, p99
	server                  serverCounters
	serverOK                bool
}

// serverCounters are the database server's counters that a write's tail can come from:
// checkpoints, the WAL's flushes, and autovacuum or autoanalyze of the table written to.
type serverCounters struct {
	checkpoints, walSyncs, autovacuums int64
}

// readServerCounters reads them; false when the server does not have them (pg_stat_bgwriter's
// checkpoint columns moved in PostgreSQL 17).
func (b *bench) readServerCounters(ctx context.Context, slug string) (serverCounters, bool) {
	var c serverCounters
	err := b.db.QueryRowContext(ctx, `SELECT
		(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
		(SELECT wal_sync FROM pg_stat_wal),
		(SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_user_tables
		  WHERE schemaname = $1 AND relname = 'products')`, ident.SchemaName(slug)).Scan(&c.checkpoints, &c.walSyncs, &c.autovacuums)
	return c, err == nil
}

var runMetricNames = []string{"/gc/cycles/total:gc-cycles", "/sched/pauses/total/gc:seconds", "/sched/latencies:seconds"}

type runSnapshot struct {
	pool    *pgxpool.Stat
	samples []metrics.Sample
}

// snapshotRun reads the process's counters; pool may be nil.
func snapshotRun(pool *pgxpool.Pool) runSnapshot {
	s := runSnapshot{samples: make([]metrics.Sample, len(runMetricNames))}
	for i, n := range runMetricNames {
		s.samples[i].Name = n
	}
	metrics.Read(s.samples)
	if pool != nil {
		s.pool = pool.Stat()
	}
	return s
}

// since is what happened between a and b (b later).
func (b runSnapshot) since(a runSnapshot) runStats {
	var r runStats
	if a.pool != nil && b.pool != nil {
		r.acquires = b.pool.AcquireCount() - a.pool.AcquireCount()
		r.emptyAcquires = b.pool.EmptyAcquireCount() - a.pool.EmptyAcquireCount()
		r.acquireWait = b.pool.AcquireDuration() - a.pool.AcquireDuration()
	}
	r.gcs = b.samples[0].Value.Uint64() - a.samples[0].Value.Uint64()
	pauses := histDiff(a.samples[1].Value.Float64Histogram(), b.samples[1].Value.Float64Histogram())
	r.gcPauseP99, r.gcPauseMax = pauses.quantile(0.99), pauses.quantile(1)
	r.schedP99 = histDiff(a.samples[2].Value.Float64Histogram(), b.samples[2].Value.Float64Histogram()).quantile(0.99)
	return r
}

func (r runStats) String() string {
	s := fmt.Sprintf("%d GCs, GC pauses p99 %.2f ms, max %.2f ms; goroutines waiting for a CPU p99 %.2f ms",
		r.gcs, r.gcPauseP99*1000, r.gcPauseMax*1000, r.schedP99*1000)
	if r.serverOK {
		s += fmt.Sprintf("; server: %d checkpoints, %d WAL flushes, %d autovacuums/autoanalyzes of the table",
			r.server.checkpoints, r.server.walSyncs, r.server.autovacuums)
	}
	if r.acquires > 0 {
		s += fmt.Sprintf("; %.1f%% of pool acquires waited for a connection, %.0f µs mean acquire",
			float64(r.emptyAcquires)/float64(r.acquires)*100, float64(r.acquireWait.Microseconds())/float64(r.acquires))
	}
	return s
}

type hist struct {
	counts  []uint64
	buckets []float64
}

func histDiff(a, b *metrics.Float64Histogram) hist {
	h := hist{counts: make([]uint64, len(b.Counts)), buckets: b.Buckets}
	for i := range b.Counts {
		h.counts[i] = b.Counts[i] - a.Counts[i]
	}
	return h
}

// quantile is the upper bound of the bucket holding quantile q (the last finite bound for the
// open-ended top bucket); 0 for an empty histogram.
func (h hist) quantile(q float64) float64 {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want && c > 0 {
			hi := h.buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.buckets[i]
			}
			return hi
		}
	}
	return h.buckets[len(h.buckets)-2]
}
