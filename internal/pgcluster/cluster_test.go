//go:build unix

package pgcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// newHome makes a temporary home that the server user can reach when we are root, and removes it and
// stops its cluster when the test ends.
func newHome(t *testing.T) string {
	t.Helper()
	home, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupHome(t, home) })
	return home
}

func cleanupHome(t *testing.T, home string) {
	c := Open(home)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if !strings.HasPrefix(c.DataDir, home+string(filepath.Separator)) {
		os.RemoveAll(c.DataDir)
	}
	os.RemoveAll(home)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func query(t *testing.T, ctx context.Context, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func execSQL(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustStatus(t *testing.T, ctx context.Context, c *Cluster) Status {
	t.Helper()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// TestLifecycle runs a cluster through first start by concurrent callers, reuse, status, stop,
// restart with persisted data, crash recovery, a stale pid file and a taken port. It is ephemeral
// for speed (a durable initdb takes seconds longer); TestDurable checks the default configuration.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	home := newHome(t)
	open := func() *Cluster { return OpenWithOptions(home, Options{Ephemeral: true}) }

	if st := mustStatus(t, ctx, open()); st.Initialized || st.Running || st.PID != 0 {
		t.Fatalf("status before Ensure = %+v, want neither initialised nor running", st)
	}

	// Concurrent first Ensure calls on fresh Cluster values: one initdb, one server.
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = open().Ensure(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Ensure %d: %v", i, err)
		}
	}

	c := open()
	st := mustStatus(t, ctx, c)
	if !st.Initialized || !st.Running || st.PID <= 0 || st.Port <= 0 {
		t.Fatalf("status after Ensure = %+v", st)
	}
	if st.DataDir != filepath.Join(home, "pg") || c.DataDir != st.DataDir {
		t.Errorf("DataDir = %q (Cluster %q), want %q", st.DataDir, c.DataDir, filepath.Join(home, "pg"))
	}
	if st.Version == "" || st.Version[0] < '1' || st.Version[0] > '9' {
		t.Errorf("Version = %q", st.Version)
	}
	if _, ok := binariesIn(st.BinDir); !ok {
		t.Errorf("BinDir = %q has no server binaries", st.BinDir)
	}
	if got := query(t, ctx, c.URL("erpctl"), "SELECT current_database() || ' ' || current_user"); got != "erpctl erpctl" {
		t.Errorf("database and user = %q", got)
	}
	// Room for a data API backend's tenants' files, where the machine allows it.
	if n := serverFiles(); n > 0 {
		if got := query(t, ctx, c.URL("postgres"), "SHOW max_files_per_process"); got != strconv.Itoa(n) {
			t.Errorf("max_files_per_process = %s, want %d", got, n)
		}
		if soft, ok := softFileLimit(st.PID); !ok || soft < n {
			t.Errorf("the server's open-files limit is %d (read: %v), want at least %d", soft, ok, n)
		}
	} else {
		t.Logf("this machine leaves max_files_per_process at PostgreSQL's default")
	}
	if got := query(t, ctx, c.URL("postgres"), "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %s on an ephemeral cluster", got)
	}
	if got := query(t, ctx, c.URL("postgres"), "SHOW max_connections"); got != "200" {
		t.Errorf("max_connections = %s", got)
	}
	if !strings.Contains(c.URL("x"), "127.0.0.1:"+strconv.Itoa(st.Port)+"/x") {
		t.Errorf("URL = %s, want 127.0.0.1:%d", c.URL("x"), st.Port)
	}
	fi, err := os.Stat(filepath.Join(home, passwordFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v, mode %v; want mode 0600", err, fi.Mode())
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(c.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if uid, _, _ := fileOwner(fi); uid == 0 {
			t.Errorf("data directory is owned by root")
		}
		if got := query(t, ctx, c.AdminURL("postgres"), "SELECT pg_catalog.current_setting('data_directory')"); got != c.DataDir {
			t.Errorf("data_directory = %s", got)
		}
	}

	// Reuse: Ensure on a running cluster returns at once and keeps the server.
	start := time.Now()
	if err := open().Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Ensure on a running cluster took %v", d)
	}
	if st2 := mustStatus(t, ctx, c); st2.PID != st.PID || st2.Port != st.Port {
		t.Errorf("after a second Ensure: pid %d port %d, want pid %d port %d", st2.PID, st2.Port, st.PID, st.Port)
	}

	// Data persists across stop and start.
	execSQL(t, ctx, c.URL("erpctl"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, ctx, c); st.Running || st.PID != 0 || !st.Initialized {
		t.Fatalf("status after Stop = %+v", st)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop on a stopped cluster: %v", err)
	}
	if err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, ctx, c.URL("erpctl"), "SELECT v FROM kept"); got != "still here" {
		t.Errorf("after restart: %q", got)
	}
	st3 := mustStatus(t, ctx, c)
	if st3.PID == st.PID || st3.Port != st.Port {
		t.Errorf("after restart: pid %d port %d; want a new pid and port %d", st3.PID, st3.Port, st.Port)
	}

	t.Run("crash", func(t *testing.T) {
		pid := mustStatus(t, ctx, c).PID
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := open().Ensure(ctx); err != nil {
			t.Fatalf("Ensure after a crash: %v", err)
		}
		if got := query(t, ctx, c.URL("erpctl"), "SELECT v FROM kept"); got != "still here" {
			t.Errorf("after crash: %q", got)
		}
	})

	t.Run("stale pid file", func(t *testing.T) {
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		// A pid file naming a live process that is not PostgreSQL (ours), as after a reboot.
		pidFile := filepath.Join(c.DataDir, "postmaster.pid")
		stale := strconv.Itoa(os.Getpid()) + "\n" + c.DataDir + "\n1700000000\n" + strconv.Itoa(st.Port) + "\n\n127.0.0.1\n  0 0\nready   \n"
		if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Ensure(ctx); err != nil {
			t.Fatalf("Ensure with a stale pid file: %v", err)
		}
		if got := query(t, ctx, c.URL("erpctl"), "SELECT v FROM kept"); got != "still here" {
			t.Errorf("%q", got)
		}
	})

	t.Run("port taken", func(t *testing.T) {
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(st.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := open().Ensure(ctx); err != nil {
			t.Fatalf("Ensure with its port taken: %v", err)
		}
		st := mustStatus(t, ctx, c)
		if st.Port == l.Addr().(*net.TCPAddr).Port {
			t.Fatalf("still on the taken port")
		}
		if c.recordedPort() != st.Port {
			t.Errorf("recorded port %d, running on %d", c.recordedPort(), st.Port)
		}
		if got := query(t, ctx, c.URL("erpctl"), "SELECT v FROM kept"); got != "still here" {
			t.Errorf("%q", got)
		}
	})
}

func TestNoPostgres(t *testing.T) {
	ctx := testCtx(t)
	home := newHome(t)
	err := OpenWithOptions(home, Options{BinDir: t.TempDir()}).Ensure(ctx)
	if !errors.Is(err, ErrNoPostgres) {
		t.Fatalf("Ensure with an empty BinDir = %v, want ErrNoPostgres", err)
	}
	if !strings.HasPrefix(err.Error(), "start embedded PostgreSQL in ") || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("message: %v", err)
	}

	t.Setenv("ERPCTL_PG_BINDIR", "/nonexistent/bin")
	c := Open(home)
	if err := c.Ensure(ctx); !errors.Is(err, ErrNoPostgres) || !strings.Contains(err.Error(), "/nonexistent/bin") {
		t.Fatalf("Ensure with ERPCTL_PG_BINDIR=/nonexistent/bin = %v, want ErrNoPostgres naming the directory", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.BinDir != "" || st.Running {
		t.Errorf("Status without binaries = %+v, %v", st, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop without binaries nor server: %v", err)
	}
}

// TestDurable checks the default configuration (fsync on, TCP on 127.0.0.1 only) and, as root, a
// home the postgres user cannot reach (mode 700, like /root): the data directory then lives under
// /var/lib/erpctl/clusters, recorded in home. (One test for both: a durable initdb takes seconds.)
func TestSharedBuffers(t *testing.T) {
	for _, c := range []struct{ mem, want uint64 }{
		{0, 128},         // unknown: PostgreSQL's default
		{256 << 20, 128}, // a small machine keeps the default
		{2 << 30, 512},   // a quarter
		{23 << 30, 4096}, // capped
	} {
		if got := sharedBuffersMB(c.mem); got != c.want {
			t.Errorf("sharedBuffersMB(%d MB) = %d MB, want %d MB", c.mem>>20, got, c.want)
		}
	}
	if mem := memoryBytes(); mem < 64<<20 {
		t.Errorf("memoryBytes() = %d: this machine's memory was not found", mem)
	}
}

func TestDurable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	home := newHome(t)
	want := filepath.Join(home, "pg")
	if os.Geteuid() == 0 {
		if err := os.Chmod(home, 0o700); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(home))
		want = filepath.Join("/var/lib/erpctl/clusters", hex.EncodeToString(sum[:])[:12])
	}
	c := Open(home)
	if c.DataDir != want {
		t.Fatalf("DataDir = %s, want %s", c.DataDir, want)
	}
	if err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	got := query(t, ctx, c.AdminURL("postgres"), `SELECT concat_ws(' ', current_setting('fsync'), current_setting('full_page_writes'),
		current_setting('listen_addresses'), quote_literal(current_setting('unix_socket_directories')), current_setting('data_directory'))`)
	if want := "on on 127.0.0.1 '' " + want; got != want {
		t.Errorf("fsync, full_page_writes, listen_addresses, unix_socket_directories, data_directory = %s, want %s", got, want)
	}
	if got := readTrim(filepath.Join(home, dataDirFile)); got != want {
		t.Errorf("recorded data dir %q, want %q", got, want)
	}
	wantBuffers := strconv.FormatUint(sharedBuffersMB(memoryBytes()), 10)
	if got := query(t, ctx, c.AdminURL("postgres"), `SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'`); got != wantBuffers {
		t.Errorf("shared_buffers = %s MB, want %s MB", got, wantBuffers)
	}
	// Found again even if home becomes reachable later.
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if st := mustStatus(t, ctx, Open(home)); st.DataDir != want || !st.Running {
		t.Errorf("status = %+v", st)
	}
}

// TestRootDataDir checks where, as root, the data directory of a reachable and of an unreachable home is.
func TestRootDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only as root")
	}
	home := newHome(t)
	if got := Open(home).DataDir; got != filepath.Join(home, "pg") {
		t.Errorf("reachable home: DataDir = %s", got)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := Open(home).DataDir; !strings.HasPrefix(got, "/var/lib/erpctl/clusters/") {
		t.Errorf("home of mode 700: DataDir = %s", got)
	}
	if got := Open(filepath.Join(home, "missing")).DataDir; !strings.HasPrefix(got, "/var/lib/erpctl/clusters/") {
		t.Errorf("home yet to be made (private): DataDir = %s", got)
	}
}

func TestDefaultHome(t *testing.T) {
	t.Setenv("ERPCTL_HOME", "/some/where")
	if got := DefaultHome(); got != "/some/where" {
		t.Errorf("DefaultHome = %s", got)
	}
	t.Setenv("ERPCTL_HOME", "")
	t.Setenv("HOME", "/home/x")
	if got := DefaultHome(); got != "/home/x/.local/share/erpctl" {
		t.Errorf("DefaultHome = %s", got)
	}
}

// TestHomeRemovedAndMadeAgain: as root a home the server user cannot reach keeps its data
// directory under /var/lib/erpctl/clusters, which outlives `rm -rf $ERPCTL_HOME`. A new home at
// the same path has no password for that cluster: Ensure says so in one sentence with the way
// out, whether the old server still runs or not, and Destroy (which needs no password) stops it
// and removes its data, after which the home gets a cluster of its own.
func TestHomeRemovedAndMadeAgain(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	home := newHome(t)
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := Options{Ephemeral: true}
	c := OpenWithOptions(home, opts)
	if err := c.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	execSQL(t, ctx, c.URL(DefaultDatabase), "CREATE TABLE old_home (v text)")
	dataDir := c.DataDir
	removeHome := func() {
		t.Helper()
		if strings.HasPrefix(dataDir, home+string(filepath.Separator)) {
			// Not root: the data directory is in the home; take everything else away.
			entries, _ := os.ReadDir(home)
			for _, e := range entries {
				if e.Name() != dataDirName {
					os.RemoveAll(filepath.Join(home, e.Name()))
				}
			}
			return
		}
		if err := os.RemoveAll(home); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	removeHome()

	for _, running := range []bool{true, false} {
		again := OpenWithOptions(home, opts)
		if again.DataDir != dataDir {
			t.Fatalf("the new home's data directory is %s, want the old %s", again.DataDir, dataDir)
		}
		err := again.Ensure(ctx)
		if !errors.Is(err, ErrForeignDataDir) {
			t.Fatalf("Ensure (old server running: %v) = %v, want ErrForeignDataDir", running, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || len(msg) > 400 || !strings.Contains(msg, "erpctl db destroy --yes") || !strings.Contains(msg, dataDir) {
			t.Fatalf("Ensure's error is not one sentence naming the way out:\n%s", msg)
		}
		if running {
			if err := again.Stop(ctx); err != nil {
				t.Fatalf("stop the old home's server: %v", err)
			}
		}
	}
	d := OpenWithOptions(home, opts)
	if removed, err := d.Destroy(ctx); err != nil || !removed {
		t.Fatalf("Destroy = %v, %v", removed, err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the data directory is still there: %v", err)
	}
	if removed, err := d.Destroy(ctx); err != nil || removed {
		t.Fatalf("Destroy again = %v, %v; want nothing to remove", removed, err)
	}
	fresh := OpenWithOptions(home, opts)
	if err := fresh.Ensure(ctx); err != nil {
		t.Fatalf("Ensure after Destroy: %v", err)
	}
	if got := query(t, ctx, fresh.URL(DefaultDatabase), "SELECT count(*)::text FROM pg_tables WHERE tablename = 'old_home'"); got != "0" {
		t.Fatalf("the new cluster has the old one's table")
	}
	// Destroy of a running cluster stops it first.
	if removed, err := fresh.Destroy(ctx); err != nil || !removed {
		t.Fatalf("Destroy of a running cluster = %v, %v", removed, err)
	}
	if st := mustStatus(t, ctx, OpenWithOptions(home, opts)); st.Initialized || st.Running {
		t.Fatalf("status after Destroy: %+v", st)
	}
}

// Destroy refuses a recorded data directory that is neither the home's pg nor under
// /var/lib/erpctl/clusters: it never removes a directory erpctl did not make.
func TestDestroyOnlyItsOwnDataDir(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	home := newHome(t)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, dataDirFile), []byte(other+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home).Destroy(ctx); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("Destroy of %s = %v", other, err)
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Fatalf("Destroy touched %s: %v", other, err)
	}
}

// softFileLimit is the soft open-files limit of process pid, from /proc.
func softFileLimit(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.Atoi(f[0])
			return n, err == nil
		}
	}
	return 0, false
}
