package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mixmatch/app/dbtest"
	"mixmatch/app/store"
)

func vol(id, project string) store.Mapping {
	return store.Mapping{ResourceType: "volumes", ResourceID: id, ResourceSP: "remote1", ProjectID: project}
}

func TestApplyIsIdempotentAndOrderProof(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)
		apply := func(ops ...store.Op) {
			t.Helper()
			if err := s.Apply(ctx, ops); err != nil {
				t.Fatal(err)
			}
		}
		// The same create twice: one row.
		apply(store.Op{Kind: store.OpCreate, Mapping: vol("a", "p1")}, store.Op{Kind: store.OpCreate, Mapping: vol("a", "p1")})
		// A transfer moves it.
		apply(store.Op{Kind: store.OpMove, Mapping: vol("a", "p2")})
		if m, err := s.Find(ctx, "volumes", "a"); err != nil || m.ProjectID != "p2" {
			t.Fatalf("after transfer: %+v %v", m, err)
		}
		// Delete, then the create redelivered late: no row.
		apply(store.Op{Kind: store.OpDelete, Mapping: vol("a", "p2")})
		apply(store.Op{Kind: store.OpCreate, Mapping: vol("a", "p1")})
		if _, err := s.Find(ctx, "volumes", "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a late create revived a deleted volume: %v", err)
		}
		// A delete that overtakes its create, in one batch or two: no row.
		apply(store.Op{Kind: store.OpDelete, Mapping: vol("b", "p1")}, store.Op{Kind: store.OpCreate, Mapping: vol("b", "p1")})
		apply(store.Op{Kind: store.OpDelete, Mapping: vol("c", "p1")})
		apply(store.Op{Kind: store.OpCreate, Mapping: vol("c", "p1")})
		if rows, _ := s.List(ctx, store.Filter{}); len(rows) != 0 {
			t.Fatalf("rows left: %+v", rows)
		}
		// Old tombstones go; then a create is recorded again.
		if _, err := s.PruneTombstones(ctx, -time.Hour); err != nil {
			t.Fatal(err)
		}
		apply(store.Op{Kind: store.OpCreate, Mapping: vol("c", "p1")})
		if _, err := s.Find(ctx, "volumes", "c"); err != nil {
			t.Fatalf("after pruning: %v", err)
		}
	})
}

func TestApplyIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := migrated(t, dbtest.SQLite(t))
	err := s.Apply(ctx, []store.Op{{Kind: store.OpCreate, Mapping: vol("a", "p")}, {Kind: store.OpCreate, Mapping: vol("", "p")}})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Apply = %v", err)
	}
	if rows, _ := s.List(ctx, store.Filter{}); len(rows) != 0 {
		t.Fatalf("half a batch was applied: %+v", rows)
	}
}
