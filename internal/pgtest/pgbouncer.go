package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// The PgBouncer of this test binary, started by the first Pooled call and stopped by Main.
var bouncer struct {
	once   sync.Once
	addr   string // host:port it listens on
	err    error
	cmd    *exec.Cmd
	exited chan error // cmd.Wait's result
	dir    string
}

// Pooled returns url (one of NewDB's or NewOwnedDB's) as reached through PgBouncer in transaction
// mode, the way operators put one in front of PostgreSQL: each transaction may run on another
// server connection, and nothing of a session (prepared statements, SET, LISTEN) outlives it.
// The test binary's one PgBouncer starts on first use. Without a pgbouncer binary the test is
// skipped, unless CI is set: there `make test` has installed it, so its absence is a failure.
func Pooled(t testing.TB, url string) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no test server: call pgtest.Main from TestMain")
	}
	bouncer.once.Do(func() { bouncer.err = startPgBouncer() })
	if errors.Is(bouncer.err, exec.ErrNotFound) && os.Getenv("CI") == "" {
		t.Skipf("pgtest: %v (install Debian's pgbouncer package to run this test)", bouncer.err)
	}
	if bouncer.err != nil {
		t.Fatalf("pgtest: start PgBouncer: %v", bouncer.err)
	}
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Host = bouncer.addr
	return u.String()
}

// stopPgBouncer stops the PgBouncer if one was started and removes its files.
func stopPgBouncer() {
	if bouncer.cmd == nil {
		return
	}
	_ = bouncer.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-bouncer.exited:
	case <-time.After(10 * time.Second):
		_ = bouncer.cmd.Process.Kill()
		<-bouncer.exited
	}
	os.RemoveAll(bouncer.dir)
}

// startPgBouncer starts PgBouncer in front of the test server. It logs clients in with SCRAM
// against the server's own password hashes (auth_query as the superuser), so that the roles
// tests make need no list of their own.
func startPgBouncer() error {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			return err
		}
		bin = "/usr/sbin/pgbouncer" // Debian's, off a non-root PATH
	}
	server, err := neturl.Parse(adminURL)
	if err != nil {
		return err
	}
	attr, err := pgcluster.ServerProcAttr()
	if err != nil {
		return err
	}
	setParentDeathSignal(attr)
	dir, err := os.MkdirTemp("", "erpctl-pgbouncer-")
	if err != nil {
		return err
	}
	// As root PgBouncer runs as the server's user, which must read its files.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return err
	}
	password, _ := server.User.Password()
	userlist := fmt.Sprintf("%q %q\n", server.User.Username(), password)
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist), 0o644); err != nil {
		os.RemoveAll(dir)
		return err
	}
	// A port taken between the probe and PgBouncer's bind makes it exit: try another.
	for range 3 {
		if err = runPgBouncer(bin, dir, attr, server); err == nil {
			bouncer.dir = dir
			return nil
		}
	}
	os.RemoveAll(dir)
	return err
}

func runPgBouncer(bin, dir string, attr *syscall.SysProcAttr, server *neturl.URL) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ini := strings.Join([]string{
		"[databases]",
		fmt.Sprintf("* = host=%s port=%s", server.Hostname(), server.Port()),
		"[pgbouncer]",
		"listen_addr = 127.0.0.1",
		fmt.Sprintf("listen_port = %d", port),
		"unix_socket_dir =",
		"pool_mode = transaction",
		"auth_type = scram-sha-256",
		"auth_file = " + filepath.Join(dir, "userlist.txt"),
		"auth_user = " + server.User.Username(),
		"auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1",
		"max_client_conn = 2000",
		// Few server connections per database, so that tests see transactions of different
		// clients share them.
		"default_pool_size = 8",
		"",
	}, "\n")
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		return err
	}
	// Its log goes to stderr, a file opened here: the server's user may not write in dir.
	log, err := os.Create(filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(bin, path)
	cmd.SysProcAttr = attr
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	probe := *server
	probe.Host = addr
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, probe.String())
		if err == nil {
			conn.Close(ctx)
			bouncer.addr, bouncer.cmd, bouncer.exited = addr, cmd, exited
			return nil
		}
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(log.Name())
			return fmt.Errorf("pgbouncer exited (%v): %s", werr, lastLines(string(out), 5))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("pgbouncer on %s accepts no connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
