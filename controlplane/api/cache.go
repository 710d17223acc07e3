package api

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/erpctl/erpctl/modules"
)

// CacheSizes bounds the data API's caches, in entries. Every cache evicts its least recently used
// entries when full. Negative answers (wrong tokens, unknown tenants) have caches of their own,
// since anyone on the network picks their keys: junk evicts junk, never a tenant's entries.
type CacheSizes struct {
	Tables    int // SQL built per (tenant, resource); 0: 50,000
	Tenants   int // tenants' schema, status and modules; 0: 20,000
	Tokens    int // valid tokens' tenant and name; 0: 100,000
	Negatives int // each of wrong tokens and unknown tenants; 0: 10,000
}

func (s CacheSizes) withDefaults() CacheSizes {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return CacheSizes{def(s.Tables, 50_000), def(s.Tenants, 20_000), def(s.Tokens, 100_000), def(s.Negatives, 10_000)}
}

// CacheStat is one cache's size, for /metrics.
type CacheStat struct {
	Name     string
	Len, Cap int
}

// CacheStats reports every cache of the handler.
func (a *Handler) CacheStats() []CacheStat {
	return []CacheStat{
		a.tables.stat(), a.tenants.stat(), a.noTenants.stat(), a.tokens.stat(), a.badTokens.stat(),
	}
}

// ttlLRU is an LRU cache whose entries also expire (by the monotonic clock time.Now carries).
type ttlLRU[K comparable, V any] struct {
	name string
	size int
	c    *lru.Cache[K, ttlEntry[V]]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLLRU[K comparable, V any](name string, size int) *ttlLRU[K, V] {
	c, err := lru.New[K, ttlEntry[V]](size)
	if err != nil {
		panic(err) // only for size <= 0, which withDefaults rules out
	}
	return &ttlLRU[K, V]{name: name, size: size, c: c}
}

func (c *ttlLRU[K, V]) get(k K, now time.Time) (V, bool) {
	e, ok := c.c.Get(k)
	if !ok || !now.Before(e.expires) {
		if ok {
			c.c.Remove(k)
		}
		var zero V
		return zero, false
	}
	return e.v, true
}

// values returns every entry's value, expired or not, without touching their recency.
func (c *ttlLRU[K, V]) values() []V {
	entries := c.c.Values()
	out := make([]V, len(entries))
	for i, e := range entries {
		out[i] = e.v
	}
	return out
}

func (c *ttlLRU[K, V]) put(k K, v V, expires time.Time) { c.c.Add(k, ttlEntry[V]{v, expires}) }
func (c *ttlLRU[K, V]) del(k K)                         { c.c.Remove(k) }
func (c *ttlLRU[K, V]) purge()                          { c.c.Purge() }
func (c *ttlLRU[K, V]) stat() CacheStat                 { return CacheStat{c.name, c.c.Len(), c.size} }

// tableCache holds the SQL of each (registry, schema, resource), built once. Every statement
// names the tenant schema, quoted, so that pgx's statement cache keys differ per tenant and no
// statement depends on a connection's search_path. Identifiers come from the registry only.
// Tenants are served at the generation each has applied, so registries of several generations
// are in use at once (during a rollout, two); each generation's registry is one value for the
// daemon's lifetime, and what a generation no tenant uses any more built is evicted in time.
type tableCache struct {
	size int
	c    *lru.Cache[tableKey, *tableSQL]
}

type tableKey struct {
	reg          *modules.Registry
	schema, name string
	module       string
}

func newTableCache(size int) *tableCache {
	c, err := lru.New[tableKey, *tableSQL](size)
	if err != nil {
		panic(err) // only for size <= 0, which withDefaults rules out
	}
	return &tableCache{size: size, c: c}
}

// get returns the SQL of res in schemaName under reg.
func (c *tableCache) get(reg *modules.Registry, schemaName string, res *modules.Resource) *tableSQL {
	k := tableKey{reg: reg, schema: schemaName, module: res.Module, name: res.Name}
	if t, ok := c.c.Get(k); ok {
		return t
	}
	t := newTableSQL(schemaName, res)
	if old, ok, _ := c.c.PeekOrAdd(k, t); ok {
		return old
	}
	return t
}

func (c *tableCache) stat() CacheStat { return CacheStat{"tables", c.c.Len(), c.size} }
