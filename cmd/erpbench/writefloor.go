package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/ident"
)

// writeFloor is the database's own floor for the data API's POST: pgbench inserting one product
// per transaction into the same tenant table, from as many clients as wrk has connections, each
// commit waiting for its WAL flush as POST's does. Its p99 is what the disk allows any writer here.
type writeFloor struct {
	tps, p50, p99 float64 // p50 and p99 in ms
	txs           int
}

// pgbenchInsert runs the write floor; options go to the server (PGOPTIONS), e.g.
// "-c synchronous_commit=off".
func (b *bench) pgbenchInsert(ctx context.Context, slug, options string) (writeFloor, error) {
	var f writeFloor
	bin, err := findPgbench()
	if err != nil {
		return f, err
	}
	cfg, err := pgx.ParseConfig(b.url)
	if err != nil {
		return f, err
	}
	dir, err := os.MkdirTemp(b.tmp, "pgbench-insert-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "insert.sql")
	// The same columns POST writes; the sku unique as the API's is.
	sql := `INSERT INTO ` + ident.Quote(ident.SchemaName(slug), "products") +
		` (sku, name, price) VALUES ('pgbench-' || gen_random_uuid(), 'Bench product', 9.50);` + "\n"
	if err := os.WriteFile(script, []byte(sql), 0o600); err != nil {
		return f, err
	}
	cmd := exec.CommandContext(ctx, bin, "-n", "-M", "prepared", "-f", script, "-c", strconv.Itoa(loadConns),
		"-j", strconv.Itoa(loadThreads), "-T", strconv.Itoa(loadSeconds), "--log", "--log-prefix="+filepath.Join(dir, "tx"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PGHOST="+cfg.Host, "PGPORT="+strconv.Itoa(int(cfg.Port)), "PGUSER="+cfg.User,
		"PGPASSWORD="+cfg.Password, "PGDATABASE="+cfg.Database, "PGSSLMODE=disable", "PGOPTIONS="+options)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return f, fmt.Errorf("pgbench insert: %w: %s", err, lastLines(string(out), 3))
	}
	lat, err := readPgbenchLogs(dir)
	if err != nil {
		return f, err
	}
	if len(lat) == 0 {
		return f, fmt.Errorf("pgbench insert: no transactions logged: %s", lastLines(string(out), 3))
	}
	slices.Sort(lat)
	f.txs = len(lat)
	f.tps = float64(len(lat)) / loadSeconds
	f.p50 = lat[len(lat)/2] / 1000
	f.p99 = lat[min(len(lat)-1, len(lat)*99/100)] / 1000
	return f, nil
}

// readPgbenchLogs reads the latency, in µs, of every transaction in pgbench's per-transaction
// logs (--log: "client_id transaction_no time script_no time_epoch time_us ...").
func readPgbenchLogs(dir string) ([]float64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil {
		return nil, err
	}
	var lat []float64
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			if v, err := strconv.ParseFloat(fields[2], 64); err == nil {
				lat = append(lat, v)
			}
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return lat, nil
}
