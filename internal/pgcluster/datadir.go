package pgcluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// runAs is the unprivileged user the server runs as when we are root.
type runAs struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// serverUser returns the user to run the server binaries as: nil (ourselves) unless we are root, then
// "postgres", or "nobody" where there is no such user.
func serverUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		ru := &runAs{name: name, uid: uint32(uid), gid: uint32(gid)}
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil {
					ru.groups = append(ru.groups, uint32(g))
				}
			}
		}
		return ru, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root and there is neither a postgres nor a nobody user to run it as")
}

// resolveDataDir decides where the data directory of home is: where home/pg.datadir says; else
// home/pg, unless we are root and the server user cannot reach it, then under /var/lib/erpctl/clusters.
func resolveDataDir(home string, ru *runAs) string {
	if recorded := readTrim(filepath.Join(home, dataDirFile)); recorded != "" {
		return recorded
	}
	def := filepath.Join(home, dataDirName)
	if ru == nil {
		return def
	}
	if _, err := os.Stat(filepath.Join(def, "PG_VERSION")); err == nil {
		return def
	}
	if ru.canTraverse(home) {
		return def
	}
	sum := sha256.Sum256([]byte(home))
	return filepath.Join(relocatedParent, hex.EncodeToString(sum[:])[:12])
}

// canTraverse reports whether the user may search dir and each of its ancestors (by mode bits; a
// missing directory counts as not traversable, since we would create it private).
func (ru *runAs) canTraverse(dir string) bool {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			return false
		}
		uid, gid, ok := fileOwner(fi)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		switch {
		case uid == ru.uid:
			if perm&0o100 == 0 {
				return false
			}
		case gid == ru.gid || containsU32(ru.groups, gid):
			if perm&0o010 == 0 {
				return false
			}
		default:
			if perm&0o001 == 0 {
				return false
			}
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// recordDataDir writes the data directory's location into home (once).
func (c *Cluster) recordDataDir() error {
	path := filepath.Join(c.Home, dataDirFile)
	if readTrim(path) == c.DataDir {
		return nil
	}
	if err := writeFileAtomic(path, []byte(c.DataDir+"\n"), 0o644); err != nil {
		return fmt.Errorf("record data directory: %w", err)
	}
	return nil
}

// initdb creates the cluster: into a scratch directory next to the data directory, renamed into place
// when complete, so that an interrupted initdb leaves nothing half-made behind.
func (c *Cluster) initdb(ctx context.Context, bins binaries) error {
	parent := filepath.Dir(c.DataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if entries, err := os.ReadDir(c.DataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away", c.DataDir)
	}
	scratch := c.DataDir + ".initdb"
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("remove leftover %s: %w", scratch, err)
	}
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", scratch, err)
	}
	defer os.RemoveAll(scratch)
	if err := c.chown(scratch); err != nil {
		return err
	}

	password, err := newPassword()
	if err != nil {
		return err
	}
	// initdb reads the password from a file that the server user can read; it lives only as long as initdb.
	pwfile := filepath.Join(parent, "."+filepath.Base(c.DataDir)+".pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(pwfile)
	if err := c.chown(pwfile); err != nil {
		return err
	}

	args := []string{
		"-D", scratch, "-U", Superuser, "--pwfile=" + pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
	}
	if c.opts.Ephemeral {
		args = append(args, "--no-sync")
	}
	// C collation (fast, stable across libc upgrades) with UTF-8 character classes where the C.UTF-8
	// locale exists, so that upper(), lower() and ILIKE know non-ASCII letters.
	out, err := c.command(ctx, bins.initdb, append(args, "--locale=C", "--lc-ctype=C.UTF-8")...).CombinedOutput()
	if err != nil && strings.Contains(string(out), "locale") {
		_ = os.RemoveAll(scratch)
		if err := os.Mkdir(scratch, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", scratch, err)
		}
		if err := c.chown(scratch); err != nil {
			return err
		}
		out, err = c.command(ctx, bins.initdb, append(args, "--locale=C")...).CombinedOutput()
	}
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, toolReason(string(out)))
	}

	conf, err := os.OpenFile(filepath.Join(scratch, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	_, werr := conf.WriteString(c.settings())
	if cerr := conf.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("configure: %w", werr)
	}

	// The password first: an initialised cluster always has its password file.
	if err := writeFileAtomic(filepath.Join(c.Home, passwordFile), []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	c.mu.Lock()
	c.password = password
	c.mu.Unlock()
	if err := os.Rename(scratch, c.DataDir); err != nil {
		return fmt.Errorf("move the new cluster into place: %w", err)
	}
	return nil
}

// settings are appended to postgresql.conf at initdb. The port is given at each start instead.
func (c *Cluster) settings() string {
	s := `
# Added by erpctl (internal/pgcluster). The port is passed on the command line.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''	# TCP only: no socket path length limits, no /tmp litter
max_connections = 200
`
	if c.opts.Ephemeral {
		s += `# Throwaway cluster: speed over durability.
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = 32MB
`
		return s
	}
	s += fmt.Sprintf("shared_buffers = %dMB\t# a quarter of the memory erpctl found, within 128MB..4GB; ALTER SYSTEM overrides it\n",
		sharedBuffersMB(memoryBytes()))
	return s
}

// sharedBuffersMB is the shared_buffers of a cluster on a machine with mem bytes of memory (0:
// unknown): a quarter of it, as PostgreSQL's documentation advises for a dedicated server, within
// PostgreSQL's default of 128MB and 4GB. A data API serving thousands of tenants reads a few
// pages of each tenant's tables and indexes; with 10,000 tenants that is several hundred
// megabytes, and at 128MB every request went to the kernel for pages it had just read.
func sharedBuffersMB(mem uint64) uint64 {
	return min(max(mem/4>>20, 128), 4096)
}

// memoryBytes is the memory this process may use: the machine's, or its cgroup's limit when
// lower; 0 when neither can be read.
func memoryBytes() uint64 {
	var mem uint64
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					mem = kb << 10
				}
			}
		}
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if raw, err := os.ReadFile(path); err == nil {
			if limit, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err == nil && limit > 0 && (mem == 0 || limit < mem) {
				mem = limit
			}
		}
	}
	return mem
}

func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// chown gives path to the server user (when we are root).
func (c *Cluster) chown(path string) error {
	if c.ru == nil {
		return nil
	}
	if err := os.Chown(path, int(c.ru.uid), int(c.ru.gid)); err != nil {
		return fmt.Errorf("give %s to user %s: %w", path, c.ru.name, err)
	}
	return nil
}

// choosePort returns the recorded port if it is free, else a new free port, which it records.
func (c *Cluster) choosePort(avoid int) (int, error) {
	if p := c.recordedPort(); p > 0 && p != avoid && portFree(p) {
		return p, nil
	}
	p, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.Home, portFile), []byte(strconv.Itoa(p)+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("record port: %w", err)
	}
	return p, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// start starts the server with pg_ctl and waits until it is ready, picking another port when the
// chosen one turns out to be taken.
func (c *Cluster) start(ctx context.Context, bins binaries) (int, error) {
	logPath := filepath.Join(c.DataDir, logFileName)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".1")
	}
	opts := ""
	if n := serverFiles(); n > 0 {
		// On the command line rather than in postgresql.conf: it depends on the limits of the
		// machine the server starts on, and it reaches clusters made by earlier erpctls.
		opts = " -c max_files_per_process=" + strconv.Itoa(n)
	}
	avoid := 0
	for attempt := 1; ; attempt++ {
		port, err := c.choosePort(avoid)
		if err != nil {
			return 0, err
		}
		var offset int64
		if fi, err := os.Stat(logPath); err == nil {
			offset = fi.Size()
		}
		cmd := c.command(ctx, bins.pgctl, "start", "-D", c.DataDir, "-w",
			"-t", strconv.Itoa(int(startTimeout.Seconds())), "-l", logPath, "-o", "-p "+strconv.Itoa(port)+opts)
		out, err := cmd.CombinedOutput()
		if err == nil {
			c.setPort(port)
			return port, nil
		}
		tail := c.logSince(offset)
		if attempt < startPortRetries && ctx.Err() == nil &&
			(strings.Contains(tail, "could not bind") || strings.Contains(tail, "could not create any TCP/IP sockets")) {
			avoid = port
			continue
		}
		// One sentence: the server's own reason when it logged one, and where the log is.
		reason := c.logReason(offset)
		if reason == "" {
			reason = toolReason(string(out))
		}
		return 0, fmt.Errorf("pg_ctl start: %w: %s (server log: %s)", err, reason, logPath)
	}
}

// toolReason is the line of a server tool's output that says why it failed: the last that
// reports an error, else the last line.
func toolReason(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(strings.ToLower(lines[i]), "error") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
