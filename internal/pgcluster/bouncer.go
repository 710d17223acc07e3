package pgcluster

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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bouncer is a throwaway PgBouncer in transaction mode in front of a server, the way operators
// put one in front of PostgreSQL, for tests and benchmarks: each transaction may run on another
// server connection, and nothing of a session (prepared statements, SET, LISTEN) outlives it.
type Bouncer struct {
	Addr   string // host:port it listens on
	cmd    *exec.Cmd
	exited chan error // cmd.Wait's result
	dir    string
}

// ErrNoPgBouncer is returned (wrapped) when no pgbouncer binary can be found.
var ErrNoPgBouncer = errors.New("pgbouncer not found: install Debian's pgbouncer package")

// StartBouncer starts a PgBouncer in front of the server of superURL, a superuser's URL. It logs
// clients in with SCRAM against the server's own password hashes (auth_query as that
// superuser), so any role with a password may log in through it. Stop stops it.
func StartBouncer(superURL string) (*Bouncer, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pgbouncer"); serr != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNoPgBouncer, err)
		}
		bin = "/usr/sbin/pgbouncer" // Debian's, off a non-root PATH
	}
	server, err := neturl.Parse(superURL)
	if err != nil {
		return nil, err
	}
	ru, err := serverUser()
	if err != nil {
		return nil, err
	}
	attr := sysProcAttr(ru)
	setParentDeathSignal(attr)
	dir, err := os.MkdirTemp("", "erpctl-pgbouncer-")
	if err != nil {
		return nil, err
	}
	// As root PgBouncer runs as the server's user, which must read its files.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	password, _ := server.User.Password()
	userlist := fmt.Sprintf("%q %q\n", server.User.Username(), password)
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port taken between the probe and PgBouncer's bind makes it exit: try another.
	for range 3 {
		var b *Bouncer
		if b, err = runBouncer(bin, dir, attr, server); err == nil {
			return b, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// URL is u (a URL of the same server) through the PgBouncer.
func (b *Bouncer) URL(u string) (string, error) {
	p, err := neturl.Parse(u)
	if err != nil {
		return "", err
	}
	p.Host = b.Addr
	return p.String(), nil
}

// Stop stops the PgBouncer and removes its files.
func (b *Bouncer) Stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	os.RemoveAll(b.dir)
}

// BouncerPoolSize is how many server connections the PgBouncer keeps per database and user: few,
// so that the transactions of different clients share them.
const BouncerPoolSize = 8

func runBouncer(bin, dir string, attr *syscall.SysProcAttr, server *neturl.URL) (*Bouncer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
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
		fmt.Sprintf("default_pool_size = %d", BouncerPoolSize),
		"",
	}, "\n")
	path := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	// Its log goes to stderr, a file opened here: the server's user may not write in dir.
	log, err := os.Create(filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, path)
	cmd.SysProcAttr = attr
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		return nil, err
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
			return &Bouncer{Addr: addr, cmd: cmd, exited: exited, dir: dir}, nil
		}
		select {
		case werr := <-exited:
			out, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("pgbouncer exited (%v): %s", werr, lastLines(string(out), 5))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("pgbouncer on %s accepts no connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort is a port on 127.0.0.1 that nothing listens on now.
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
