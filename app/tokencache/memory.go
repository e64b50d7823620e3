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
	now := m.now()
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
	for k := range m.entries {
		if len(m.entries) < m.MaxEntries*9/10 {
			break
		}
		delete(m.entries, k)
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
