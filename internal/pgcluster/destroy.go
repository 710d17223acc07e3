package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Destroy stops the cluster and removes its data directory and what the home records of it (its
// location, port and passwords), and reports whether there was a data directory to remove. It
// needs no password, so that it also clears a data directory left by an earlier home at the
// same path. The home itself, and anything else in it, stays. It only removes a data directory
// erpctl makes: the home's pg, or one under /var/lib/erpctl/clusters.
func (c *Cluster) Destroy(ctx context.Context) (bool, error) {
	removed, err := c.destroy(ctx)
	if err != nil {
		return false, fmt.Errorf("destroy embedded PostgreSQL in %s: %w", c.DataDir, err)
	}
	return removed, nil
}

func (c *Cluster) destroy(ctx context.Context) (bool, error) {
	if c.DataDir != filepath.Join(c.Home, dataDirName) && filepath.Dir(c.DataDir) != relocatedParent {
		return false, fmt.Errorf("%s (recorded in %s) is not a data directory erpctl makes; remove it by hand",
			c.DataDir, filepath.Join(c.Home, dataDirFile))
	}
	if err := c.stop(ctx); err != nil {
		return false, err
	}
	if _, err := os.Stat(c.Home); err == nil {
		unlock, err := lockFile(ctx, filepath.Join(c.Home, lockFileName))
		if err != nil {
			return false, fmt.Errorf("lock %s: %w", filepath.Join(c.Home, lockFileName), err)
		}
		defer unlock()
	}
	// A postmaster removes its pid file just before it exits, and pg_ctl stop returns on that:
	// give its processes the moment they take to go.
	for deadline := time.Now().Add(readyTimeout); ; {
		pids, ok := serverProcessesIn(c.DataDir)
		if !ok || len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("server processes %v still run in the data directory", pids)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return false, err
		}
	}
	_, statErr := os.Stat(c.DataDir)
	existed := statErr == nil
	for _, dir := range []string{c.DataDir, c.DataDir + ".initdb"} {
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	for _, f := range []string{dataDirFile, portFile, passwordFile, rolePassFile} {
		if err := os.Remove(filepath.Join(c.Home, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("remove %s: %w", filepath.Join(c.Home, f), err)
		}
	}
	c.mu.Lock()
	c.port, c.password, c.rolePass = 0, "", ""
	c.mu.Unlock()
	return existed, nil
}
