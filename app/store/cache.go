package store

import (
	"sync"
	"time"
)

// maxCached bounds the mappings a process keeps; past it the cache starts afresh,
// which costs a database read per mapping and nothing else.
const maxCached = 100000

// findCache keeps what Find read, for at most ttl: the lookup on every routed call
// was the worker's largest cost after the network. What this process writes is
// forgotten at once; what another process writes (the ingester, another worker,
// SQL by hand) reaches this one within ttl, the bound the README states.
type findCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]cachedMapping
	// gen counts forgets: a read that began before one is not kept, so that a row
	// read just before this process changed it cannot outlive the change.
	gen uint64
}

type cacheKey struct{ kind, id string }

type cachedMapping struct {
	m       Mapping
	expires time.Time
}

func newFindCache(ttl time.Duration) *findCache {
	if ttl <= 0 {
		return nil
	}
	return &findCache{ttl: ttl, now: time.Now, entries: map[cacheKey]cachedMapping{}}
}

// get is the mapping kept for a resource, and the generation to keep a new read at.
func (c *findCache) get(kind, id string) (Mapping, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[cacheKey{kind, id}]
	if ok && c.now().Before(e.expires) {
		return e.m, true, c.gen
	}
	return Mapping{}, false, c.gen
}

// put keeps a read begun at generation gen, unless something was forgotten since.
func (c *findCache) put(m Mapping, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= maxCached {
		c.entries = map[cacheKey]cachedMapping{}
	}
	c.entries[cacheKey{m.ResourceType, m.ResourceID}] = cachedMapping{m: m, expires: c.now().Add(c.ttl)}
}

// forget drops what is kept of these resources (kind, id pairs); none: everything.
func (c *findCache) forget(keys ...cacheKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if len(keys) == 0 {
		c.entries = map[cacheKey]cachedMapping{}
		return
	}
	for _, k := range keys {
		delete(c.entries, k)
	}
}
