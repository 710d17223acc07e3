// Command erpbench runs erpctl's fleet and data API benchmarks, each beside a naive baseline
// measured in the same run, prints a table and writes the same figures as JSON to
// $ERPCTL_HOME/bench/results.json.
//
//	go run ./cmd/erpbench        every scenario, the soak for one minute
//	go run ./cmd/erpbench soak   the fleet, then only the soak (SOAK_MINUTES, default 5); exit 1
//	                             when the daemon's memory grows
//
// It starts a throwaway embedded PostgreSQL of its own (internal/pgcluster, default settings, in a
// fresh temporary home that it removes at the end), unless ERPCTL_BENCH_DATABASE_URL names a server
// (a superuser, or a user allowed to create databases): then it creates fresh databases there and
// drops them at the end.
//
// Environment:
//
//	BENCH_TENANTS               tenants in the fleet (default 1000; 10000 or 100000 for the big runs)
//	BENCH_FLEET                 how the fleet is made: erpctl (CreateTenant, the default up to 10,000
//	                            tenants) or raw (the first tenant by CreateTenant, the rest copies of
//	                            its DDL and catalog rows by raw SQL, about twice as fast; the default
//	                            above 10,000)
//	BENCH_ONLY                  scenarios to run besides the fleet, by name, comma-separated
//	                            (e.g. "incremental pass,no-op reconcile"); default all
//	BENCH_STAGE_ROUNDS          "labels and stages": rounds of a staged and an unstaged rollout in
//	                            turns (default 3, 1 above 20,000 tenants; 0: tenant list -l alone)
//	BENCH_STOCK                 stock items of the tenant "tenant export and import" uses (default 1000000)
//	ERPCTL_BENCH_DATABASE_URL   use this server instead of an embedded one
//	BENCH_CITUS_URL             a Citus coordinator (a superuser's URL of a database with the citus
//	                            extension and its workers): the "Citus" scenario runs 50 tenants'
//	                            create, column rollout and GET one there and on plain PostgreSQL
//	BENCH_CONSOLE_MINUTES       how long the console scenario keeps pages open in Chromium during
//	                            rollouts to measure the daemon's extra memory (default 10 when
//	                            BENCH_ONLY names the console, else 1)
//	ERPCTL_HOME                 where results.json goes (bench/results.json under it)
//	SOAK_MINUTES                the soak's length (default 5 with soak, 1 in the full run)
//	SOAK_WARMUP_MINUTES         growth is measured from its end (default 1, or a fifth of the run)
//	SOAK_SAMPLE_SECONDS         how often the daemon is sampled (default 5)
//	SOAK_MIX                    full (default: with wrong tokens and unknown tenants) or valid
//	BENCH_PROFILE               a directory: CPU and allocation profiles of each data API wrk run and module evolution pass
//	                            go there (cpu-NAME.pprof, allocs-NAME.pprof; see profile.go)
//	BENCH_POOL                  the control plane's pool size (default erpctl's, 16); the data
//	                            API's pool and the Go floor's are the same size
//	BENCH_SYNC_COMMIT           off: the data API scenario sets synchronous_commit off for the
//	                            bench database (an experiment: is POST's tail the WAL flush?)
//	BENCH_API_CONN_TENANTS      the data API's bound on the tenants one connection serves (the
//	                            daemon's --api-conn-tenants; default erpctl's, 0: no bound)
//	BENCH_SPREAD                tenants the data API's spread covers (GET one, each request for the
//	                            next tenant): default the fleet, at most 10,000
//	BENCH_BEFORE                "noisy neighbours": an erpctl binary, or a git revision to build one
//	                            from, to run the attacks against besides this tree's (see noisy.go,
//	                            which also reads BENCH_NOISY_SECONDS, BENCH_NOISY_IDLE, BENCH_NOISY_ROWS)
//	BENCH_ACCESS_LOG            the file the data API's in-process daemon logs to, as the erpctl
//	                            daemon does to a non-terminal stderr (JSON, one access log line per
//	                            request); default access.log in the scratch directory. Each data
//	                            API run is made with the log (the figure shown) and without it
//
// Progress goes to stderr, the table to stdout. The exit code is 1 when a scenario failed to
// run (a missed target is reported in the table, not in the exit code).
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the naive Atlas baseline

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/internal/pgcluster"
)

const (
	defaultTenants = 1000
	tmpPrefix      = "erpbench-"
)

// bench is the state the scenarios share: the database, the control plane and what earlier
// scenarios measured.
type bench struct {
	start      time.Time
	n          int    // BENCH_TENANTS
	url        string // the bench database
	adminURL   string // a maintenance database of the same server, for CREATE DATABASE
	superURL   string // the bench database as the superuser, when url's role is none; else ""
	tmp        string // scratch directory: modules dir, the erpctl binary, wrk scripts
	cluster    *pgcluster.Throwaway
	modulesDir string
	p          *controlplane.Plane
	db         *sql.DB // a plain database/sql pool, as a user of the Atlas library has

	erpctl    string // path of the built erpctl binary; "" when it did not build
	erpctlErr error  // why it did not

	soakOnly bool     // `erpbench soak`: the fleet, then the soak alone
	slugs    []string // every tenant, sorted, once the fleet is created
	// naiveNoop is the median time of the naive no-op inspect+diff of one tenant, for the drift
	// scenario's baseline; 0 when it was not measured.
	naiveNoop time.Duration
	// daemonBroken says why the erpctl daemon could not be measured, when it could not: the data
	// API scenario then serves the API handler without the daemon.
	daemonBroken string
	// apiConnTenants is the data API's --api-conn-tenants: 0 erpctl's default, below 0 none.
	apiConnTenants int
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "erpbench %7.1fs  %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, a...))
}

// scenario is one part of the run: its rows in the table.
type scenario struct {
	name string
	run  func(context.Context) ([]result, error)
}

func main() {
	os.Exit(run())
}

func run() int {
	b := &bench{start: time.Now(), n: defaultTenants}
	soakOnly := len(os.Args) > 1 && os.Args[1] == "soak"
	b.soakOnly = soakOnly
	if len(os.Args) > 1 && !soakOnly {
		fmt.Fprintf(os.Stderr, "erpbench: unknown argument %q: run it without one, or with soak\n", os.Args[1])
		return 2
	}
	soakCfg, err := soakConfigFromEnv(map[bool]float64{true: 5, false: 1}[soakOnly])
	if err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 2
	}
	soakOK := true
	soakRun := func(ctx context.Context) ([]result, error) {
		if err := b.loadSlugs(ctx); err != nil {
			return nil, err
		}
		rs, ok, err := b.soak(ctx, soakCfg)
		soakOK = ok
		return rs, err
	}
	if s := os.Getenv("BENCH_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			fmt.Fprintf(os.Stderr, "erpbench: BENCH_TENANTS=%q: want a whole number of at least 10\n", s)
			return 2
		}
		b.n = n
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The bench's files share the temporary home of its cluster, removed at the end.
	pgcluster.RemoveAbandoned(tmpPrefix)
	cluster, err := pgcluster.NewThrowaway(tmpPrefix, pgcluster.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 1
	}
	tmp := cluster.Home
	defer os.RemoveAll(tmp)
	b.tmp, b.cluster = tmp, cluster
	b.modulesDir = filepath.Join(tmp, "modules")
	if err := os.Mkdir(b.modulesDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 1
	}
	b.logf("%d tenants; building erpctl", b.n)
	b.erpctl, b.erpctlErr = buildErpctl(ctx, tmp)
	if b.erpctlErr != nil {
		b.logf("erpctl does not build; its scenarios will be skipped: %v", b.erpctlErr)
	}

	cleanup, err := b.openDatabase(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 1
	}
	if s := os.Getenv("BENCH_API_CONN_TENANTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "erpbench: BENCH_API_CONN_TENANTS=%q: want 0 (no bound) or more\n", s)
			return 2
		}
		b.apiConnTenants = cmp.Or(n, -1)
	}
	var pool int32 // 0: erpctl's default
	if s := os.Getenv("BENCH_POOL"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			fmt.Fprintf(os.Stderr, "erpbench: BENCH_POOL=%q: want a pool size from 1 to 1000\n", s)
			return 2
		}
		pool = int32(n)
	}
	b.p, err = controlplane.Open(ctx, controlplane.Config{DatabaseURL: b.url, AdminURL: b.superURL, ModulesDir: b.modulesDir,
		MaxConns: pool})
	if err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 1
	}
	defer b.p.Close()
	if b.db, err = sql.Open("pgx", b.url); err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: %v\n", err)
		return 1
	}
	defer b.db.Close()

	// The fleet first, so that every per-tenant figure is taken with N tenants in the database.
	scenarios := []scenario{
		{"fleet creation", b.fleet},
		{"tenant creation", b.create},
		{"no-op reconcile", b.noop},
		{"generations", b.generations},
		{"incremental pass", b.incremental},
		{"rollout", b.rollout},
		{"labels and stages", b.stages},
		{"drift repair", b.drift},
		{"repair of one tenant", b.repair},
		{"daemon memory", b.memory},
		{"data API", b.api},
		{"data API statement modes", b.apiModesScenario},
		{"fairness cost", b.fairCost},
		{"noisy neighbours", b.noisy},
		{"data API behind PgBouncer", b.pooler},
		{"Citus", b.citus},
		{"module evolution", b.evolution},
		{"tenant export and import", b.lifecycle},
		{"console", b.consoleScenario},
		{"soak", soakRun},
	}
	if soakOnly {
		scenarios = []scenario{scenarios[0], scenarios[len(scenarios)-1]} // the fleet, the soak
	}
	out := filepath.Join(pgcluster.DefaultHome(), "bench", "results.json")
	loadStart := loadAvg()
	b.logf("load average %s (%d CPUs)", loadStart, runtime.NumCPU())
	if l, err := strconv.ParseFloat(loadStart, 64); err == nil && l > float64(runtime.NumCPU())/2 {
		b.logf("warning: the machine is busy (load average %s on %d CPUs): other work skews every figure", loadStart, runtime.NumCPU())
	}
	server := b.serverInfo(ctx)
	var results []result
	failed := false
	only := os.Getenv("BENCH_ONLY")
	for _, s := range scenarios {
		if only != "" && s.name != "fleet creation" && !slices.Contains(strings.Split(only, ","), s.name) {
			continue
		}
		b.logf("== %s", s.name)
		rs, err := s.run(ctx)
		if err != nil {
			b.logf("%s failed: %v", s.name, err)
			rs = append(rs, result{Name: s.name, Tenants: b.n, Error: err.Error()})
		}
		for _, r := range rs {
			failed = failed || r.Error != ""
		}
		results = append(results, rs...)
		// After each scenario, so that a crash leaves what was measured.
		if err := writeJSON(out, results); err != nil {
			b.logf("write results: %v", err)
		}
		if err != nil || ctx.Err() != nil {
			break // the fleet may be in no state for the next scenarios
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "erpbench: interrupted")
		return 1
	}

	total := time.Since(b.start)
	fmt.Println()
	printTable(os.Stdout, results)
	var missed []string
	for _, r := range results {
		if r.Pass != nil && !*r.Pass {
			missed = append(missed, r.Name)
		}
	}
	fmt.Printf("\ntotal run time %s; load average %s at the start, %s at the end (%d CPUs); %s\n",
		total.Round(time.Second), loadStart, loadAvg(), runtime.NumCPU(), server)
	if len(missed) > 0 {
		fmt.Printf("targets missed: %s\n", strings.Join(missed, ", "))
	}
	if err := writeJSON(out, results); err != nil {
		fmt.Fprintf(os.Stderr, "erpbench: write results: %v\n", err)
		return 1
	}
	fmt.Printf("results written to %s\n", out)
	if failed || (soakOnly && !soakOK) {
		return 1
	}
	return 0
}

// openDatabase sets b.url and b.adminURL: fresh databases on ERPCTL_BENCH_DATABASE_URL's server,
// or a throwaway embedded cluster. cleanup (possibly non-nil with an error) removes them.
func (b *bench) openDatabase(ctx context.Context) (cleanup func(), err error) {
	if u := os.Getenv("ERPCTL_BENCH_DATABASE_URL"); u != "" {
		b.adminURL = u
		name := "erpbench_" + randomHex(4)
		if b.url, err = pgcluster.WithDatabase(u, name); err != nil {
			return nil, fmt.Errorf("ERPCTL_BENCH_DATABASE_URL: %w", err)
		}
		if err := execOn(ctx, u, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return nil, fmt.Errorf("create database %s: %w", name, err)
		}
		b.logf("using database %s on ERPCTL_BENCH_DATABASE_URL's server", name)
		return func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := execOn(ctx, u, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				b.logf("drop database %s: %v", name, err)
			}
		}, nil
	}

	c := b.cluster
	cleanup = func() {
		b.logf("stopping the embedded cluster")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Remove(ctx); err != nil {
			b.logf("%v", err)
		}
	}
	b.logf("starting an embedded PostgreSQL in %s", c.Home)
	if err := c.Ensure(ctx); err != nil {
		return cleanup, err
	}
	b.url = c.URL(pgcluster.DefaultDatabase)
	b.adminURL = c.AdminURL("postgres")
	b.superURL = c.AdminURL(pgcluster.DefaultDatabase)
	return cleanup, nil
}

// createDatabase creates a fresh database on the bench server and returns its URL and a
// function that drops it.
func (b *bench) createDatabase(ctx context.Context, prefix string) (string, func(), error) {
	name := prefix + "_" + randomHex(4)
	u, err := pgcluster.WithDatabase(b.adminURL, name)
	if err != nil {
		return "", nil, err
	}
	if err := execOn(ctx, b.adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	return u, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execOn(ctx, b.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			b.logf("drop database %s: %v", name, err)
		}
	}, nil
}

func execOn(ctx context.Context, u, q string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, q)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loadAvg is the 1-minute load average, or "?": other work on the machine skews every figure.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// serverInfo describes the server the figures were taken on.
func (b *bench) serverInfo(ctx context.Context) string {
	var version, fsync, syncCommit, buffers string
	err := b.db.QueryRowContext(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &buffers)
	if err != nil {
		return "PostgreSQL ?"
	}
	return fmt.Sprintf("PostgreSQL %s (fsync %s, synchronous_commit %s, shared_buffers %s)", version, fsync, syncCommit, buffers)
}

// settleChanges does between two timed changes what a running daemon does: change tracking is
// on, and an incremental pass takes the tenants it recorded (the scenarios' raw SQL changes every
// tenant by hand). A rollout's pass then reads only the schemas changed since, as the daemon's
// would (controlplane's trustedFingerprints). Not timed.
func (b *bench) settleChanges(ctx context.Context) error {
	if _, err := b.p.EnableChangeTracking(ctx); err != nil {
		return err
	}
	changed, err := b.p.ChangedTenants(ctx)
	if err != nil || len(changed) == 0 {
		return err
	}
	pass, err := b.p.ReconcileAll(ctx, controlplane.ReconcileOptions{Only: changed, Workers: 4})
	if err != nil {
		return fmt.Errorf("incremental pass over the tenants changed by hand: %w", err)
	}
	b.logf("an incremental pass over the %d tenants changed by hand: %v in %s", len(changed), pass.Counts, pass.Duration.Round(time.Millisecond))
	return nil
}

// publishModules reads the bench's module files again and publishes them as the next
// generation, which the next pass rolls out: what erpctl module publish does, without its preview.
func publishModules(ctx context.Context, p *controlplane.Plane) error {
	if err := p.ReloadModules(); err != nil {
		return err
	}
	_, err := p.Publish(ctx, controlplane.PublishOptions{Message: "erpbench"})
	return err
}
