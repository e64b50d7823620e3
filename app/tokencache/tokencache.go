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
}

// New builds a cache; now is the clock (time.Now outside tests).
func New(b Backend, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{backend: b, now: now, LockTTL: 10 * time.Second}
}

// Fill computes a value and says until when it may be served.
type Fill func(ctx context.Context) (value []byte, expires time.Time, err error)

// Get returns the value cached under key, or fills it. Errors are not cached.
func (c *Cache) Get(ctx context.Context, key string, fill Fill) ([]byte, error) {
	if v, ok := c.lookup(ctx, key); ok {
		c.Stats.Hits.Add(1)
		return v, nil
	}
	c.Stats.Misses.Add(1)
	// The fill outlives a caller that gives up: others may be waiting for it.
	v, err, _ := c.group.Do(key, func() (any, error) {
		return c.fill(context.WithoutCancel(ctx), key, fill)
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Forget drops a key, as when a service provider refuses a cached token.
func (c *Cache) Forget(ctx context.Context, key string) error {
	return c.backend.Delete(ctx, key)
}

func (c *Cache) lookup(ctx context.Context, key string) ([]byte, bool) {
	raw, ok, err := c.backend.Get(ctx, key)
	if err != nil {
		c.Stats.Errors.Add(1)
		return nil, false
	}
	if !ok || len(raw) < 8 {
		return nil, false
	}
	expires := time.Unix(0, int64(binary.BigEndian.Uint64(raw)))
	if !c.now().Before(expires) {
		return nil, false
	}
	return raw[8:], true
}

func (c *Cache) fill(ctx context.Context, key string, fill Fill) ([]byte, error) {
	if v, ok := c.lookup(ctx, key); ok {
		return v, nil
	}
	locked, err := c.backend.TryLock(ctx, key, c.LockTTL)
	if err != nil {
		c.Stats.Errors.Add(1)
		locked = true // a cache that is down must not stop the work
	}
	if !locked {
		// Another process is filling this key: wait for its result rather than
		// doing the same K2K exchange again.
		if v, ok := c.await(ctx, key); ok {
			c.Stats.Hits.Add(1)
			return v, nil
		}
	} else {
		defer c.backend.Unlock(ctx, key)
	}
	c.Stats.Fills.Add(1)
	v, expires, err := fill(ctx)
	if err != nil {
		return nil, err
	}
	if ttl := expires.Sub(c.now()); ttl > 0 {
		entry := make([]byte, 8+len(v))
		binary.BigEndian.PutUint64(entry, uint64(expires.UnixNano()))
		copy(entry[8:], v)
		if err := c.backend.Set(ctx, key, entry, ttl); err != nil {
			c.Stats.Errors.Add(1)
		}
	}
	return v, nil
}

// await polls for a value another process is filling, with growing pauses, until
// the lock would have expired.
func (c *Cache) await(ctx context.Context, key string) ([]byte, bool) {
	deadline := time.Now().Add(c.LockTTL)
	pause := 5 * time.Millisecond
	for time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-t.C:
		}
		if v, ok := c.lookup(ctx, key); ok {
			return v, true
		}
		if pause < 100*time.Millisecond {
			pause *= 2
		}
	}
	return nil, false
}

// GetJSON is Get for a value kept as JSON.
func GetJSON[T any](ctx context.Context, c *Cache, key string, fill func(context.Context) (T, time.Time, error)) (T, error) {
	var out T
	raw, err := c.Get(ctx, key, func(ctx context.Context) ([]byte, time.Time, error) {
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
	return out, nil
}
