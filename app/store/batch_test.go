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
			if refused, err := s.Apply(ctx, ops); err != nil || len(refused) != 0 {
				t.Fatal(refused, err)
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
	_, err := s.Apply(ctx, []store.Op{{Kind: store.OpCreate, Mapping: vol("a", "p")}, {Kind: store.OpCreate, Mapping: vol("", "p")}})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Apply = %v", err)
	}
	if rows, _ := s.List(ctx, store.Filter{}); len(rows) != 0 {
		t.Fatalf("half a batch was applied: %+v", rows)
	}
}

// One cloud's bus speaks for that cloud only: its creates, moves and deletes
// never touch a row of another cloud, and its deletes leave no tombstone that
// would drop the other cloud's create.
func TestNotificationsSpeakForTheirOwnCloudOnly(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)
		at := func(sp, id, project string) store.Mapping {
			return store.Mapping{ResourceType: "images", ResourceID: id, ResourceSP: sp, ProjectID: project}
		}
		if refused, err := s.Apply(ctx, []store.Op{{Kind: store.OpCreate, Mapping: at("remote1", "victim", "p1")}}); err != nil || len(refused) != 0 {
			t.Fatal(refused, err)
		}
		forged := []store.Op{
			{Kind: store.OpCreate, Mapping: at("remote2", "victim", "evil")},
			{Kind: store.OpMove, Mapping: at("remote2", "victim", "evil")},
			{Kind: store.OpDelete, Mapping: at("remote2", "victim", "evil")},
			// remote2 deletes an id remote1 has not announced yet.
			{Kind: store.OpDelete, Mapping: at("remote2", "later", "")},
		}
		refused, err := s.Apply(ctx, forged)
		if err != nil || len(refused) != 2 || refused[0].Kind != store.OpCreate || refused[1].Kind != store.OpMove {
			t.Fatalf("refused %+v, %v; want the create and the move", refused, err)
		}
		if m, err := s.Find(ctx, "images", "victim"); err != nil || m.ResourceSP != "remote1" || m.ProjectID != "p1" {
			t.Fatalf("another cloud's bus changed the row: %+v %v", m, err)
		}
		if refused, err := s.Apply(ctx, []store.Op{{Kind: store.OpCreate, Mapping: at("remote1", "later", "p1")}}); err != nil || len(refused) != 0 {
			t.Fatal(refused, err)
		}
		if m, err := s.Find(ctx, "images", "later"); err != nil || m.ResourceSP != "remote1" {
			t.Fatalf("remote2's delete dropped remote1's create: %+v %v", m, err)
		}
		// The holder's own delete frees the id, for good against its late create.
		if _, err := s.Apply(ctx, []store.Op{{Kind: store.OpDelete, Mapping: at("remote1", "victim", "")},
			{Kind: store.OpCreate, Mapping: at("remote1", "victim", "p1")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Find(ctx, "images", "victim"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after its holder's delete: %v", err)
		}
		if _, err := s.Apply(ctx, []store.Op{{Kind: store.OpCreate, Mapping: at("default", "victim", "p2")}}); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Find(ctx, "images", "victim"); m.ResourceSP != "default" {
			t.Fatalf("after its holder's delete, another cloud may claim the id: %+v", m)
		}
	})
}

// What a cloud answers may add a row or refresh its own, never move another's.
func TestLearnNeverMovesARow(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)
		img := func(sp, project string) store.Mapping {
			return store.Mapping{ResourceType: "images", ResourceID: "0E4D8E4A-6B1C-4C5D-9E2F-1A2B3C4D5E6F", ResourceSP: sp, ProjectID: project}
		}
		if err := s.Learn(ctx, img("default", "p1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Learn(ctx, img("default", "p2")); err != nil {
			t.Fatalf("the same SP again: %v", err)
		}
		if err := s.Learn(ctx, img("remote1", "evil")); !errors.Is(err, store.ErrHeldElsewhere) {
			t.Fatalf("another SP's claim = %v, want ErrHeldElsewhere", err)
		}
		if m, err := s.Find(ctx, "images", "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"); err != nil || m.ResourceSP != "default" || m.ProjectID != "p2" {
			t.Fatalf("row now %+v %v", m, err)
		}
		// The operator's word still moves it.
		if err := s.Upsert(ctx, img("remote1", "p3")); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Find(ctx, "images", "0e4d8e4a6b1c4c5d9e2f1a2b3c4d5e6f"); m.ResourceSP != "remote1" {
			t.Fatalf("Upsert did not move the row: %+v", m)
		}
	})
}
