package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"mixmatch/app/dbtest"
	"mixmatch/app/store"
)

func open(t testing.TB, connection string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), connection, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func migrated(t testing.TB, connection string) *store.Store {
	t.Helper()
	s := open(t, connection)
	if _, err := s.Migrate(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMappingLifecycle(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)

		if _, err := s.Find(ctx, "volumes", "0e4d"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Find on an empty table: got %v, want ErrNotFound", err)
		}
		id := "0E4D8E4A-6B1C-4C5D-9E2F-1A2B3C4D5E6F"
		err := s.Upsert(ctx, store.Mapping{ResourceType: "volumes", ResourceID: id, ResourceSP: "remote1",
			ProjectID: "8a1e6f2c-0000-4000-8000-000000000001"})
		if err != nil {
			t.Fatal(err)
		}
		// Stored without dashes and in lower case; found with or without dashes.
		for _, lookup := range []string{id, "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"} {
			m, err := s.Find(ctx, "volumes", lookup)
			if err != nil {
				t.Fatalf("Find(%s): %v", lookup, err)
			}
			if m.ResourceID != "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f" || m.ProjectID != "8a1e6f2c000040008000000000000001" ||
				m.ResourceSP != "remote1" {
				t.Fatalf("Find(%s) = %+v", lookup, m)
			}
			if m.CreatedAt.IsZero() || m.UpdatedAt.IsZero() || time.Since(m.CreatedAt) > time.Hour || time.Since(m.CreatedAt) < -time.Hour {
				t.Fatalf("timestamps not set to now: %+v", m)
			}
		}
		// The same id in another type is another resource.
		if _, err := s.Find(ctx, "snapshots", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Find(snapshots) = %v, want ErrNotFound", err)
		}

		// Upsert replaces; it never adds a second row.
		if err := s.Upsert(ctx, store.Mapping{ResourceType: "volumes", ResourceID: id, ResourceSP: "remote2", ProjectID: "p2"}); err != nil {
			t.Fatal(err)
		}
		all, err := s.List(ctx, store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0].ResourceSP != "remote2" || all[0].ProjectID != "p2" {
			t.Fatalf("after a second upsert: %+v", all)
		}

		found, err := s.ChangeProject(ctx, "volumes", id, "P-3")
		if err != nil || !found {
			t.Fatalf("ChangeProject = %v, %v", found, err)
		}
		// Moving to the project it already has is still "found" (MySQL counts matched rows).
		if found, err := s.ChangeProject(ctx, "volumes", id, "p3"); err != nil || !found {
			t.Fatalf("ChangeProject to the same project = %v, %v", found, err)
		}
		if m, _ := s.Find(ctx, "volumes", id); m.ProjectID != "p3" {
			t.Fatalf("project after transfer = %q", m.ProjectID)
		}
		if found, err := s.ChangeProject(ctx, "volumes", "unknown", "p3"); err != nil || found {
			t.Fatalf("ChangeProject of an unknown volume = %v, %v", found, err)
		}

		deleted, err := s.Delete(ctx, "volumes", id)
		if err != nil || !deleted {
			t.Fatalf("Delete = %v, %v", deleted, err)
		}
		if deleted, err := s.Delete(ctx, "volumes", id); err != nil || deleted {
			t.Fatalf("second Delete = %v, %v", deleted, err)
		}
		if _, err := s.Find(ctx, "volumes", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Find after Delete = %v", err)
		}
	})
}

func TestListFilters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)
		rows := []store.Mapping{
			{ResourceType: "images", ResourceID: "a1", ResourceSP: "default", ProjectID: "p1"},
			{ResourceType: "images", ResourceID: "a2", ResourceSP: "remote1", ProjectID: "p1"},
			{ResourceType: "volumes", ResourceID: "a3", ResourceSP: "remote1", ProjectID: "p2"},
			{ResourceType: "snapshots", ResourceID: "a4", ResourceSP: "remote1", ProjectID: "p2"},
		}
		for _, m := range rows {
			if err := s.Upsert(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			filter store.Filter
			want   []string
		}{
			{store.Filter{}, []string{"a1", "a2", "a3", "a4"}},
			{store.Filter{Type: "images"}, []string{"a1", "a2"}},
			{store.Filter{SP: "remote1"}, []string{"a2", "a3", "a4"}},
			{store.Filter{SP: "remote1", Project: "P2"}, []string{"a3", "a4"}},
			{store.Filter{SP: "remote1", Type: "images", Project: "p1"}, []string{"a2"}},
			{store.Filter{SP: "nowhere"}, []string{}},
			{store.Filter{Limit: 2}, []string{"a1", "a2"}},
		} {
			got, err := s.List(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, m := range got {
				ids = append(ids, m.ResourceID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("List(%+v) = %v, want %v", tc.filter, ids, tc.want)
			}
		}
	})
}

func TestInvalidMappingsAreRefused(t *testing.T) {
	ctx := context.Background()
	s := migrated(t, dbtest.SQLite(t))
	for _, m := range []store.Mapping{
		{ResourceType: "", ResourceID: "a", ResourceSP: "default", ProjectID: "p"},
		{ResourceType: "images", ResourceID: "--", ResourceSP: "default", ProjectID: "p"},
		{ResourceType: "images", ResourceID: "a", ResourceSP: " ", ProjectID: "p"},
		{ResourceType: "images", ResourceID: string(make([]byte, 300)), ResourceSP: "default", ProjectID: "p"},
	} {
		if err := s.Upsert(ctx, m); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Upsert(%+v) = %v, want ErrInvalid", m, err)
		}
	}
	if _, err := s.ChangeProject(ctx, "images", "a", "-"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("ChangeProject to an empty project = %v, want ErrInvalid", err)
	}
	if rows, _ := s.List(ctx, store.Filter{}); len(rows) != 0 {
		t.Fatalf("refused mappings were written: %+v", rows)
	}
}

// Several processes (workers, the ingester) learning the same resources at once must
// leave one row per resource and no error: the upsert is one statement against the
// unique key, and SQLite waits on its busy timeout instead of failing.
func TestConcurrentWritersLeaveOneRowPerResource(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		migrated(t, connection)
		const writers, resources = 4, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers*resources)
		for w := 0; w < writers; w++ {
			// A Store each, as separate processes have.
			s := open(t, connection)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < resources; i++ {
					m := store.Mapping{ResourceType: "volumes", ResourceID: fmt.Sprintf("v%03d", i),
						ResourceSP: fmt.Sprintf("sp%d", w), ProjectID: "p"}
					if err := s.Upsert(ctx, m); err != nil {
						errs <- err
					}
					if _, err := s.Find(ctx, "volumes", m.ResourceID); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		rows, err := open(t, connection).List(ctx, store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != resources {
			t.Fatalf("%d rows, want %d", len(rows), resources)
		}
	})
}

func TestSQLiteInMemory(t *testing.T) {
	ctx := context.Background()
	s := migrated(t, "sqlite://")
	if err := s.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: "a", ResourceSP: "default", ProjectID: "p"}); err != nil {
		t.Fatal(err)
	}
	// One connection holds the whole database; a second query must see the row.
	if _, err := s.Find(ctx, "images", "a"); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteUsesWAL(t *testing.T) {
	s := migrated(t, dbtest.SQLite(t))
	var mode string
	if err := s.DB().Get(&mode, "PRAGMA journal_mode"); err != nil {
		t.Fatal(err)
	}
	var timeout int
	if err := s.DB().Get(&timeout, "PRAGMA busy_timeout"); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || timeout < 1000 {
		t.Fatalf("journal_mode=%s busy_timeout=%d, want wal and at least 1000", mode, timeout)
	}
}

// Benchmarks run on every engine: make bench prints them side by side.
func BenchmarkFind(b *testing.B) {
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			ctx := context.Background()
			s := migrated(b, e.New(b))
			for i := 0; i < 1000; i++ {
				if err := s.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: fmt.Sprintf("%032x", i), ResourceSP: "default", ProjectID: "p"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Find(ctx, "images", fmt.Sprintf("%032x", i%1000)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpsert(b *testing.B) {
	for _, e := range dbtest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			ctx := context.Background()
			s := migrated(b, e.New(b))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: fmt.Sprintf("%032x", i), ResourceSP: "default", ProjectID: "p"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// SQLite locked by another process: writes queue in this one without holding every
// pooled connection, so look-ups still answer at once; the queued writes all land
// once the lock is gone.
func TestQueuedWritesDoNotStallReads(t *testing.T) {
	ctx := context.Background()
	conn := dbtest.SQLite(t)
	s, err := store.Open(ctx, conn, store.Options{MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: "known", ResourceSP: "remote1"}); err != nil {
		t.Fatal(err)
	}
	unlock := dbtest.LockSQLite(t, conn)
	const writers = 6
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			errs <- s.Upsert(ctx, store.Mapping{ResourceType: "images", ResourceID: fmt.Sprintf("queued-%d", i), ResourceSP: "remote2"})
		}()
	}
	// Look-ups for a second, while the writers reach the lock one by one.
	for start := time.Now(); time.Since(start) < time.Second; {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := s.Find(rctx, "images", "known")
		cancel()
		if err != nil {
			t.Fatalf("a look-up with %d writes queued on the lock: %v", writers, err)
		}
	}
	unlock()
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("a queued write: %v", err)
		}
	}
	if rows, _ := s.List(ctx, store.Filter{SP: "remote2"}); len(rows) != writers {
		t.Fatalf("%d queued writes landed, want %d", len(rows), writers)
	}
}
