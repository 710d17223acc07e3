package schema

import (
	"context"
	"fmt"

	atlas "ariga.io/atlas/sql/schema"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/erpctl/erpctl/modules"
)

// normalizedCacheSize bounds the desired states kept as PostgreSQL prints them back: one per set
// of enabled modules in use, each some tens of kilobytes.
const normalizedCacheSize = 256

// normalizedName is the name a shared normalised state carries: no tenant schema's.
const normalizedName = "erpctl_normalized"

// Normalized is a desired state as PostgreSQL prints it back, shared by every tenant with that
// desired state and by every goroutine: nothing changes it, and a diff against it lends its name
// to the tenant's current state only while it runs.
type Normalized struct {
	s *atlas.Schema
}

// NormalizeOnce is Normalize, done once per key and kept: key must fix desired (the hash of its
// modules, modules.Registry.Hash), whatever schema it is named for. A repair then costs one
// inspection, the tenant's, instead of a scratch schema made and inspected each time.
func (p *Planner) NormalizeOnce(ctx context.Context, tx *Tx, key string, desired *atlas.Schema) (*Normalized, error) {
	if n, ok := p.normalized.Get(key); ok {
		return n, nil
	}
	s, err := p.Normalize(ctx, tx, desired)
	if err != nil {
		return nil, err
	}
	s.Name = normalizedName
	n := &Normalized{s: s}
	p.normalized.Add(key, n)
	return n, nil
}

// NormalizedCacheLen is how many normalised desired states are kept, and the most that are.
func (p *Planner) NormalizedCacheLen() (n, capacity int) {
	return p.normalized.Len(), normalizedCacheSize
}

// DiffNormalized is DiffRenamed against a normalised desired state: check expressions are
// compared too, which Atlas's default mode matches by name only. current is changed in place by
// the renames, and keeps its name.
func (p *Planner) DiffNormalized(ctx context.Context, current *atlas.Schema, want *Normalized, prev Managed, renames []modules.Rename) (*Diff, error) {
	if current == nil {
		return nil, fmt.Errorf("diff against a normalised state: no current state")
	}
	name := current.Name
	current.Name = want.s.Name
	defer func() { current.Name = name }()
	d, err := p.DiffRenamed(ctx, current, want.s, prev, renames, atlas.DiffNormalized())
	if err != nil {
		return nil, fmt.Errorf("diff schema %q: %w", name, err)
	}
	d.Schema = name
	return d, nil
}

func newNormalizedCache() *lru.Cache[string, *Normalized] {
	c, err := lru.New[string, *Normalized](normalizedCacheSize)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return c
}
