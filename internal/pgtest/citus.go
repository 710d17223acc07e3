package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// EnvCitusURL names the variable that points the tests that run on Citus at a coordinator: a
// superuser's postgres:// URL of a database with the citus extension and its workers added.
// Without it those tests skip; plain PostgreSQL is what every test runs on.
const EnvCitusURL = "ERPCTL_TEST_CITUS_URL"

// CitusURL is the coordinator's URL from EnvCitusURL; it skips the test when that is unset.
func CitusURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvCitusURL)
	if u == "" {
		t.Skip(EnvCitusURL + " is not set: no Citus cluster to test on")
	}
	return u
}

// NewCitusDB makes a fresh Citus cluster database for this test on the cluster of EnvCitusURL
// (skipping the test without it), drops it when the test ends, and returns the coordinator's
// URL of it. Each Citus database is a cluster of its own (its extension, its node metadata), so
// the database is made on the coordinator and on every worker, each gets the extension, and the
// coordinator's copy adds the workers, as the cluster's own database has them.
func NewCitusDB(t testing.TB) string {
	t.Helper()
	base := CitusURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := dbName(t.Name())
	nodes, coord, err := citusNodes(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: read the Citus nodes of %s: %v", EnvCitusURL, err)
	}
	var urls []string // the cluster database of each node, coordinator first
	for _, n := range append([]citusNode{coord}, nodes...) {
		u, err := nodeURL(base, n)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		urls = append(urls, u)
	}
	for _, u := range urls {
		// Off, so that the coordinator makes its own copy only: each node gets its own below.
		if err := execOn(ctx, u, "SET citus.enable_create_database_propagation = off",
			"CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("pgtest: create database %s on Citus: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dropCitusDB(ctx, u, name); err != nil {
				t.Errorf("pgtest: drop database %s on Citus: %v", name, err)
			}
		})
	}
	var own []string
	for _, u := range urls {
		nu, err := pgcluster.WithDatabase(u, name)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if err := execOn(ctx, nu, "CREATE EXTENSION citus"); err != nil {
			t.Fatalf("pgtest: create extension citus in %s: %v", name, err)
		}
		own = append(own, nu)
	}
	// Citus names the replication slot of a tenant move after the node, the table owner and an
	// operation id from this sequence. Slots are the cluster's, not a database's: two test
	// databases moving at the same moment from ids that start alike collided ("replication slot
	// ... already exists"). A random start keeps each database's ids apart.
	if err := execOn(ctx, own[0], fmt.Sprintf(`SELECT setval('pg_catalog.pg_dist_operationid_seq', %d)`,
		1_000_000+rand.Int64N(1_000_000_000_000)*1_000)); err != nil {
		t.Fatalf("pgtest: give %s its own Citus operation ids: %v", name, err)
	}
	unlock := CitusLock(t)
	defer unlock()
	if err := addNodes(ctx, own[0], coord, nodes); err != nil {
		t.Fatalf("pgtest: add the Citus nodes to %s: %v", name, err)
	}
	return own[0]
}

// dropCitusDB drops database name on the node at url. WITH (FORCE) ends its sessions but not
// the replication slots a tenant move left for Citus to clean up later (its cleanup runs in the
// database being dropped), and a slot's walsender may still be ending: the slots go first, and
// the drop is tried again while the database is still in use.
func dropCitusDB(ctx context.Context, url, name string) error {
	for {
		err := execOn(ctx, url, "SET citus.enable_create_database_propagation = off",
			`SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE database = `+quoteLiteral(name)+` AND NOT active`,
			"DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// citusLockKey is the advisory lock CitusLock takes on the cluster's own database.
const citusLockKey = 0x65727063_63697475 // "erpccitu"

// CitusLock holds an advisory lock on the cluster database of EnvCitusURL until the returned
// function is called, so that one test at a time, across test binaries, changes roles on the
// Citus cluster. Roles are the cluster's, not a database's: adding a node to a test's database
// copies every role to it, and two tests doing that (or one of them making erpctl's data API
// role) at the same moment fail with "tuple concurrently updated". On one cluster with one
// erpctl database, as in use, that does not arise.
func CitusLock(t testing.TB) (unlock func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, CitusURL(t))
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvCitusURL, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(citusLockKey)); err != nil {
		conn.Close(context.Background())
		t.Fatalf("pgtest: take the Citus test lock: %v", err)
	}
	// Closing the session releases the lock.
	return func() { conn.Close(context.Background()) }
}

type citusNode struct {
	host string
	port int
}

// citusNodes reads the active primary workers and the coordinator of the cluster at url.
func citusNodes(ctx context.Context, url string) (workers []citusNode, coord citusNode, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, coord, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT nodename, nodeport, groupid = 0 FROM pg_dist_node
		WHERE isactive AND noderole = 'primary' ORDER BY groupid`)
	if err != nil {
		return nil, coord, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var n citusNode
		var isCoord bool
		if err := rows.Scan(&n.host, &n.port, &isCoord); err != nil {
			return nil, coord, err
		}
		if isCoord {
			coord, found = n, true
		} else {
			workers = append(workers, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, coord, err
	}
	if !found || len(workers) == 0 {
		return nil, coord, fmt.Errorf("want the coordinator and at least one worker in pg_dist_node, found %d workers (coordinator: %v)", len(workers), found)
	}
	return workers, coord, nil
}

// nodeURL is base with n's host and port: the same user and database on another node.
func nodeURL(base string, n citusNode) (string, error) {
	u, err := neturl.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvCitusURL, err)
	}
	u.Host = n.host + ":" + strconv.Itoa(n.port)
	return u.String(), nil
}

func execOn(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// addNodes records the coordinator and the workers in a new cluster database.
func addNodes(ctx context.Context, url string, coord citusNode, workers []citusNode) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT citus_set_coordinator_host($1, $2)`, coord.host, coord.port); err != nil {
		return err
	}
	for _, n := range workers {
		if _, err := conn.Exec(ctx, `SELECT citus_add_node($1, $2)`, n.host, n.port); err != nil {
			return fmt.Errorf("add worker %s:%d: %w", n.host, n.port, err)
		}
	}
	return nil
}
