package tokencache

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

type clock struct{ t atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func newClock() *clock { c := &clock{}; c.t.Store(time.Now().UnixNano()); return c }

func fillWith(calls *atomic.Int64, value string, ttl time.Duration, now func() time.Time) Fill {
	return func(context.Context) ([]byte, time.Time, error) {
		calls.Add(1)
		return []byte(value), now().Add(ttl), nil
	}
}

func TestFillOnceThenHitUntilExpiry(t *testing.T) {
	clk := newClock()
	c := New(NewMemory(clk.Now), clk.Now)
	var calls atomic.Int64
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		v, err := c.Get(ctx, "k", fillWith(&calls, "v1", time.Minute, clk.Now))
		if err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if calls.Load() != 1 || c.Stats.Hits.Load() != 2 {
		t.Fatalf("%d fills, %d hits; want 1 and 2", calls.Load(), c.Stats.Hits.Load())
	}
	clk.Advance(time.Minute)
	if v, _ := c.Get(ctx, "k", fillWith(&calls, "v2", time.Minute, clk.Now)); string(v) != "v2" || calls.Load() != 2 {
		t.Fatalf("after expiry: %q with %d fills", v, calls.Load())
	}
	c.Forget(ctx, "k")
	if _, _ = c.Get(ctx, "k", fillWith(&calls, "v3", time.Minute, clk.Now)); calls.Load() != 3 {
		t.Fatal("Forget did not drop the entry")
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := New(NewMemory(nil), nil)
	boom := errors.New("keystone down")
	var calls atomic.Int64
	failing := func(context.Context) ([]byte, time.Time, error) { calls.Add(1); return nil, time.Time{}, boom }
	for i := 0; i < 2; i++ {
		if _, err := c.Get(context.Background(), "k", failing); !errors.Is(err, boom) {
			t.Fatalf("Get = %v", err)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d fills, want 2", calls.Load())
	}
}

func TestConcurrentMissesShareOneFill(t *testing.T) {
	c := New(NewMemory(nil), nil)
	release := make(chan struct{})
	var calls atomic.Int64
	fill := func(context.Context) ([]byte, time.Time, error) {
		calls.Add(1)
		<-release
		return []byte("v"), time.Now().Add(time.Minute), nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Get(context.Background(), "k", fill) }()
	}
	// Every caller is inside Get once 20 misses are counted; then the fill may end.
	for c.Stats.Misses.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fills for 20 concurrent callers", calls.Load())
	}
}

func TestMemoryIsBounded(t *testing.T) {
	m := NewMemory(nil)
	m.MaxEntries = 100
	for i := 0; i < 1000; i++ {
		m.Set(context.Background(), string(rune('a'+i%26))+strings.Repeat("x", i), []byte("v"), time.Hour)
	}
	if m.Len() > 100 {
		t.Fatalf("%d entries, bound 100", m.Len())
	}
}

func memcachedServer() string {
	if s := os.Getenv("MIXMATCH_TEST_MEMCACHED"); s != "" {
		return s
	}
	return "127.0.0.1:11211"
}

func newMemcached(t *testing.T, secret string) *Memcached {
	t.Helper()
	m, err := NewMemcached([]string{memcachedServer()}, secret)
	if err != nil {
		t.Fatal(err)
	}
	m.prefix = "mixmatch-test-" + randomPrefix() + ":"
	if err := m.client.Ping(); err != nil {
		t.Fatalf("memcached at %s (scripts/test-services.sh starts it): %v", memcachedServer(), err)
	}
	return m
}

func randomPrefix() string { return time.Now().Format("150405.000000000") }

// What memcached holds is sealed: a token in it is not readable, and an entry cannot
// be read under another secret or another key.
func TestMemcachedEntriesAreSealed(t *testing.T) {
	ctx := context.Background()
	m := newMemcached(t, "s3cret")
	token := "gAAAAAB-remote-token-value"
	if err := m.Set(ctx, "k2k\x00scoped\x00sp1", []byte(token), time.Minute); err != nil {
		t.Fatal(err)
	}
	raw, err := m.client.Get(m.mkey("k2k\x00scoped\x00sp1"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Value), token) {
		t.Fatal("the token is stored in clear")
	}
	if v, ok, err := m.Get(ctx, "k2k\x00scoped\x00sp1"); err != nil || !ok || string(v) != token {
		t.Fatalf("Get = %q, %v, %v", v, ok, err)
	}
	other := newMemcached(t, "another secret")
	other.prefix = m.prefix
	if _, ok, _ := other.Get(ctx, "k2k\x00scoped\x00sp1"); ok {
		t.Fatal("an entry opened under another secret")
	}
	// Moved under another key, the entry does not open either.
	m.client.Set(&memcache.Item{Key: m.mkey("k2k\x00scoped\x00sp2"), Value: raw.Value, Expiration: 60})
	if _, ok, _ := m.Get(ctx, "k2k\x00scoped\x00sp2"); ok {
		t.Fatal("an entry opened under another key")
	}
}

// Two processes sharing memcached fill a key once between them.
func TestMemcachedSharesOneFillAcrossProcesses(t *testing.T) {
	m1 := newMemcached(t, "s3cret")
	m2 := newMemcached(t, "s3cret")
	m2.prefix = m1.prefix
	caches := []*Cache{New(m1, nil), New(m2, nil)}
	var calls atomic.Int64
	fill := func(context.Context) ([]byte, time.Time, error) {
		calls.Add(1)
		// The fill ends only once all 20 callers of both processes have missed, so
		// the other process is waiting on the lock, not arriving after the value.
		for caches[0].Stats.Misses.Load()+caches[1].Stats.Misses.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		return []byte("v"), time.Now().Add(time.Minute), nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := caches[i%2].Get(context.Background(), "shared", fill); err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fills across two processes, want 1", calls.Load())
	}
}

// countingBackend counts reads, to tell a decoded value served from memory from one
// read from the backend again.
type countingBackend struct {
	Backend
	gets atomic.Int64
}

func (b *countingBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b.gets.Add(1)
	return b.Backend.Get(ctx, key)
}

// GetJSON decodes an entry once and serves the decoded value until the entry
// expires, no longer; Forget drops it too.
func TestDecodedValuesLiveAsLongAsTheirEntry(t *testing.T) {
	clk := newClock()
	b := &countingBackend{Backend: NewMemory(clk.Now)}
	c := New(b, clk.Now)
	ctx := context.Background()
	var fills atomic.Int64
	fill := func(v string) func(context.Context) (*struct{ V string }, time.Time, error) {
		return func(context.Context) (*struct{ V string }, time.Time, error) {
			fills.Add(1)
			return &struct{ V string }{v}, clk.Now().Add(time.Minute), nil
		}
	}
	first, _ := GetJSON(ctx, c, "k", fill("v1"))
	readsAfterFill := b.gets.Load()
	for i := 0; i < 3; i++ {
		if v, err := GetJSON(ctx, c, "k", fill("other")); err != nil || v != first {
			t.Fatalf("call %d: %v, %v; want the decoded value of the first", i, v, err)
		}
	}
	if fills.Load() != 1 || b.gets.Load() != readsAfterFill {
		t.Fatalf("%d fills, %d backend reads after the fill; want 1 and none", fills.Load(), b.gets.Load()-readsAfterFill)
	}
	clk.Advance(time.Minute)
	if v, _ := GetJSON(ctx, c, "k", fill("v2")); v.V != "v2" {
		t.Fatalf("after the entry expired: %v", v.V)
	}
	c.Forget(ctx, "k")
	if v, _ := GetJSON(ctx, c, "k", fill("v3")); v.V != "v3" || fills.Load() != 3 {
		t.Fatalf("after Forget: %v with %d fills", v.V, fills.Load())
	}
}
