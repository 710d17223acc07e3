package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

// citusTenants is how many tenants the Citus comparison makes on each side: the fleet's size
// (BENCH_TENANTS, 1,000 by default), at most 1,000, so that a big run's fleet is not made twice
// more through the coordinator.
func (b *bench) citusTenants() int { return min(b.n, 1000) }

// citusModule is the module the comparison rolls a column out to; extra is more of its columns.
func citusModule(extra string) string {
	return "schema \"tenant\" {}\ntable \"notes\" {\n  schema = schema.tenant\n  column \"body\" {\n    type = text\n  }\n" + extra + "}\n"
}

// citusSide is what one side of the comparison measured.
type citusSide struct {
	creates []time.Duration
	rollout time.Duration
	getOne  wrkResult
}

// citus runs the same small fleet on the bench's PostgreSQL and through the Citus coordinator
// that BENCH_CITUS_URL names (a superuser's URL of a database with the citus extension and its
// workers added): tenant create, a column rollout to every tenant, and the data API's GET one.
// The Citus side leaves nothing behind: its tenants are deleted and purged.
func (b *bench) citus(ctx context.Context) ([]result, error) {
	names := []string{"Citus: tenant create", "Citus: column rollout", "Citus: API GET one: throughput"}
	citusURL := os.Getenv("BENCH_CITUS_URL")
	if citusURL == "" {
		return skipped(names, b.citusTenants(), "BENCH_CITUS_URL is not set"), nil
	}
	wrk, err := findWrk(ctx, b)
	if err != nil {
		return skipped(names, b.citusTenants(), err.Error()), nil
	}
	plainURL, drop, err := b.createDatabase(ctx, "erpbench_plain")
	if err != nil {
		return nil, err
	}
	defer drop()
	plain, err := b.citusSide(ctx, wrk, "plain", plainURL)
	if err != nil {
		return nil, fmt.Errorf("plain PostgreSQL: %w", err)
	}
	onCitus, err := b.citusSide(ctx, wrk, "citus", citusURL)
	if err != nil {
		return nil, fmt.Errorf("Citus: %w", err)
	}
	of := fmt.Sprintf("plain PostgreSQL, the same %d tenants, same run", b.citusTenants())
	create := result{Name: names[0], Tenants: b.citusTenants()}
	create.setTimes(onCitus.creates, "ms")
	create.setBaseline(inUnit(median(plain.creates), "ms"), of, false)
	rollout := result{Name: names[1], Tenants: b.citusTenants(), Unit: "s", Samples: 1, Median: ptr(onCitus.rollout.Seconds())}
	rollout.setBaseline(plain.rollout.Seconds(), of, false)
	rollout.addNote("one nullable column added to every tenant's table, one pass")
	get := result{Name: names[2], Tenants: b.citusTenants(), Unit: "req/s", Samples: 1, Median: ptr(onCitus.getOne.rate())}
	get.setBaseline(plain.getOne.rate(), of, true)
	get.Extra = map[string]float64{"p99_ms": onCitus.getOne.P99 / 1000, "plain_p99_ms": plain.getOne.P99 / 1000}
	get.addNote("wrk -t%d -c%d -d%ds; p99 %.2f ms (plain %.2f ms)", loadThreads, loadConns, loadSeconds,
		onCitus.getOne.P99/1000, plain.getOne.P99/1000)
	return []result{create, rollout, get}, nil
}

// citusSide makes the fleet on url with a control plane of its own, rolls a column out to it,
// loads GET one, and deletes and purges the fleet.
func (b *bench) citusSide(ctx context.Context, wrk, label, url string) (side citusSide, err error) {
	dir := filepath.Join(b.tmp, "citus-modules-"+label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return side, err
	}
	module := filepath.Join(dir, "bench_notes.hcl")
	if err := os.WriteFile(module, []byte(citusModule("")), 0o644); err != nil {
		return side, err
	}
	p, err := controlplane.Open(ctx, controlplane.Config{DatabaseURL: url, ModulesDir: dir})
	if err != nil {
		return side, err
	}
	defer p.Close()
	prefix := "cb-" + randomHex(3) + "-"
	var slugs []ident.Slug
	defer func() {
		for _, s := range slugs {
			if derr := p.DeleteTenant(context.WithoutCancel(ctx), s); derr == nil {
				_, derr = p.PurgeTenant(context.WithoutCancel(ctx), s)
				if derr != nil {
					b.logf("%s: purge %s: %v", label, s, derr)
				}
			}
		}
	}()
	b.logf("%s: creating %d tenants", label, b.citusTenants())
	for i := range b.citusTenants() {
		s := ident.MustParseSlug(prefix + strconv.Itoa(i))
		start := time.Now()
		if _, err := p.CreateTenant(ctx, controlplane.CreateOptions{Slug: s, Modules: []string{"product", "bench_notes"}}); err != nil {
			return side, err
		}
		side.creates = append(side.creates, time.Since(start))
		slugs = append(slugs, s)
	}
	slices.Sort(side.creates)

	if err := os.WriteFile(module, []byte(citusModule("  column \"score\" {\n    type = integer\n    null = true\n  }\n")), 0o644); err != nil {
		return side, err
	}
	if err := publishModules(ctx, p); err != nil {
		return side, err
	}
	start := time.Now()
	pass, err := p.ReconcileAll(ctx, controlplane.ReconcileOptions{Only: slugs})
	if err != nil {
		return side, err
	}
	side.rollout = time.Since(start)
	if n := pass.Counts[controlplane.ActionApplied]; n != b.citusTenants() {
		return side, fmt.Errorf("the column rollout applied %d of %d tenants", n, b.citusTenants())
	}
	b.logf("%s: column rollout to %d tenants in %v", label, b.citusTenants(), side.rollout.Round(time.Millisecond))

	first := slugs[0].String()
	var id int64
	err = p.Pool().QueryRow(ctx, `INSERT INTO `+ident.Quote(ident.SchemaName(first), "products")+
		` (sku, name, price) VALUES ('c-1', 'Citus bench', 1.5) RETURNING id`).Scan(&id)
	if err != nil {
		return side, err
	}
	_, token, err := p.CreateToken(ctx, slugs[0], "erpbench-citus")
	if err != nil {
		return side, err
	}
	base, stop, err := serveHandler(p)
	if err != nil {
		return side, err
	}
	defer stop()
	one := base + "/api/" + first + "/product/products/" + strconv.FormatInt(id, 10) + "/"
	if err := probe(ctx, one, token); err != nil {
		return side, err
	}
	if _, err := b.runWrk(ctx, wrk, "GET", one, token, 2); err != nil { // warm-up
		return side, err
	}
	if side.getOne, err = b.runWrk(ctx, wrk, "GET", one, token, loadSeconds); err != nil {
		return side, err
	}
	b.logf("%s: GET one %.0f req/s, p99 %.2f ms", label, side.getOne.rate(), side.getOne.P99/1000)
	return side, nil
}
