//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erpctl/erpctl/internal/pgcluster"
)

// As root, a home the postgres user cannot reach keeps its cluster under
// /var/lib/erpctl/clusters, which `rm -rf $ERPCTL_HOME` leaves behind. Made again, the home has no
// password for it: every command says so in one sentence naming `erpctl db destroy --yes`
// (never the server log), db destroy refuses without --yes, and with it removes the cluster and
// its data. (Not as root the cluster is in the home, and only its password files are removed.)
func TestDBDestroyAfterHomeRemoved(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home, cluster := embeddedHome(t, ctx, 0o700) // as root, out of the postgres user's reach
	c := &cli{t: t, env: map[string]string{"ERPCTL_HOME": home}}
	if r := c.exec("tenant", "create", "acme"); r.code != 0 {
		t.Fatalf("tenant create on the first home: %+v", r)
	}
	if r := c.exec("tenant", "list", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"acme"`) {
		t.Fatalf("the first home's tenants: %+v", r)
	}
	dataDir := cluster.DataDir
	if strings.HasPrefix(dataDir, home+string(filepath.Separator)) {
		for _, f := range []string{"pg.password", "pg.erpctl.password"} {
			os.Remove(filepath.Join(home, f))
		}
	} else {
		os.RemoveAll(home)
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	for _, args := range [][]string{{"tenant", "create", "acme"}, {"tenant", "list"}, {"db", "url"}} {
		r := c.exec(args...)
		if r.code != 1 {
			t.Fatalf("erpctl %v: exit %d, want 1\n%s", args, r.code, r.stderr)
		}
		checkErrorMessage(t, r, "erpctl db destroy --yes")
		if !strings.Contains(r.stderr, dataDir) || strings.Contains(r.stderr, "LOG:") || len(r.stderr) > 500 {
			t.Fatalf("erpctl %v: stderr %q", args, r.stderr)
		}
	}
	r := c.exec("db", "destroy")
	if r.code != 2 {
		t.Fatalf("db destroy without --yes: %+v", r)
	}
	checkErrorMessage(t, r, "without --yes")
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("db destroy without --yes removed the cluster: %v", err)
	}
	if r := c.exec("db", "destroy", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Stopped and removed the embedded PostgreSQL in "+dataDir) {
		t.Fatalf("db destroy --yes: %+v", r)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("the data directory after db destroy --yes: %v", err)
	}
	if r := c.exec("db", "destroy", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "There is no embedded PostgreSQL") {
		t.Fatalf("db destroy --yes again: %+v", r)
	}
	if r := c.exec("db", "status", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"initialized": false`) {
		t.Fatalf("db status after destroy: %+v", r)
	}
}

// embeddedHome makes a home of mode perm with a running embedded cluster (ephemeral, for speed),
// both removed when the test ends, wherever the data directory is.
func embeddedHome(t *testing.T, ctx context.Context, perm os.FileMode) (string, *pgcluster.Cluster) {
	t.Helper()
	home, err := os.MkdirTemp("", "erpctl-home-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, perm); err != nil {
		t.Fatal(err)
	}
	cluster := pgcluster.OpenWithOptions(home, pgcluster.Options{Ephemeral: true})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		os.RemoveAll(cluster.DataDir)
		os.RemoveAll(home)
	})
	if err := cluster.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return home, cluster
}
