package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mixmatch/app/dburl"
)

// OpKind is what a notification does to the table.
type OpKind int

const (
	// OpCreate records a resource, unless it was already deleted (a delete can
	// overtake its create).
	OpCreate OpKind = iota
	// OpDelete forgets a resource and remembers that it is gone.
	OpDelete
	// OpMove changes a resource's project (a volume transfer), recording the
	// resource if it was unknown.
	OpMove
)

// Op is one change of a batch.
type Op struct {
	Kind    OpKind
	Mapping Mapping
}

const tombstoneSQL = `INSERT INTO resource_tombstone (resource_type, resource_id) VALUES (?, ?)
	ON CONFLICT (resource_type, resource_id) DO UPDATE SET deleted_at = CURRENT_TIMESTAMP`

const tombstoneMySQL = `INSERT INTO resource_tombstone (resource_type, resource_id) VALUES (?, ?)
	ON DUPLICATE KEY UPDATE deleted_at = CURRENT_TIMESTAMP(6)`

// Apply performs a batch in one transaction: all of it is committed, or none. Every
// op is idempotent, so a batch redelivered after a crash changes nothing more.
func (s *Store) Apply(ctx context.Context, ops []Op) (err error) {
	for i := range ops {
		if err := ops[i].Mapping.normalize(); err != nil {
			return err
		}
	}
	release, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("while starting a transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	upsert, tombstone := upsertSQL, tombstoneSQL
	if s.engine == dburl.MySQL {
		upsert, tombstone = upsertMySQL, tombstoneMySQL
	}
	upsert, tombstone = tx.Rebind(upsert), tx.Rebind(tombstone)
	isDeleted := tx.Rebind(`SELECT 1 FROM resource_tombstone WHERE resource_type = ? AND resource_id = ?`)
	del := tx.Rebind(`DELETE FROM resource_mapping WHERE resource_type = ? AND resource_id = ?`)
	for _, op := range ops {
		m := op.Mapping
		switch op.Kind {
		case OpCreate, OpMove:
			var gone int
			err = tx.GetContext(ctx, &gone, isDeleted, m.ResourceType, m.ResourceID)
			if err == nil {
				continue // deleted already: the create came late
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err = tx.ExecContext(ctx, upsert, m.ResourceType, m.ResourceID, m.ResourceSP, m.ProjectID); err != nil {
				return err
			}
		case OpDelete:
			if _, err = tx.ExecContext(ctx, del, m.ResourceType, m.ResourceID); err != nil {
				return err
			}
			if _, err = tx.ExecContext(ctx, tombstone, m.ResourceType, m.ResourceID); err != nil {
				return err
			}
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("while committing %d changes: %w", len(ops), err)
	}
	return nil
}

// PruneTombstones forgets deletions older than age; a create notification does not
// arrive that late.
func (s *Store) PruneTombstones(ctx context.Context, age time.Duration) (int64, error) {
	release, err := s.write(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM resource_tombstone WHERE deleted_at < ?`),
		time.Now().Add(-age).UTC())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
