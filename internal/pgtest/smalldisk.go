package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// SmallDisk is a disk of the test's own that it can fill: a tmpfs mounted for the test, with a
// tablespace on it. A database made in that tablespace keeps its tables, indexes and system
// catalogs there; the cluster's WAL stays on its own disk. Filled, it behaves as a full disk
// does: a write that needs a new page fails ("could not extend file": 53100), a write that fits
// in a page the database has already goes through.
type SmallDisk struct {
	dir    string // the mount point
	filler string // the file that takes up the free space
}

// NewSmallDiskDB mounts a tmpfs of sizeMB megabytes, makes a tablespace on it and a fresh
// database in that tablespace, and returns the database's URL and the disk; everything is
// dropped and unmounted when the test ends. Mounting needs root (with CAP_SYS_ADMIN) and the
// test cluster on this machine: without them the test is skipped, saying why.
func NewSmallDiskDB(t testing.TB, sizeMB int) (string, *SmallDisk) {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no test server: call pgtest.Main from TestMain")
	}
	if os.Getenv(EnvURL) != "" {
		t.Skip("pgtest: a small disk needs the test binary's own cluster, and " + EnvURL + " names another server")
	}
	if os.Geteuid() != 0 {
		t.Skip("pgtest: mounting a small disk (tmpfs) needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uid, gid, err := serverOwner(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir, err := os.MkdirTemp("", "erpctl-smalldisk-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server's user must reach the tablespace
		t.Fatalf("pgtest: %v", err)
	}
	if err := mountTmpfs(dir, sizeMB); err != nil {
		t.Skipf("pgtest: cannot mount a small disk (tmpfs) at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("pgtest: unmount %s: %v", dir, err)
		}
	})
	d := &SmallDisk{dir: dir, filler: filepath.Join(dir, "filler")}
	t.Cleanup(func() { os.Remove(d.filler) })
	loc := filepath.Join(dir, "ts")
	if err := os.Mkdir(loc, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.Chown(loc, uid, gid); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := dbName(t.Name())
	ts, db := pgx.Identifier{name}.Sanitize(), pgx.Identifier{name}.Sanitize()
	if err := adminExec(ctx, "CREATE TABLESPACE "+ts+" LOCATION '"+loc+"'"); err != nil {
		t.Fatalf("pgtest: create tablespace on the small disk: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, "DROP TABLESPACE IF EXISTS "+ts); err != nil {
			t.Errorf("pgtest: drop tablespace %s: %v", name, err)
		}
	})
	// FILE_COPY writes every file of the new database out at once; the default (WAL_LOG) leaves
	// pages in shared buffers that the disk has no room for once filled, and every checkpoint of
	// the cluster then fails, and with it other tests' CREATE and DROP DATABASE.
	if err := adminExec(ctx, "CREATE DATABASE "+db+" TABLESPACE "+ts+" STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database %s on the small disk: %v", name, err)
	}
	t.Cleanup(func() {
		os.Remove(d.filler) // a full disk would not stop the drop, but free it first all the same
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := pgcluster.WithDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u, d
}

// Fill takes up every free byte of the disk.
func (d *SmallDisk) Fill(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("pgtest: fill the small disk: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for size := len(buf); size >= 512; size /= 2 {
		for {
			if _, err := f.Write(buf[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("pgtest: fill the small disk: %v", err)
				}
				break
			}
		}
	}
}

// Free gives back the space Fill took.
func (d *SmallDisk) Free(t testing.TB) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pgtest: free the small disk: %v", err)
	}
}

// serverOwner is the user and group that own the test server's data directory: the server
// runs as them, and a tablespace's directory must be theirs.
func serverOwner(ctx context.Context) (uid, gid int, err error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, `SHOW data_directory`).Scan(&dataDir); err != nil {
		return 0, 0, fmt.Errorf("read the test server's data directory: %w", err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return 0, 0, fmt.Errorf("the test server's data directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, errors.New("the test server's data directory has no owner here")
	}
	return int(st.Uid), int(st.Gid), nil
}
