// Package pgtest gives tests a PostgreSQL server: one throwaway cluster per test binary and a fresh
// database per test.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDB(t) // an empty database of its own, dropped when the test ends
//		...
//	}
//
// With ERPCTL_TEST_DATABASE_URL set (a postgres:// URL of a superuser, or a user allowed to create
// databases), tests use that server instead of starting their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// EnvURL names the variable that points tests at an existing server.
const EnvURL = "ERPCTL_TEST_DATABASE_URL"

// homePrefix names the temporary homes of test clusters.
const homePrefix = "erpctl-pgtest-"

// The one server of this test binary, set by Main.
var adminURL string

// Main is used as: func TestMain(m *testing.M) { pgtest.Main(m) }
// It starts a throwaway cluster (fsync off) unless ERPCTL_TEST_DATABASE_URL is set (then it uses that
// server), runs the tests, stops and removes the cluster, and exits with m.Run's code.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain that has more to stop once the tests ran: it
// returns the exit code.
func Run(m *testing.M) int {
	if u := os.Getenv(EnvURL); u != "" {
		admin, err := pgcluster.WithDatabase(u, "postgres")
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %s: %v\n", EnvURL, err)
			return 1
		}
		adminURL = admin
		defer stopPgBouncer()
		return m.Run()
	}

	pgcluster.RemoveAbandoned(homePrefix)
	cluster, err := pgcluster.NewThrowaway(homePrefix, pgcluster.Options{Ephemeral: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			stopPgBouncer()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cluster.Remove(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var starting sync.Mutex // held while the cluster starts
	var interrupted atomic.Bool

	// Ctrl-C or a termination: abort a start in progress, stop the server, remove it, go.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		interrupted.Store(true)
		cancel()
		starting.Lock()
		cleanup()
		fmt.Fprintf(os.Stderr, "pgtest: %v: stopped and removed the test cluster\n", s)
		os.Exit(2)
	}()

	starting.Lock()
	err = cluster.Ensure(ctx)
	starting.Unlock()
	if err != nil && interrupted.Load() {
		select {} // the signal handler cleans up and exits
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n(or set %s to a server to test against)\n", err, EnvURL)
		cleanup()
		return 1
	}
	adminURL = cluster.AdminURL("postgres")
	code := m.Run()
	cleanup()
	return code
}

// AdminURL is the URL of the "postgres" maintenance database of the test server. It is "" outside
// a test binary whose TestMain calls Main.
func AdminURL() string { return adminURL }

// NewDB creates a fresh empty database for this test, drops it (WITH (FORCE)) when the test ends, and
// returns its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no test server: call pgtest.Main from TestMain")
	}
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := pgcluster.WithDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// NewOwnedDB is NewDB as the embedded cluster gives it to erpctl: a fresh database owned by a
// role of its own that is no superuser and may not create roles or databases. It returns that
// role's URL and a superuser's URL of the same database (for what only a superuser may do, and
// for looking into it). The role is dropped when the test ends.
func NewOwnedDB(t testing.TB) (url, superURL string) {
	t.Helper()
	if adminURL == "" {
		t.Fatal("pgtest: no test server: call pgtest.Main from TestMain")
	}
	name := dbName(t.Name())
	role := "o_" + name
	secret := make([]byte, 12)
	_, _ = rand.Read(secret)
	password := hex.EncodeToString(secret)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, db := pgx.Identifier{role}.Sanitize(), pgx.Identifier{name}.Sanitize()
	if err := adminExec(ctx, "CREATE ROLE "+r+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '"+password+"'"); err != nil {
		t.Fatalf("pgtest: create role %s: %v", role, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, "DROP ROLE IF EXISTS "+r); err != nil {
			t.Errorf("pgtest: drop role %s: %v", role, err)
		}
	})
	if err := adminExec(ctx, "CREATE DATABASE "+db+" OWNER "+r); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	superURL, err := pgcluster.WithDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u, err := neturl.Parse(superURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.User = neturl.UserPassword(role, password)
	return u.String(), superURL
}

func adminExec(ctx context.Context, sql string) error { return execOn(ctx, adminURL, sql) }

// dbName is "t_", the test's name in lower-case letters, digits and underscores (shortened), and a
// random suffix: unique, and recognisable in pg_database.
func dbName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
				b.WriteByte('_')
			}
		}
		if b.Len() >= 40 {
			break
		}
	}
	suffix := make([]byte, 5)
	_, _ = rand.Read(suffix)
	return "t_" + strings.Trim(b.String(), "_") + "_" + hex.EncodeToString(suffix)
}
