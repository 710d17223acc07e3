package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/erpctl/erpctl/controlplane"
)

const genRuns = 5

// generations measures what module generations cost: reading the latest generation, which every
// pass does once (beside the no-op pass it is part of), and publishing a module, with the preview
// over every tenant that erpctl module publish makes and without it.
func (b *bench) generations(ctx context.Context) ([]result, error) {
	if err := b.loadSlugs(ctx); err != nil {
		return nil, err
	}
	n := len(b.slugs)
	var reads, passes []time.Duration
	for range genRuns {
		start := time.Now()
		if _, _, err := b.p.LatestModules(ctx); err != nil {
			return nil, err
		}
		reads = append(reads, time.Since(start))
		pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{})
		if err != nil {
			return nil, err
		}
		if u := pass.Counts[controlplane.ActionUnchanged]; u != n {
			return nil, fmt.Errorf("no-op pass: %d of %d tenants unchanged: %v", u, n, pass.Counts)
		}
		passes = append(passes, pass.Duration)
	}
	read := result{Name: "read the latest generation", Tenants: n}
	read.setTimes(reads, "ms")
	read.setBaseline(inUnit(median(passes), "ms"), "the no-op pass it is part of", false)
	share := inUnit(median(reads), "ms") / inUnit(median(passes), "ms")
	read.setPass("< 5 % of a no-op pass", share < 0.05)
	read.addNote("%.2f %% of a no-op pass (median %s); medians of %d", 100*share, median(passes).Round(time.Millisecond), genRuns)
	b.logf("read the latest generation: %s, %.2f %% of a no-op pass", median(reads), 100*share)

	// A module none of the tenants has yet, published and taken back, each time anew.
	file := filepath.Join(b.modulesDir, "bench_gen.hcl")
	defer func() {
		os.Remove(file)
		_ = publishModules(context.WithoutCancel(ctx), b.p)
	}()
	var checked, plain []time.Duration
	for i := range genRuns {
		src := fmt.Sprintf("schema \"tenant\" {}\ntable \"bench_gen\" {\n  schema = schema.tenant\n  column \"v%d\" {\n    type = text\n  }\n}\n", i)
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			return nil, err
		}
		if err := b.p.ReloadModules(); err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := b.p.PublishChecked(ctx, "erpbench", controlplane.ReconcileOptions{Workers: 4})
		if err != nil {
			return nil, err
		}
		checked = append(checked, time.Since(start))
		if !res.Changed {
			return nil, fmt.Errorf("publish %d published nothing", i)
		}
		if err := os.WriteFile(file, []byte(src+"# again\n"), 0o644); err != nil {
			return nil, err
		}
		if err := b.p.ReloadModules(); err != nil {
			return nil, err
		}
		start = time.Now()
		if _, err := b.p.Publish(ctx, controlplane.PublishOptions{Message: "erpbench"}); err != nil {
			return nil, err
		}
		plain = append(plain, time.Since(start))
	}
	pub := result{Name: "module publish", Tenants: n}
	pub.setTimes(checked, "s")
	pub.setBaseline(inUnit(median(plain), "s"), "the publish alone, without the preview", false)
	pub.addNote("with the preview of every tenant (erpctl module publish); medians of %d", genRuns)
	b.logf("module publish: %s with the preview, %s without", median(checked), median(plain))
	return []result{read, pub}, nil
}
