package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/ident"
)

// lifecycleRuns is how many times each of export, import, pg_dump and pg_restore runs.
const lifecycleRuns = 3

// lifecycleStock is the number of stock items of the exported tenant (BENCH_STOCK overrides).
const lifecycleStock = 1_000_000

// lifecycle times `erpctl tenant export` and `tenant import` of one tenant with about a million
// stock items, beside pg_dump and pg_restore of the same schema in the same run, and reports the
// peak RSS of the erpctl process (flat memory: the rows stream).
func (b *bench) lifecycle(ctx context.Context) ([]result, error) {
	stock := lifecycleStock
	if s := os.Getenv("BENCH_STOCK"); s != "" {
		var err error
		if stock, err = strconv.Atoi(s); err != nil || stock < 1000 {
			return nil, fmt.Errorf("BENCH_STOCK=%q: want a whole number of at least 1000", s)
		}
	}
	exp := result{Name: fmt.Sprintf("tenant export, %d stock items", stock), Tenants: b.n}
	imp := result{Name: fmt.Sprintf("tenant import, %d stock items", stock), Tenants: b.n}
	if b.erpctl == "" {
		exp.Skipped = fmt.Sprintf("cmd/erpctl does not build: %v", b.erpctlErr)
		imp.Skipped = exp.Skipped
		return []result{exp, imp}, nil
	}
	pgDump, pgRestore, err := b.pgTools(ctx)
	if err != nil {
		return nil, err
	}
	slug := "bench-export"
	if err := b.bigTenant(ctx, slug, stock); err != nil {
		return nil, err
	}
	schemaName := ident.MustParseSlug(slug).Schema()
	file := filepath.Join(b.tmp, "export.erpctl")
	dump := filepath.Join(b.tmp, "export.dump")

	var expT, impT, dumpT, restT []time.Duration
	var expRSS, impRSS float64
	for i := 1; i <= lifecycleRuns; i++ {
		d, rss, err := b.timedErpctl(ctx, "tenant", "export", slug, "-f", file)
		if err != nil {
			return nil, err
		}
		expT, expRSS = append(expT, d), max(expRSS, rss)
		b.logf("export %d: %.2f s, peak RSS %.0f MB", i, d.Seconds(), rss)

		target := fmt.Sprintf("bench-import-%d", i)
		d, rss, err = b.timedErpctl(ctx, "tenant", "import", target, "-f", file)
		if err != nil {
			return nil, err
		}
		impT, impRSS = append(impT, d), max(impRSS, rss)
		b.logf("import %d: %.2f s, peak RSS %.0f MB", i, d.Seconds(), rss)
		if err := b.dropTenant(ctx, target); err != nil {
			return nil, err
		}

		// The baseline: the same schema through PostgreSQL's own tools, uncompressed as the
		// export file is, restored into an empty database as the import fills a new schema.
		d, _, err = timedCmd(exec.CommandContext(ctx, pgDump, "-Fc", "-Z0", "-n", schemaName, "-f", dump, "-d", b.url))
		if err != nil {
			return nil, fmt.Errorf("pg_dump: %w", err)
		}
		dumpT = append(dumpT, d)
		d, err = b.timedRestore(ctx, pgRestore, dump)
		if err != nil {
			return nil, err
		}
		restT = append(restT, d)
		b.logf("pg_dump %d: %.2f s, pg_restore %.2f s", i, dumpT[i-1].Seconds(), d.Seconds())
	}
	size := fileMB(file)
	for _, x := range []struct {
		r        *result
		ts, base []time.Duration
		rss      float64
		of       string
	}{
		{&exp, expT, dumpT, expRSS, "pg_dump -Fc -Z0 -n of the same schema"},
		{&imp, impT, restT, impRSS, "pg_restore of that dump into an empty database"},
	} {
		x.r.setTimes(x.ts, "s")
		x.r.setBaseline(inUnit(median(x.base), "s"), fmt.Sprintf("median of %s, %d runs", x.of, len(x.base)), false)
		// Ratio is baseline/median: 1 is pg_dump's speed, 0.5 half of it.
		x.r.setPass("at least half the speed of the baseline", x.r.Ratio != nil && *x.r.Ratio >= 0.5)
		x.r.Extra = map[string]float64{"peak_rss_mb": x.rss, "file_mb": size, "dump_mb": fileMB(dump), "stock_items": float64(stock)}
		x.r.addNote("erpctl binary end to end, %d runs; peak RSS %.0f MB; export file %.0f MB, dump %.0f MB", len(x.ts), x.rss, size, fileMB(dump))
	}
	return []result{exp, imp}, nil
}

// bigTenant creates the tenant to export: 1,000 products and warehouses and stock items for
// pairs of them, made by SQL in one statement each.
func (b *bench) bigTenant(ctx context.Context, slug string, stock int) error {
	b.logf("creating tenant %s with %d stock items", slug, stock)
	if _, err := b.p.CreateTenant(ctx, controlplane.CreateOptions{Slug: ident.MustParseSlug(slug)}); err != nil {
		return err
	}
	s := ident.MustParseSlug(slug).Schema()
	side := 1000
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO %s (name, description) SELECT 'Category '||g, CASE WHEN g %% 2 = 0 THEN 'Ünïcödé ✓' END FROM generate_series(1, 50) g`, ident.Quote(s, "categories")),
		fmt.Sprintf(`INSERT INTO %s (sku, name, price, category_id) SELECT 'SKU-'||g, 'Product '||g, (g %% 997) * 1.25, 1 + g %% 50 FROM generate_series(1, %d) g`, ident.Quote(s, "products"), side),
		fmt.Sprintf(`INSERT INTO %s (code, name) SELECT 'W'||g, 'Warehouse '||g FROM generate_series(1, %d) g`, ident.Quote(s, "warehouses"), (stock+side-1)/side),
		fmt.Sprintf(`INSERT INTO %s (product_id, warehouse_id, quantity) SELECT p, w, (p * w) %% 1000
			FROM generate_series(1, %d) w CROSS JOIN generate_series(1, %d) p LIMIT %d`, ident.Quote(s, "stock_items"), (stock+side-1)/side, side, stock),
		"ANALYZE",
	} {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("fill tenant %s: %w", slug, err)
		}
	}
	return nil
}

// dropTenant deletes and purges an imported tenant, so that the next import starts alike.
func (b *bench) dropTenant(ctx context.Context, slug string) error {
	s := ident.MustParseSlug(slug)
	if _, err := b.p.ArchiveTenant(ctx, s); err != nil {
		return err
	}
	_, err := b.p.PurgeTenant(ctx, s)
	return err
}

// timedErpctl runs the erpctl binary and returns its wall time and peak RSS in MB.
func (b *bench) timedErpctl(ctx context.Context, args ...string) (time.Duration, float64, error) {
	d, rss, err := timedCmd(b.erpctlCmd(ctx, args...))
	if err != nil {
		return 0, 0, fmt.Errorf("erpctl %v: %w", args, err)
	}
	return d, rss, nil
}

// timedRestore restores dump into a fresh database and drops it after.
func (b *bench) timedRestore(ctx context.Context, pgRestore, dump string) (time.Duration, error) {
	u, drop, err := b.createDatabase(ctx, "erpbench_restore")
	if err != nil {
		return 0, err
	}
	defer drop()
	d, _, err := timedCmd(exec.CommandContext(ctx, pgRestore, "-d", u, dump))
	if err != nil {
		return 0, fmt.Errorf("pg_restore: %w", err)
	}
	return d, nil
}

// timedCmd runs cmd and returns its wall time and the peak RSS of the process, in MB.
func timedCmd(cmd *exec.Cmd) (time.Duration, float64, error) {
	var out []byte
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, firstLines(string(out), 3))
	}
	var rss float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = float64(ru.Maxrss) / 1024 // kilobytes on Linux
	}
	return d, rss, nil
}

// pgTools finds pg_dump and pg_restore beside the server binaries, else on PATH.
func (b *bench) pgTools(ctx context.Context) (string, string, error) {
	var dirs []string
	if st, err := b.cluster.Status(ctx); err == nil && st.BinDir != "" {
		dirs = append(dirs, st.BinDir)
	}
	find := func(name string) (string, error) {
		for _, d := range dirs {
			if p := filepath.Join(d, name); fileMB(p) > 0 {
				return p, nil
			}
		}
		return exec.LookPath(name)
	}
	dump, err := find("pg_dump")
	if err != nil {
		return "", "", fmt.Errorf("pg_dump for the baseline: %w", err)
	}
	restore, err := find("pg_restore")
	if err != nil {
		return "", "", fmt.Errorf("pg_restore for the baseline: %w", err)
	}
	return dump, restore, nil
}

func fileMB(path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(st.Size()) / 1e6
}
