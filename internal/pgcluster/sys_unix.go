//go:build unix

package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock on path, waiting for it (until ctx is done), and returns the
// function that releases it. The descriptor is close-on-exec, so a server we start does not inherit it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		if err := sleepCtx(ctx, 25*time.Millisecond); err != nil {
			f.Close()
			return nil, err
		}
	}
}

// sysProcAttr puts a child in a session of its own and, when ru is set, runs it as that user.
func sysProcAttr(ru *runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true}
	if ru != nil {
		a.Credential = &syscall.Credential{Uid: ru.uid, Gid: ru.gid, Groups: ru.groups}
	}
	return a
}

// pidExists reports whether kill(pid, 0) finds a process, zombies included.
func pidExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processAlive reports whether a process with this pid exists and is not a zombie (a crashed
// postmaster whose parent, after pg_ctl exited, is an init that does not reap, as in containers).
func processAlive(pid int) bool {
	if !pidExists(pid) {
		return false
	}
	// /proc/PID/stat is "pid (comm) state ...", and comm may hold spaces or parentheses.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		if state := b[i+2]; state == 'Z' || state == 'X' {
			return false
		}
	}
	return true
}

// haveProc reports whether /proc tells processes' working directories.
func haveProc() bool {
	_, err := os.Readlink("/proc/self/cwd")
	return err == nil
}

// isServerProcess reports whether the live process pid is a PostgreSQL process working in dataDir
// (PostgreSQL's processes change to their data directory). Where /proc cannot tell, any live
// process is assumed to be. A process whose directory we may not read is not ours: our server runs
// as ourselves, or, when we are root, is readable anyway.
func isServerProcess(pid int, dataDir string) bool {
	if !processAlive(pid) {
		return false
	}
	if !haveProc() {
		return true
	}
	real, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return false
	}
	return isServerProcessIn(strconv.Itoa(pid), real)
}

func isServerProcessIn(pid, realDataDir string) bool {
	comm, err := os.ReadFile("/proc/" + pid + "/comm")
	if err != nil {
		return false
	}
	if c := strings.TrimSpace(string(comm)); c != "postgres" && c != "postmaster" {
		return false
	}
	cwd, err := os.Readlink("/proc/" + pid + "/cwd")
	return err == nil && cwd == realDataDir
}

// serverProcessesIn returns the live PostgreSQL processes working in dataDir, or ok false where /proc
// cannot tell.
func serverProcessesIn(dataDir string) (pids []int, ok bool) {
	if !haveProc() {
		return nil, false
	}
	real, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return nil, false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if isServerProcessIn(e.Name(), real) && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, true
}

// interruptProcess asks a postmaster for a fast shutdown.
func interruptProcess(pid int) error {
	return syscall.Kill(pid, syscall.SIGINT)
}

func fileOwner(fi fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}

// serverFiles is the max_files_per_process a server we start is given, after making sure it
// inherits an open-files limit that allows as many; 0 leaves PostgreSQL's default (1,000).
//
// A backend keeps open a file for each relation it has touched, up to max_files_per_process,
// then closes the least recently used for each new one. A data API connection serving 1,250
// tenants touches about 5,000 files for one table of each (the heap and its indexes): at the
// default, a request of a spread over the fleet cost its backend three or four open, seek and
// close calls (strace), which a backend with room for its tenants' files does not make.
//
// Go raises its own soft limit at start but gives children the original one (1,024 on many
// systems), unless the program sets the limit itself: Setrlimit here, even with the values Go
// chose, makes every child this process starts from then on (the server, PgBouncer) inherit them.
//
// At most 10,000, and a 200th of the system's open files (fs.file-max), so that max_connections
// backends at their limit cannot take the whole system's.
func serverFiles() int {
	b, err := os.ReadFile("/proc/sys/fs/file-max")
	if err != nil {
		return 0
	}
	fileMax, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	n := min(maxServerFiles, fileMax/200)
	if n <= defaultServerFiles {
		return 0
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	// The server's own descriptors (sockets, logs, WAL) come on top of its relations'.
	if want := n + serverFilesSlack; lim.Cur < want {
		lim.Cur = min(want, lim.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur <= defaultServerFiles+serverFilesSlack {
		return 0
	}
	return int(min(n, lim.Cur-serverFilesSlack))
}

const (
	maxServerFiles     = 10000
	defaultServerFiles = 1000 // PostgreSQL's max_files_per_process
	serverFilesSlack   = 100
)
