package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/daemon"
	"github.com/erpctl/erpctl/controlplane/fair"
)

// fairRounds is how many times GET one is loaded with the fairness bookkeeping and without it,
// alternately.
const fairRounds = 3

// fairCost measures what the fairness bookkeeping (admission, a slot of the tenant's share,
// usage) costs GET one: the in-process daemon without it (daemon.ServerConfig's NoFairness), with
// it and a tenant share of the whole pool (the bookkeeping alone), and with it as shipped (one
// tenant alone may use a quarter of the pool), loaded by wrk in turns, without the access log.
func (b *bench) fairCost(ctx context.Context) ([]result, error) {
	names := []string{"API GET one: fairness bookkeeping", "API GET one: one tenant alone at its share"}
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	wrk, err := findWrk(ctx, b)
	if err != nil {
		return skipped(names, len(b.slugs), err.Error()), nil
	}
	slug, id, token, err := b.getOneTarget(ctx, "erpbench-fair")
	if err != nil {
		return nil, err
	}
	type variant struct {
		name   string
		server daemon.ServerConfig
	}
	variants := []variant{
		{"off", daemon.ServerConfig{NoFairness: true}},
		{"on, share 1", daemon.ServerConfig{Fair: fair.Config{Share: 1}}},
		{"on, as shipped", daemon.ServerConfig{}},
	}
	rates := map[string][]float64{}
	p99s := map[string][]float64{}
	cpus := map[string][]float64{} // µs of the erpbench process's CPU (the daemon's) per request
	for round := range fairRounds {
		for _, v := range variants {
			base, stop, err := b.serveDaemon(ctx, v.server, nil)
			if err != nil {
				return nil, err
			}
			url := base + "/api/" + slug + "/product/products/" + strconv.FormatInt(id, 10) + "/"
			if err := probe(ctx, url, token); err != nil {
				stop()
				return nil, err
			}
			if _, err := b.runWrk(ctx, wrk, "GET", url, token, 2); err != nil { // warm-up
				stop()
				return nil, err
			}
			cpu0 := processCPU()
			w, err := b.runWrk(ctx, wrk, "GET", url, token, loadSeconds)
			cpu := processCPU() - cpu0
			stop()
			if err != nil {
				return nil, err
			}
			if w.Non2xx != 0 || w.SocketErrors != 0 {
				return nil, fmt.Errorf("GET one answered %d non-2xx, %d socket errors", w.Non2xx, w.SocketErrors)
			}
			rates[v.name] = append(rates[v.name], w.rate())
			p99s[v.name] = append(p99s[v.name], w.P99/1000)
			cpus[v.name] = append(cpus[v.name], float64(cpu.Microseconds())/float64(w.Requests))
			b.logf("round %d, fairness %s: %.0f req/s, p99 %.2f ms, %.1f µs CPU a request", round+1, v.name, w.rate(), w.P99/1000,
				cpus[v.name][len(cpus[v.name])-1])
		}
	}
	off := medianOf(rates["off"])
	var out []result
	for i, v := range variants[1:] {
		on := medianOf(rates[v.name])
		r := result{Name: names[i], Tenants: len(b.slugs), Unit: "req/s", Samples: fairRounds, Median: ptr(on)}
		r.setBaseline(off, "the same daemon without the fairness bookkeeping, in turns", true)
		cpuOn, cpuOff := medianOf(cpus[v.name]), medianOf(cpus["off"])
		r.Extra = map[string]float64{"p99_ms": medianOf(p99s[v.name]), "off_p99_ms": medianOf(p99s["off"]), "cost_percent": (1 - on/off) * 100,
			"cpu_us_per_request": cpuOn, "off_cpu_us_per_request": cpuOff}
		if i == 0 {
			r.setPass("within 5 % of the rate without it", on >= 0.95*off)
		}
		r.addNote("fairness %s; wrk -t%d -c%d -d%ds on one tenant, %d rounds of off / share 1 / as shipped, medians; in-process daemon, "+
			"no access log; rates %v, without it %v; %.1f µs of CPU a request against %.1f without it (%+.1f%%)", v.name, loadThreads, loadConns,
			loadSeconds, fairRounds, roundAll(rates[v.name]), roundAll(rates["off"]), cpuOn, cpuOff, (cpuOn/cpuOff-1)*100)
		out = append(out, r)
	}
	return out, nil
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func roundAll(xs []float64) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x + 0.5)
	}
	return out
}

// serveDaemon runs the daemon in-process, its server configured as srv and logging to log (nil:
// no log), until stop; it returns once the daemon listens and its first pass is over.
func (b *bench) serveDaemon(ctx context.Context, srv daemon.ServerConfig, log *slog.Logger) (base string, stop func(), err error) {
	dctx, cancel := context.WithCancel(ctx)
	addrc := make(chan net.Addr, 1)
	srv.Listen, srv.OnListening = "127.0.0.1:0", func(a net.Addr) { addrc <- a }
	passc := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(dctx, b.p, daemon.Config{
			Loop: daemon.LoopConfig{Interval: time.Hour, OnPass: func(*controlplane.Pass) {
				select {
				case passc <- struct{}{}:
				default:
				}
			}},
			Server: srv,
			Logger: log,
		})
	}()
	var addr net.Addr
	for addr == nil || passc != nil {
		select {
		case addr = <-addrc:
		case <-passc:
			passc = nil
		case err := <-done:
			cancel()
			return "", nil, fmt.Errorf("the in-process daemon stopped: %v", err)
		case <-time.After(5 * time.Minute):
			cancel()
			<-done
			return "", nil, errors.New("the in-process daemon was not ready within 5 minutes")
		}
	}
	return "http://" + addr.String(), func() {
		cancel()
		if err := <-done; err != nil {
			b.logf("daemon: %v", err)
		}
	}, nil
}
