package controlplane

import (
	"sync"
	"time"
)

// fleetPrintsMaxAge bounds how long fingerprints are reused: a change the write counts cannot
// see (made in a session that turned track_counts off) is found within it.
const fleetPrintsMaxAge = time.Hour

// fleetPrints keeps the fingerprints of the fleet's last full read and the catalog's write stamp
// (schema.CatalogStamp) read just before it. While the stamp is unchanged, no schema's
// fingerprint has, and a full pass of the daemon, the safety net behind change tracking, need not
// read 100,000 schemas' catalog (29 s) to find nothing new. The server reports a commit's counts
// within seconds of it, not at once: DDL that also bypassed change tracking in the seconds before a
// pass is found by the next one. Applies of this process forget them (Open), so that a pass
// right after them does not take the schemas they changed for drifted.
type fleetPrints struct {
	mu    sync.Mutex
	stamp string
	at    time.Time
	fps   map[string]string
}

func (f *fleetPrints) get(stamp string, now time.Time) (map[string]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if stamp == "" || stamp != f.stamp || now.Sub(f.at) > fleetPrintsMaxAge {
		return nil, false
	}
	return f.fps, true
}

func (f *fleetPrints) put(stamp string, at time.Time, fps map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp, f.at, f.fps = stamp, at, fps
}

func (f *fleetPrints) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp, f.fps = "", nil
}
