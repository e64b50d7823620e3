package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"mixmatch/app/dbtest"
)

// A worker's mapping cache: its own writes show at once, another process's within
// mapping_cache_time, never later.
func TestCachedMappingsAreStaleAtMostTheirTime(t *testing.T) {
	ctx := context.Background()
	connection := dbtest.SQLite(t)
	worker, err := Open(ctx, connection, Options{MaxOpenConns: 2, MappingCacheTime: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	if _, err := worker.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	worker.cache.now = func() time.Time { return now }
	ingester, err := Open(ctx, connection, Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ingester.Close()

	const id = "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"
	if err := worker.Upsert(ctx, Mapping{ResourceType: "images", ResourceID: id, ResourceSP: "remote1", ProjectID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if m, err := worker.Find(ctx, "images", id); err != nil || m.ResourceSP != "remote1" {
		t.Fatalf("Find: %+v, %v", m, err)
	}
	// Another process deletes the row: this one may go on answering from its
	// cache, until the time is up.
	if _, err := ingester.Delete(ctx, "images", id); err != nil {
		t.Fatal(err)
	}
	if m, err := worker.Find(ctx, "images", id); err != nil || m.ResourceSP != "remote1" {
		t.Fatalf("within the cache time: %+v, %v; want the row as read", m, err)
	}
	now = now.Add(time.Second)
	if _, err := worker.Find(ctx, "images", id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the cache time: %v, want ErrNotFound", err)
	}
	// Its own writes it forgets at once.
	if err := worker.Upsert(ctx, Mapping{ResourceType: "images", ResourceID: id, ResourceSP: "remote2", ProjectID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := worker.Find(ctx, "images", id); m.ResourceSP != "remote2" {
		t.Fatalf("after its own upsert: %+v", m)
	}
	if _, err := worker.DeleteHeldBy(ctx, "images", id, "remote2"); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Find(ctx, "images", id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after its own delete: %v", err)
	}
}

// A read that began before a forget is not kept: it may hold the row as it was.
func TestAReadOlderThanAForgetIsNotKept(t *testing.T) {
	c := newFindCache(time.Minute)
	_, _, gen := c.get("images", "a")
	c.forget(cacheKey{"images", "a"})
	c.put(Mapping{ResourceType: "images", ResourceID: "a", ResourceSP: "old"}, gen)
	if _, ok, _ := c.get("images", "a"); ok {
		t.Fatal("a read from before the forget was kept")
	}
	if newFindCache(0) != nil {
		t.Fatal("mapping_cache_time = 0 keeps a cache")
	}
}
