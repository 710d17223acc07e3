package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpctl/erpctl/schema"
)

// fleetReadMaxAge bounds how long a full read of the fleet's fingerprints is reused: a change
// the write counts cannot see (made in a session that turned track_counts off) is found within it.
const fleetReadMaxAge = time.Hour

// fleetReadKey is the erpctl.meta row of the last full read of the fleet's fingerprints.
const fleetReadKey = "fleet_read"

// fleetReadMaxDiffer bounds the schemas a recorded read lists as not as their tenants' rows
// record them, which whoever reuses the read fingerprints again: past it, the read is not
// recorded, and the next full pass reads every schema again.
const fleetReadMaxDiffer = 1000

// fleetRead is a full read of the fleet's fingerprints as erpctl.meta keeps it, for the full
// passes that follow it in any process (the daemon's next, a daemon that restarts, another
// replica): while the catalog's write stamp (schema.CatalogStamp) is the one read just before
// it, no schema's fingerprint has changed, and the daemon's safety net need not read 100,000
// schemas' catalog (25-30 s of a backend's CPU) to find nothing new. It keeps not the
// fingerprints but which schemas were not as their tenants' rows recorded. erpctl records a
// tenant's fingerprint in the transaction of each change it makes, and after an inspection what
// it found, so that while the stamp stands every other tenant's schema is as its row records.
// That holds for this process's own applies, and even for a change another erpctl made in the
// seconds before its writes were counted. DDL by hand that also bypassed change tracking in the
// seconds before a read is found by a later one.
type fleetRead struct {
	Stamp  string    `json:"stamp"`
	ReadAt time.Time `json:"read_at"`
	// Differ are the tenant schemas the read found not as their tenants' rows recorded, or
	// missing: they are fingerprinted again, as a change may have brought them to their rows.
	Differ []string `json:"differ,omitempty"`
}

// recordFleetRead records r, the read of fps, with the schemas of refs (every tenant's row as the
// pass read it) that fps found otherwise. Not recording it costs the next process a read, so a
// failure is only logged.
func (p *Plane) recordFleetRead(ctx context.Context, r fleetRead, refs []*tenantRef, fps map[string]string) {
	for _, t := range refs {
		if fps[t.schema] != t.fp {
			r.Differ = append(r.Differ, t.schema)
		}
	}
	var err error
	if len(r.Differ) > fleetReadMaxDiffer {
		_, err = p.pool.Exec(ctx, `DELETE FROM erpctl.meta WHERE key = $1`, fleetReadKey)
	} else {
		var v []byte
		if v, err = json.Marshal(r); err == nil {
			_, err = p.pool.Exec(ctx, `INSERT INTO erpctl.meta (key, value) VALUES ($1, $2)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fleetReadKey, string(v))
		}
	}
	if err != nil {
		p.log.Warn("the fleet's fingerprints were read but not recorded: the next process's full pass reads them again", "err", err)
	}
}

// recordedFleetRead gives the fingerprint of every schema of refs (every tenant, as the pass read
// their rows) from the full read recorded in erpctl.meta, when stamp is still the one read before
// it and the read is not older than fleetReadMaxAge; ok is false when it cannot stand. The
// schemas the read found not as recorded are read again, and so are those change tracking
// recorded DDL on: the server counts a write seconds after its commit, not at once.
func (p *Plane) recordedFleetRead(ctx context.Context, stamp string, now time.Time, refs []*tenantRef) (fps map[string]string, ok bool, err error) {
	if stamp == "" {
		return nil, false, nil
	}
	var v string
	var changed []string
	err = p.pool.QueryRow(ctx, `SELECT value, ARRAY(SELECT schema_name FROM erpctl.changed_schemas) FROM erpctl.meta WHERE key = $1`,
		fleetReadKey).Scan(&v, &changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the fleet's recorded fingerprints: %w", err)
	}
	var r fleetRead
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		p.log.Warn("the fleet's recorded fingerprints cannot be read: reading the catalog", "err", err)
		return nil, false, nil
	}
	if r.Stamp != stamp || now.Sub(r.ReadAt) > fleetReadMaxAge || r.ReadAt.After(now.Add(fleetReadMaxAge)) {
		return nil, false, nil
	}
	fps = make(map[string]string, len(refs))
	for _, t := range refs {
		if t.fp != "" {
			fps[t.schema] = t.fp
		}
	}
	again := append(r.Differ, changed...)
	if len(again) > 0 {
		read, err := schema.FingerprintsOf(ctx, p.db, again)
		if err != nil {
			return nil, false, err
		}
		for _, s := range again {
			delete(fps, s)
			if fp, ok := read[s]; ok {
				fps[s] = fp
			}
		}
	}
	p.log.Debug("fingerprints taken from the fleet's read recorded in the catalog: no catalog write counted since",
		"read_at", r.ReadAt, "read_again", len(again))
	return fps, true, nil
}
