package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgcluster"
)

// pooler loads the data API's GET one and POST directly and behind PgBouncer in transaction
// mode, back to back in the same run, each on a control plane of its own on the same database:
// the cost of the pooler's extra hop, and of taking the data API's role with each statement
// instead of once per connection.
func (b *bench) pooler(ctx context.Context) ([]result, error) {
	names := []string{"API behind PgBouncer GET one: throughput", "API behind PgBouncer POST: throughput"}
	skip := func(reason string) []result { return skipped(names, len(b.slugs), reason) }
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	wrk, err := findWrk(ctx, b)
	if err != nil {
		return skip(err.Error()), nil
	}
	bouncer, err := pgcluster.StartBouncer(b.adminURL)
	if err != nil {
		return skip(err.Error()), nil
	}
	defer bouncer.Stop()
	pooled, err := bouncer.URL(b.url)
	if err != nil {
		return nil, err
	}
	slug := b.slugs[0]
	id, err := b.seedProducts(ctx, slug)
	if err != nil {
		return nil, err
	}
	_, token, err := b.p.CreateToken(ctx, ident.MustParseSlug(slug), "erpbench-pooler")
	if err != nil {
		return nil, err
	}
	size := b.p.Pool().Config().MaxConns
	planes := []struct {
		how string
		cfg controlplane.Config
	}{
		{"direct", controlplane.Config{DatabaseURL: b.url}},
		{"PgBouncer", controlplane.Config{DatabaseURL: pooled, DirectDatabaseURL: b.url}},
	}
	rates := map[string]map[string]wrkResult{}
	for _, pl := range planes {
		pl.cfg.Registry, pl.cfg.MaxConns = b.p.LocalModules(), size
		p, err := controlplane.Open(ctx, pl.cfg)
		if err != nil {
			return nil, fmt.Errorf("open the control plane %s: %w", pl.how, err)
		}
		base, stop, err := serveHandler(p)
		if err != nil {
			p.Close()
			return nil, err
		}
		prefix := base + "/api/" + slug + "/product/products/"
		one := prefix + strconv.FormatInt(id, 10) + "/"
		rates[pl.how] = map[string]wrkResult{}
		err = probe(ctx, one, token)
		if err == nil {
			_, err = b.runWrk(ctx, wrk, "GET", one, token, 2) // warm-up
		}
		for _, e := range []struct{ name, method, url string }{{"GET one", "GET", one}, {"POST", "POST", prefix}} {
			if err != nil {
				break
			}
			b.logf("wrk %s %s: %s", pl.how, e.name, e.url)
			var w wrkResult
			if w, err = b.runWrk(ctx, wrk, e.method, e.url, token, loadSeconds); err == nil {
				b.logf("wrk %s %s: %.0f req/s, p99 %.2f ms, %d non-2xx", pl.how, e.name, w.rate(), w.P99/1000, w.Non2xx)
				rates[pl.how][e.name] = w
			}
		}
		stop()
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("data API %s: %w", pl.how, err)
		}
	}
	var rs []result
	for i, name := range []string{"GET one", "POST"} {
		d, p := rates["direct"][name], rates["PgBouncer"][name]
		r := result{Name: names[i], Tenants: len(b.slugs), Unit: "req/s", Samples: 1, Median: ptr(p.rate())}
		r.setBaseline(d.rate(), "the same requests directly, just before", true)
		r.Extra = map[string]float64{"p99_ms": p.P99 / 1000, "direct_p99_ms": d.P99 / 1000, "non_2xx": float64(p.Non2xx + d.Non2xx)}
		r.setPass("no errors", p.Non2xx == 0 && p.SocketErrors == 0 && d.Non2xx == 0 && d.SocketErrors == 0)
		r.addNote("wrk -t%d -c%d -d%ds; pool of %d; PgBouncer in transaction mode with %d server connections; p99 %.2f ms (direct %.2f ms)",
			loadThreads, loadConns, loadSeconds, size, pgcluster.BouncerPoolSize, p.P99/1000, d.P99/1000)
		rs = append(rs, r)
	}
	return rs, nil
}
