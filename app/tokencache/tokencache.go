// Package tokencache keeps tokens until they expire: token validations, and the
// unscoped tokens, scoped tokens and project lists of K2K exchanges. Concurrent
// requests for one key share one fill, within a process (singleflight) and, with the
// memcached backend, across every worker process and host.
package tokencache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Backend stores opaque entries. Keys may be long and hold anything; a backend that
// needs short keys hashes them.
type Backend interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
	// TryLock takes a lock for at most ttl and reports whether it got it. Backends
	// private to a process return true: singleflight already serialises there.
	TryLock(ctx context.Context, key string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, key string) error
}

// Stats count what the cache did, for benchmarks and metrics.
type Stats struct {
	Hits, Misses, Fills, Errors atomic.Int64
}

// Cache is a Backend with expiry, singleflight and cross-process filling.
type Cache struct {
	backend Backend
	group   singleflight.Group
	now     func() time.Time
	Stats   Stats
	// LockTTL bounds how long one process may hold the fill of a key before another
	// gives up waiting and fills it too.
	LockTTL time.Duration

	// decoded keeps what GetJSON decoded, until the entry it came from expires:
	// decoding a token validation's JSON on every call cost more than the rest of
	// the lookup. At most maxDecoded entries.
	decodedMu sync.Mutex
	decoded   map[string]decodedEntry
}

type decodedEntry struct {
	value   any
	expires time.Time
}

// maxDecoded bounds the decoded values a process keeps; past it, expired ones go
// first, then arbitrary ones, as in Memory.
const maxDecoded = 10000

// New builds a cache; now is the clock (time.Now outside tests).
func New(b Backend, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{backend: b, now: now, LockTTL: 10 * time.Second, decoded: map[string]decodedEntry{}}
}

// Fill computes a value and says until when it may be served.
type Fill func(ctx context.Context) (value []byte, expires time.Time, err error)

// Get returns the value cached under key, or fills it. Errors are not cached.
func (c *Cache) Get(ctx context.Context, key string, fill Fill) ([]byte, error) {
	v, _, err := c.get(ctx, key, fill)
	return v, err
}

// get is Get, with the time the value expires.
func (c *Cache) get(ctx context.Context, key string, fill Fill) ([]byte, time.Time, error) {
	if v, expires, ok := c.lookup(ctx, key); ok {
		c.Stats.Hits.Add(1)
		return v, expires, nil
	}
	c.Stats.Misses.Add(1)
	// The fill outlives a caller that gives up: others may be waiting for it.
	v, err, _ := c.group.Do(key, func() (any, error) {
		v, expires, err := c.fill(context.WithoutCancel(ctx), key, fill)
		return filled{v, expires}, err
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	f := v.(filled)
	return f.value, f.expires, nil
}

type filled struct {
	value   []byte
	expires time.Time
}

// Forget drops a key, as when a service provider refuses a cached token.
func (c *Cache) Forget(ctx context.Context, key string) error {
	c.decodedMu.Lock()
	delete(c.decoded, key)
	c.decodedMu.Unlock()
	return c.backend.Delete(ctx, key)
}

func (c *Cache) lookup(ctx context.Context, key string) ([]byte, time.Time, bool) {
	raw, ok, err := c.backend.Get(ctx, key)
	if err != nil {
		c.Stats.Errors.Add(1)
		return nil, time.Time{}, false
	}
	if !ok || len(raw) < 8 {
		return nil, time.Time{}, false
	}
	expires := time.Unix(0, int64(binary.BigEndian.Uint64(raw)))
	if !c.now().Before(expires) {
		return nil, time.Time{}, false
	}
	return raw[8:], expires, true
}

func (c *Cache) fill(ctx context.Context, key string, fill Fill) ([]byte, time.Time, error) {
	if v, expires, ok := c.lookup(ctx, key); ok {
		return v, expires, nil
	}
	locked, err := c.backend.TryLock(ctx, key, c.LockTTL)
	if err != nil {
		c.Stats.Errors.Add(1)
		locked = true // a cache that is down must not stop the work
	}
	if !locked {
		// Another process is filling this key: wait for its result rather than
		// doing the same K2K exchange again.
		if v, expires, ok := c.await(ctx, key); ok {
			c.Stats.Hits.Add(1)
			return v, expires, nil
		}
	} else {
		defer c.backend.Unlock(ctx, key)
	}
	c.Stats.Fills.Add(1)
	v, expires, err := fill(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	if ttl := expires.Sub(c.now()); ttl > 0 {
		entry := make([]byte, 8+len(v))
		binary.BigEndian.PutUint64(entry, uint64(expires.UnixNano()))
		copy(entry[8:], v)
		if err := c.backend.Set(ctx, key, entry, ttl); err != nil {
			c.Stats.Errors.Add(1)
		}
	}
	return v, expires, nil
}

// await polls for a value another process is filling, with growing pauses, until
// the lock would have expired.
func (c *Cache) await(ctx context.Context, key string) ([]byte, time.Time, bool) {
	deadline := time.Now().Add(c.LockTTL)
	pause := 5 * time.Millisecond
	for time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, time.Time{}, false
		case <-t.C:
		}
		if v, expires, ok := c.lookup(ctx, key); ok {
			return v, expires, true
		}
		if pause < 100*time.Millisecond {
			pause *= 2
		}
	}
	return nil, time.Time{}, false
}

// GetJSON is Get for a value kept as JSON. The value it returns is shared with
// other callers until the entry expires: read it, never change it.
func GetJSON[T any](ctx context.Context, c *Cache, key string, fill func(context.Context) (T, time.Time, error)) (T, error) {
	if v, ok := c.recall(key).(T); ok {
		c.Stats.Hits.Add(1)
		return v, nil
	}
	var out T
	raw, expires, err := c.get(ctx, key, func(ctx context.Context) ([]byte, time.Time, error) {
		v, expires, err := fill(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		b, err := json.Marshal(v)
		return b, expires, err
	})
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, errors.New("tokencache: undecodable entry for a key")
	}
	c.remember(key, out, expires)
	return out, nil
}

// recall is the value decoded for key, nil when there is none or it expired.
func (c *Cache) recall(key string) any {
	c.decodedMu.Lock()
	defer c.decodedMu.Unlock()
	e, ok := c.decoded[key]
	if !ok || !c.now().Before(e.expires) {
		return nil
	}
	return e.value
}

func (c *Cache) remember(key string, value any, expires time.Time) {
	if !c.now().Before(expires) {
		return
	}
	c.decodedMu.Lock()
	defer c.decodedMu.Unlock()
	if len(c.decoded) >= maxDecoded {
		shrink(c.decoded, maxDecoded, c.now(), func(e decodedEntry) time.Time { return e.expires })
	}
	c.decoded[key] = decodedEntry{value: value, expires: expires}
}
