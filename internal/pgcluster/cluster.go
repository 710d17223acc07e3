// Package pgcluster runs erpctl's embedded PostgreSQL: a private cluster under a home directory
// ($ERPCTL_HOME), initialised once, started on demand, reused by every erpctl process on the machine,
// and left running (its data persists) when erpctl exits.
//
// Files in the home directory:
//
//	pg/           the data directory (as root it may live elsewhere, see below); the server log
//	              is pg/postgresql.log
//	pg.datadir    where the data directory is (written by the first Ensure)
//	pg.port       the TCP port the server listens on (127.0.0.1 only; no Unix socket)
//	pg.password   the password of the database superuser "postgres" (mode 0600)
//	pg.erpctl.password  the password of the role "erpctl" that erpctl connects as (mode 0600)
//	pg.lock       flock'ed while a process initialises, starts or stops the server
//
// PostgreSQL refuses to run as root. When erpctl runs as root, initdb, pg_ctl and postgres run as the
// "postgres" system user (or "nobody" where there is none), and when that user cannot reach home/pg
// (for example because home is under /root, mode 700) the data directory is
// /var/lib/erpctl/clusters/<first 12 hex digits of sha256(absolute home)> instead. Removing the home
// does not remove that directory; a home made again at the same path has no password for the
// cluster in it, which Ensure reports as ErrForeignDataDir, and Destroy removes.
//
// Environment:
//
//	ERPCTL_HOME        the home directory (DefaultHome)
//	ERPCTL_PG_BINDIR   the only directory searched for initdb, pg_ctl and postgres; without it they are
//	                   looked for in `pg_config --bindir`, the newest /usr/lib/postgresql/*/bin, then PATH
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoPostgres is returned (wrapped) when no PostgreSQL server binaries can be found.
var ErrNoPostgres = errors.New("PostgreSQL server binaries not found: install them with `apt-get install postgresql` (or your system's equivalent) or set ERPCTL_DATABASE_URL")

// ErrForeignDataDir is returned (wrapped) when the data directory holds a cluster its home has no
// password for: as root, one left under /var/lib/erpctl/clusters by an earlier home at the same
// path that was removed (rm -rf $ERPCTL_HOME does not reach it).
var ErrForeignDataDir = errors.New("the data directory does not belong to this home")

// Superuser is the database superuser of the cluster; its password is in home/pg.password. erpctl
// itself does not use it (see Role); it is there for maintenance.
const Superuser = "postgres"

// Role is the role erpctl connects as: it may log in and owns database DefaultDatabase, and it is
// no superuser and may not create roles or databases, so that nothing it runs (module text
// included) can reach the operating system (COPY ... TO PROGRAM, untrusted languages, ALTER
// SYSTEM) or another role's data. Its password is in home/pg.erpctl.password.
const Role = "erpctl"

// DefaultDatabase is the database Ensure creates.
const DefaultDatabase = "erpctl"

const (
	dataDirName      = "pg"
	dataDirFile      = "pg.datadir"
	portFile         = "pg.port"
	passwordFile     = "pg.password"
	rolePassFile     = "pg.erpctl.password"
	lockFileName     = "pg.lock"
	logFileName      = "postgresql.log"
	relocatedParent  = "/var/lib/erpctl/clusters"
	startTimeout     = 120 * time.Second
	pingTimeout      = 3 * time.Second
	readyTimeout     = 30 * time.Second
	maxLogSize       = 16 << 20
	startPortRetries = 3
)

// Options tune a cluster. The zero value is what erpctl itself uses.
type Options struct {
	// Ephemeral trades durability for speed (initdb --no-sync; fsync, full_page_writes and
	// synchronous_commit off; small shared_buffers). Only for throwaway clusters such as tests'.
	Ephemeral bool
	// BinDir, when set, is the only directory searched for initdb, pg_ctl and postgres
	// (it takes precedence over ERPCTL_PG_BINDIR).
	BinDir string
}

// Cluster is a private PostgreSQL cluster living under a home directory.
// Its methods may be called from several goroutines.
type Cluster struct {
	// Home is the absolute home directory.
	Home string
	// DataDir is the PostgreSQL data directory.
	DataDir string

	opts  Options
	ru    *runAs // the user the server runs as when we are root; nil to run as ourselves
	ruErr error  // why there is no usable user to run as, when we are root

	mu       sync.Mutex
	port     int
	password string
	rolePass string
}

// Status describes a cluster.
type Status struct {
	Initialized bool   // the data directory holds an initialised cluster
	Running     bool   // the server process is alive and accepts connections
	PID         int    // the postmaster's pid when its process is alive, else 0
	Port        int    // the port it listens on (or will listen on, when recorded)
	DataDir     string // the data directory
	Version     string // the server's version when running, else the binaries' (or the data directory's)
	BinDir      string // where the server binaries were found; empty when none were
}

// DefaultHome returns $ERPCTL_HOME or ~/.local/share/erpctl.
func DefaultHome() string {
	if h := os.Getenv("ERPCTL_HOME"); h != "" {
		return h
	}
	if dir, err := os.UserHomeDir(); err == nil {
		return filepath.Join(dir, ".local", "share", "erpctl")
	}
	return filepath.Join(os.TempDir(), "erpctl")
}

// Open returns the cluster of home (does not start anything). home is e.g. $ERPCTL_HOME.
func Open(home string) *Cluster {
	return OpenWithOptions(home, Options{})
}

// OpenWithOptions is Open with options.
func OpenWithOptions(home string, opts Options) *Cluster {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	c := &Cluster{Home: home, opts: opts}
	c.ru, c.ruErr = serverUser()
	c.DataDir = resolveDataDir(home, c.ru)
	return c
}

// URL returns a postgres:// DSN for database db on the cluster as Role (TCP 127.0.0.1:port, user
// erpctl and its password): what erpctl and `erpctl db url` use. It is meaningful once Ensure has
// succeeded (in this or another process).
func (c *Cluster) URL(db string) string {
	return c.dsn(Role, c.readRolePassword(), db)
}

// AdminURL returns a postgres:// DSN for database db as the superuser, for maintenance and for
// what only a superuser may do once (see controlplane.Config.AdminURL).
func (c *Cluster) AdminURL(db string) string {
	return c.dsn(Superuser, c.readPassword(), db)
}

func (c *Cluster) dsn(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.currentPort())),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Ensure initialises (initdb, once) and starts the cluster if it is not running, and returns once it
// accepts connections; if it is already running (this or another process started it) it just
// returns. Concurrent callers, in this or other processes, serialise on a lock file in the home
// directory and end up with one server. It creates role "erpctl" and database "erpctl", owned by
// it, if missing, and hands a database of an earlier erpctl (owned by the superuser) to the role.
func (c *Cluster) Ensure(ctx context.Context) error {
	// Fast path: running, and the role owns the database.
	if pid, port, ok := c.readPidFile(); ok && processAlive(pid) {
		if err := c.pingOwner(ctx, port); err == nil {
			c.setPort(port)
			return nil
		}
	}
	if err := c.ensure(ctx); err != nil {
		return fmt.Errorf("start embedded PostgreSQL in %s: %w", c.DataDir, err)
	}
	return nil
}

func (c *Cluster) ensure(ctx context.Context) error {
	if c.ruErr != nil {
		return c.ruErr
	}
	if err := os.MkdirAll(c.Home, 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(c.Home, lockFileName))
	if err != nil {
		return fmt.Errorf("lock %s: %w", filepath.Join(c.Home, lockFileName), err)
	}
	defer unlock()

	if c.initialized() && c.readPassword() == "" {
		// initdb writes the password into the home before the cluster into place: a cluster
		// without one is not this home's, and every connection would fail authentication.
		return c.foreign("it holds a cluster that " + c.Home + " has no password for (no pg.password), left by an earlier home at that path")
	}
	if err := c.recordDataDir(); err != nil {
		return err
	}

	// Someone may have started it while we waited for the lock.
	if pid, port, ok := c.readPidFile(); ok {
		if isServerProcess(pid, c.DataDir) {
			err := c.waitReady(ctx, port, pid)
			if err == nil {
				c.setPort(port)
				return c.provision(ctx, port)
			}
			if isAuthFailure(err) {
				return c.foreign("the cluster running there refuses the password in " + filepath.Join(c.Home, passwordFile))
			}
			if !errors.Is(err, errServerGone) {
				return fmt.Errorf("server is running (pid %d) but does not accept connections on 127.0.0.1:%d: %w (server log: %s)", pid, port, err, c.logPath())
			}
			// It died while we waited: start it anew.
		}
		if pidExists(pid) {
			if err := c.removeStalePidFile(ctx, pid); err != nil {
				return err
			}
		}
		// A pid file naming no process at all is left to PostgreSQL, which also checks that no
		// orphaned server process still uses the old shared memory.
	}

	bins, err := findBinaries(ctx, c.opts.BinDir, c.DataDir)
	if err != nil {
		return err
	}
	if !c.initialized() {
		if err := c.initdb(ctx, bins); err != nil {
			return err
		}
	}
	port, err := c.start(ctx, bins)
	if err != nil {
		return err
	}
	pid, _, _ := c.readPidFile()
	if err := c.waitReady(ctx, port, pid); err != nil {
		if isAuthFailure(err) {
			return c.foreign("the cluster there refuses the password in " + filepath.Join(c.Home, passwordFile))
		}
		return fmt.Errorf("server started but does not accept connections on 127.0.0.1:%d: %w (server log: %s)", port, err, c.logPath())
	}
	return c.provision(ctx, port)
}

// foreign is ErrForeignDataDir with why, and the way out.
func (c *Cluster) foreign(why string) error {
	return fmt.Errorf("%w: %s; remove that cluster and its data with `erpctl db destroy --yes`, or set ERPCTL_HOME to another directory",
		ErrForeignDataDir, why)
}

// isAuthFailure reports whether err is the server refusing a password (28P01).
func isAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}

// removeStalePidFile removes a pid file that names a zombie (a crashed postmaster not reaped, as
// under a container init that does not reap) or a live process that is not this server (the pid was
// reused after a crash or a reboot): PostgreSQL itself would refuse to start while that process
// exists. Before that it waits for the crashed server's remaining processes to exit, as PostgreSQL's
// own shared-memory check would otherwise be skipped.
func (c *Cluster) removeStalePidFile(ctx context.Context, pid int) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		pids, ok := serverProcessesIn(c.DataDir)
		if !ok {
			return nil // cannot tell: leave it to PostgreSQL
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server that wrote postmaster.pid (pid %d) is gone but its processes %v still run in the data directory", pid, pids)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if err := os.Remove(filepath.Join(c.DataDir, "postmaster.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale pid file: %w", err)
	}
	return nil
}

// Stop stops the server (pg_ctl stop -m fast) if it is running; it is no error if it is not.
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.stop(ctx); err != nil {
		return fmt.Errorf("stop embedded PostgreSQL in %s: %w", c.DataDir, err)
	}
	return nil
}

func (c *Cluster) stop(ctx context.Context) error {
	pid, _, ok := c.readPidFile()
	if !ok || !isServerProcess(pid, c.DataDir) {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(c.Home, lockFileName))
	if err != nil {
		return fmt.Errorf("lock %s: %w", filepath.Join(c.Home, lockFileName), err)
	}
	defer unlock()
	pid, _, ok = c.readPidFile()
	if !ok || !isServerProcess(pid, c.DataDir) {
		return nil
	}
	if bins, err := findBinaries(ctx, c.opts.BinDir, c.DataDir); err == nil && c.ruErr == nil {
		cmd := c.command(ctx, bins.pgctl, "stop", "-D", c.DataDir, "-m", "fast", "-w", "-t", strconv.Itoa(int(startTimeout.Seconds())))
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if p, _, ok := c.readPidFile(); !ok || !processAlive(p) {
			return nil // it stopped after all
		}
		return fmt.Errorf("pg_ctl stop: %w: %s (server log: %s)", err, toolReason(string(out)), c.logPath())
	}
	// No binaries (uninstalled since?): a fast shutdown is SIGINT to the postmaster.
	if err := interruptProcess(pid); err != nil {
		return fmt.Errorf("signal postmaster (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(startTimeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("postmaster (pid %d) did not exit within %s", pid, startTimeout)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// Status reports whether the cluster is initialised and running, its pid, port, data directory,
// version and binary directory.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	st := Status{DataDir: c.DataDir, Initialized: c.initialized()}
	bins, binErr := findBinaries(ctx, c.opts.BinDir, c.DataDir)
	if binErr == nil {
		st.BinDir = bins.dir
	}
	if pid, port, ok := c.readPidFile(); ok && isServerProcess(pid, c.DataDir) {
		st.PID, st.Port = pid, port
		cctx, cancel := context.WithTimeout(ctx, pingTimeout)
		defer cancel()
		if conn, err := c.connect(cctx, port, "postgres"); err == nil {
			st.Running = true
			_ = conn.QueryRow(cctx, "SELECT current_setting('server_version')").Scan(&st.Version)
			_ = conn.Close(cctx)
		}
	}
	if st.Port == 0 {
		st.Port = c.recordedPort()
	}
	if st.Version == "" && binErr == nil {
		st.Version = bins.version(ctx)
	}
	if st.Version == "" {
		st.Version = c.dataVersion()
	}
	return st, nil
}

// initialized reports whether the data directory holds a cluster.
func (c *Cluster) initialized() bool {
	_, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION"))
	return err == nil
}

func (c *Cluster) dataVersion() string {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "PG_VERSION"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readPidFile reads postmaster.pid: its first line is the pid, its fourth the port.
func (c *Cluster) readPidFile() (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, port, true
}

func (c *Cluster) setPort(port int) {
	c.mu.Lock()
	c.port = port
	c.mu.Unlock()
}

// currentPort is the running server's port, else the last one seen, else the recorded one.
func (c *Cluster) currentPort() int {
	if pid, port, ok := c.readPidFile(); ok && processAlive(pid) {
		return port
	}
	c.mu.Lock()
	port := c.port
	c.mu.Unlock()
	if port != 0 {
		return port
	}
	return c.recordedPort()
}

func (c *Cluster) recordedPort() int {
	b, err := os.ReadFile(filepath.Join(c.Home, portFile))
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return port
}

func (c *Cluster) readPassword() string { return c.readSecret(&c.password, passwordFile) }

// readSecret returns *cached, reading it first from file in the home when it is still empty.
func (c *Cluster) readSecret(cached *string, file string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *cached == "" {
		if b, err := os.ReadFile(filepath.Join(c.Home, file)); err == nil {
			*cached = strings.TrimSpace(string(b))
		}
	}
	return *cached
}

func (c *Cluster) connect(ctx context.Context, port int, db string) (*pgx.Conn, error) {
	return c.connectAs(ctx, port, db, Superuser, c.readPassword())
}

func (c *Cluster) connectAs(ctx context.Context, port int, db, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host = "127.0.0.1"
	cfg.Port = uint16(port)
	cfg.User = user
	cfg.Password = password
	cfg.Database = db
	// Ignore what PG* variables may have set for other servers.
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	cfg.ValidateConnect = nil
	cfg.ConnectTimeout = pingTimeout
	cfg.RuntimeParams = map[string]string{"application_name": "erpctl"}
	return pgx.ConnectConfig(ctx, cfg)
}

func (c *Cluster) ping(ctx context.Context, port int, db string) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := c.connect(ctx, port, db)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

var errNotOwner = errors.New("the erpctl role does not own the erpctl database yet")

// pingOwner checks that Role can connect to DefaultDatabase and owns it: then there is nothing to
// provision.
func (c *Cluster) pingOwner(ctx context.Context, port int) error {
	pw := c.readRolePassword()
	if pw == "" {
		return errNotOwner
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := c.connectAs(ctx, port, DefaultDatabase, Role, pw)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var owner bool
	if err := conn.QueryRow(ctx, `SELECT datdba = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
		FROM pg_catalog.pg_database WHERE datname = current_database()`).Scan(&owner); err != nil {
		return err
	}
	if !owner {
		return errNotOwner
	}
	return nil
}

var errServerGone = errors.New("the server process exited")

// waitReady waits until the server on port, whose postmaster is pid, accepts connections. A server
// that answers with an error other than "starting up", or exits, is not waited for.
func (c *Cluster) waitReady(ctx context.Context, port, pid int) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := c.ping(ctx, port, "postgres")
		if err == nil {
			return nil
		}
		if !processAlive(pid) {
			return errServerGone
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" { // cannot_connect_now
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// command prepares one of the server binaries to run as the server user, in a session of its own
// (a server it starts survives us and our terminal's signals), with a clean environment.
func (c *Cluster) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = sysProcAttr(c.ru)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// cleanEnv is our environment without the libpq variables (PGDATA, PGPORT, ...) and in the C locale
// for messages, so the tools' output and logs are predictable.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

func (c *Cluster) logPath() string { return filepath.Join(c.DataDir, logFileName) }

// logReason is the message of the last FATAL or PANIC line the server logged from offset on, ""
// when there is none: the reason a start failed, in one line, where the log has the rest.
func (c *Cluster) logReason(offset int64) string {
	reason := ""
	for _, line := range strings.Split(c.logSince(offset), "\n") {
		for _, level := range []string{"FATAL:", "PANIC:"} {
			if _, msg, ok := strings.Cut(line, level); ok {
				reason = strings.TrimSpace(msg)
			}
		}
	}
	return reason
}

// logSince returns the server log from offset on, at most its last 30 lines; "" when there is
// nothing.
func (c *Cluster) logSince(offset int64) string {
	f, err := os.Open(filepath.Join(c.DataDir, logFileName))
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxBytes = 8 << 10
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if fi.Size()-offset > maxBytes {
		offset = fi.Size() - maxBytes
	}
	buf := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(buf, offset)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WithDatabase returns the postgres:// URL u with its database replaced by db.
func WithDatabase(u, db string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") {
		return "", errors.New("not a postgres:// URL")
	}
	parsed.Path = "/" + db
	parsed.RawPath = ""
	return parsed.String(), nil
}
