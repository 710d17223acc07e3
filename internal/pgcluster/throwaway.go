package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ownerFile holds the pid of the process a throwaway cluster belongs to.
const ownerFile = "owner.pid"

// Throwaway is a cluster in a fresh temporary home that belongs to this process: tests and
// benchmarks start one, and Remove stops it and deletes it. Other files may share the home.
type Throwaway struct {
	*Cluster
}

// NewThrowaway makes a temporary home named prefix + random under os.TempDir, records this
// process as its owner, and returns its cluster, not yet started. Call RemoveAbandoned(prefix)
// first to sweep the clusters of earlier processes that died without cleaning up.
func NewThrowaway(prefix string, opts Options) (*Throwaway, error) {
	home, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("make a throwaway cluster home: %w", err)
	}
	// As root the server runs as the postgres user, which must reach the home (else the data
	// directory would move to /var/lib/erpctl/clusters).
	if err := os.Chmod(home, 0o755); err != nil {
		os.RemoveAll(home)
		return nil, fmt.Errorf("make a throwaway cluster home: %w", err)
	}
	// The owner's pid lets a later process remove this cluster if this one dies without cleaning
	// up (a test timeout panics, a kill -9).
	if err := os.WriteFile(filepath.Join(home, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(home)
		return nil, fmt.Errorf("make a throwaway cluster home: %w", err)
	}
	return &Throwaway{Cluster: OpenWithOptions(home, opts)}, nil
}

// Remove stops the server and deletes the home and the data directory.
func (t *Throwaway) Remove(ctx context.Context) error {
	return removeCluster(ctx, t.Cluster)
}

func removeCluster(ctx context.Context, c *Cluster) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	if !strings.HasPrefix(c.DataDir, c.Home+string(filepath.Separator)) {
		os.RemoveAll(c.DataDir)
	}
	return os.RemoveAll(c.Home)
}

// RemoveAbandoned stops and removes the throwaway clusters named with prefix whose owner process
// is gone. A home with no owner yet is left alone for ten minutes: it may be being set up.
func RemoveAbandoned(prefix string) {
	homes, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, home := range homes {
		b, err := os.ReadFile(filepath.Join(home, ownerFile))
		if err != nil {
			if fi, err := os.Stat(home); err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
				continue
			}
		} else if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && processAlive(pid) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		removeCluster(ctx, Open(home))
		cancel()
	}
}
