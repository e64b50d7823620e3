package tokencache

import (
	"context"
	"sync"
	"time"
)

// Memory is a per-process backend. It holds at most MaxEntries; past that, expired
// entries go first, then arbitrary ones, so a flood of distinct tokens cannot grow
// a worker without bound.
type Memory struct {
	mu         sync.Mutex
	entries    map[string]memEntry
	MaxEntries int
	now        func() time.Time
}

type memEntry struct {
	value   []byte
	expires time.Time
}

// NewMemory returns an empty in-process backend.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{entries: map[string]memEntry{}, MaxEntries: 100000, now: now}
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || !m.now().Before(e.expires) {
		return nil, false, nil
	}
	return e.value, true, nil
}

func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= m.MaxEntries {
		m.evict()
	}
	m.entries[key] = memEntry{value: value, expires: m.now().Add(ttl)}
	return nil
}

func (m *Memory) evict() {
	shrink(m.entries, m.MaxEntries, m.now(), func(e memEntry) time.Time { return e.expires })
}

// shrink makes room in a bounded map: expired entries go first, then arbitrary
// ones, down to nine tenths of max, so that a flood of keys costs one sweep in
// many inserts rather than one per insert.
func shrink[V any](entries map[string]V, max int, now time.Time, expires func(V) time.Time) {
	for k, e := range entries {
		if !now.Before(expires(e)) {
			delete(entries, k)
		}
	}
	for k := range entries {
		if len(entries) < max*9/10 {
			break
		}
		delete(entries, k)
	}
}

func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

func (m *Memory) TryLock(context.Context, string, time.Duration) (bool, error) { return true, nil }
func (m *Memory) Unlock(context.Context, string) error                         { return nil }

// Len is the number of entries held, expired ones included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
