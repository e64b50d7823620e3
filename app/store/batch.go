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

const tombstoneSQL = `INSERT INTO resource_tombstone (resource_sp, resource_type, resource_id) VALUES (?, ?, ?)
	ON CONFLICT (resource_sp, resource_type, resource_id) DO UPDATE SET deleted_at = CURRENT_TIMESTAMP`

const tombstoneMySQL = `INSERT INTO resource_tombstone (resource_sp, resource_type, resource_id) VALUES (?, ?, ?)
	ON DUPLICATE KEY UPDATE deleted_at = CURRENT_TIMESTAMP(6)`

// A tombstone of the SP itself, or one from before tombstones named their SP (”).
const isDeletedSQL = `SELECT 1 FROM resource_tombstone
	WHERE resource_type = ? AND resource_id = ? AND resource_sp IN (?, '')`

// Only the SP a row names may delete it: another cloud's bus speaks for that cloud.
const deleteOwnSQL = `DELETE FROM resource_mapping WHERE resource_type = ? AND resource_id = ? AND resource_sp = ?`

// Apply performs a batch in one transaction: all of it is committed, or none. Every
// op is idempotent, so a batch redelivered after a crash changes nothing more. Each
// op speaks for the SP its mapping names: it adds rows, or changes and deletes rows
// of that SP only. The ops refused because the row names another SP are returned.
func (s *Store) Apply(ctx context.Context, ops []Op) (refused []Op, err error) {
	for i := range ops {
		if err := ops[i].Mapping.normalize(); err != nil {
			return nil, err
		}
	}
	release, err := s.write(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	defer s.cache.forget()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("while starting a transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	tombstone := tombstoneSQL
	if s.engine == dburl.MySQL {
		tombstone = tombstoneMySQL
	}
	tombstone = tx.Rebind(tombstone)
	isDeleted, del := tx.Rebind(isDeletedSQL), tx.Rebind(deleteOwnSQL)
	for _, op := range ops {
		m := op.Mapping
		switch op.Kind {
		case OpCreate, OpMove:
			var gone int
			err = tx.GetContext(ctx, &gone, isDeleted, m.ResourceType, m.ResourceID, m.ResourceSP)
			if err == nil {
				continue // deleted already: the create came late
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			err = s.learn(ctx, tx, m)
			if errors.Is(err, ErrHeldElsewhere) {
				refused, err = append(refused, op), nil
				continue
			}
			if err != nil {
				return nil, err
			}
		case OpDelete:
			if _, err = tx.ExecContext(ctx, del, m.ResourceType, m.ResourceID, m.ResourceSP); err != nil {
				return nil, err
			}
			if _, err = tx.ExecContext(ctx, tombstone, m.ResourceSP, m.ResourceType, m.ResourceID); err != nil {
				return nil, err
			}
		}
	}
	if err = tx.Commit(); err != nil {
		return nil, fmt.Errorf("while committing %d changes: %w", len(ops), err)
	}
	return refused, nil
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
