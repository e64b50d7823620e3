// Package store keeps the resource_mapping table: which service provider (SP) holds
// each image, volume or snapshot, and in which project. Workers read it on every call
// and the ingester writes it, possibly from several processes on one SQLite file.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"mixmatch/app/dburl"

	// Database drivers, chosen by the connection URL.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"
)

// ErrNotFound is returned when no mapping exists for a resource.
var ErrNotFound = errors.New("no such mapping")

// ErrInvalid wraps every refusal of a malformed mapping.
var ErrInvalid = errors.New("invalid mapping")

// Mapping is one row of resource_mapping.
type Mapping struct {
	ID           int64     `db:"id" json:"id"`
	ResourceType string    `db:"resource_type" json:"resource_type"`
	ResourceID   string    `db:"resource_id" json:"resource_id"`
	ResourceSP   string    `db:"resource_sp" json:"resource_sp"`
	ProjectID    string    `db:"project_id" json:"project_id"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time `db:"updated_at" json:"updated_at"`
}

// Store is the mapping table on one database.
type Store struct {
	db     *sqlx.DB
	engine string
	// writer, for SQLite, lets one write of this process at a time take a
	// connection: SQLite has one writer anyway, and writes queued on its lock (up to
	// busy_timeout each) would otherwise hold every pooled connection and stall
	// the reads that routing needs.
	writer chan struct{}

	// find is Find's statement, prepared once the table exists: the lookup on
	// every routed call then skips parsing and planning its SQL again.
	// Read without a lock on every call; findMu only serialises preparing it.
	findMu sync.Mutex
	find   atomic.Pointer[sqlx.Stmt]
	// cache keeps Find's reads for Options.MappingCacheTime; nil keeps none.
	cache *findCache
}

// write takes the writer's turn; release gives it back.
func (s *Store) write(ctx context.Context) (release func(), err error) {
	if s.writer == nil {
		return func() {}, nil
	}
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for this process's other database writes: %w", ctx.Err())
	}
}

// Options tune the connection pool.
type Options struct {
	// MaxOpenConns bounds the connections a process holds (0: driver default).
	MaxOpenConns int
	// MappingCacheTime is how long Find may answer from what it read before
	// ([database] mapping_cache_time); 0 reads the table every time.
	MappingCacheTime time.Duration
}

// Open connects to the database a [database] connection URL names. It does not
// migrate: see Migrate and CheckSchema.
func Open(ctx context.Context, connection string, opts Options) (*Store, error) {
	target, err := dburl.Parse(connection)
	if err != nil {
		return nil, err
	}
	if target.Path != "" {
		// SQLite creates the file but not its directory; ./var is not in the tree.
		if err := os.MkdirAll(filepath.Dir(target.Path), 0o750); err != nil {
			return nil, fmt.Errorf("while creating the directory of %s: %w", target.Path, err)
		}
	}
	db, err := sqlx.Open(target.Driver, target.DSN)
	if err != nil {
		return nil, err
	}
	if target.Memory() {
		// Every new connection to ":memory:" is a new, empty database.
		db.SetMaxOpenConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else if opts.MaxOpenConns > 0 {
		db.SetMaxOpenConns(opts.MaxOpenConns)
		db.SetMaxIdleConns(opts.MaxOpenConns)
	}
	// Galera and PostgreSQL behind a load balancer drop idle connections.
	if target.Engine != dburl.SQLite {
		db.SetConnMaxLifetime(time.Hour)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("while connecting to %s: %w", dburl.Redacted(connection), err)
	}
	st := &Store{db: db, engine: target.Engine, cache: newFindCache(opts.MappingCacheTime)}
	if target.Engine == dburl.SQLite {
		st.writer = make(chan struct{}, 1)
	}
	return st, nil
}

// Close releases the connections.
func (s *Store) Close() error {
	if stmt := s.find.Swap(nil); stmt != nil {
		stmt.Close()
	}
	return s.db.Close()
}

// Engine names the database engine (dburl.SQLite, dburl.PostgreSQL or dburl.MySQL).
func (s *Store) Engine() string { return s.engine }

// DB exposes the connection for health checks and tests.
func (s *Store) DB() *sqlx.DB { return s.db }

// NormalizeID strips dashes and lower-cases, as upstream stored ids: clients send
// UUIDs with or without dashes, and both must find the same row.
func NormalizeID(id string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(id), "-", ""))
}

func (m *Mapping) normalize() error {
	m.ResourceType = strings.TrimSpace(m.ResourceType)
	m.ResourceID = NormalizeID(m.ResourceID)
	m.ProjectID = NormalizeID(m.ProjectID)
	m.ResourceSP = strings.TrimSpace(m.ResourceSP)
	switch {
	case m.ResourceType == "" || len(m.ResourceType) > 60:
		return fmt.Errorf("%w: resource type %q must have 1 to 60 characters", ErrInvalid, m.ResourceType)
	case m.ResourceID == "" || len(m.ResourceID) > 255:
		return fmt.Errorf("%w: resource id %q must have 1 to 255 characters", ErrInvalid, m.ResourceID)
	case m.ResourceSP == "" || len(m.ResourceSP) > 255:
		return fmt.Errorf("%w: service provider %q must have 1 to 255 characters", ErrInvalid, m.ResourceSP)
	case len(m.ProjectID) > 255:
		return fmt.Errorf("%w: project id %q is longer than 255 characters", ErrInvalid, m.ProjectID)
	}
	return nil
}

const columns = `id, resource_type, resource_id, resource_sp, project_id, created_at, updated_at`

// Find returns the mapping of one resource, or ErrNotFound.
func (s *Store) Find(ctx context.Context, resourceType, resourceID string) (Mapping, error) {
	id := NormalizeID(resourceID)
	var gen uint64
	if s.cache != nil {
		m, ok, g := s.cache.get(resourceType, id)
		if ok {
			return m, nil
		}
		gen = g
	}
	var m Mapping
	var err error
	if stmt := s.findStmt(ctx); stmt != nil {
		err = stmt.GetContext(ctx, &m, resourceType, id)
	} else {
		err = s.db.GetContext(ctx, &m, s.db.Rebind(findSQL), resourceType, id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Mapping{}, ErrNotFound
	}
	if err != nil {
		return Mapping{}, fmt.Errorf("while looking up %s %s: %w", resourceType, resourceID, err)
	}
	if s.cache != nil {
		s.cache.put(m, gen)
	}
	return m, nil
}

const findSQL = `SELECT ` + columns + ` FROM resource_mapping WHERE resource_type = ? AND resource_id = ?`

// findStmt prepares Find's statement on first use; nil, and tried again next time,
// while it cannot be (before the first migration the table does not exist).
func (s *Store) findStmt(ctx context.Context) *sqlx.Stmt {
	if stmt := s.find.Load(); stmt != nil {
		return stmt
	}
	s.findMu.Lock()
	defer s.findMu.Unlock()
	if s.find.Load() == nil {
		if stmt, err := s.db.PreparexContext(ctx, s.db.Rebind(findSQL)); err == nil {
			s.find.Store(stmt)
		}
	}
	return s.find.Load()
}

// upsertSQL writes a mapping in one statement against the unique key, so that two
// writers learning the same resource at once leave exactly one row.
const upsertSQL = `INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (resource_type, resource_id) DO UPDATE SET
		resource_sp = excluded.resource_sp, project_id = excluded.project_id,
		updated_at = CURRENT_TIMESTAMP`

// MySQL has no ON CONFLICT; VALUES() is what MariaDB and MySQL both read.
const upsertMySQL = `INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
	VALUES (?, ?, ?, ?)
	ON DUPLICATE KEY UPDATE resource_sp = VALUES(resource_sp), project_id = VALUES(project_id),
		updated_at = CURRENT_TIMESTAMP(6)`

// learnSQL records a mapping, or refreshes the project of a row that names the
// same SP; a row that names another SP is left as it is (the conflict clause's
// WHERE), and learn then reads who holds it.
const learnSQL = `INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (resource_type, resource_id) DO UPDATE SET
		project_id = excluded.project_id, updated_at = CURRENT_TIMESTAMP
	WHERE resource_mapping.resource_sp = excluded.resource_sp`

const learnMySQL = `INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
	VALUES (?, ?, ?, ?)
	ON DUPLICATE KEY UPDATE
		project_id = IF(resource_sp = VALUES(resource_sp), VALUES(project_id), project_id),
		updated_at = IF(resource_sp = VALUES(resource_sp), CURRENT_TIMESTAMP(6), updated_at)`

const holderSQL = `SELECT resource_sp FROM resource_mapping WHERE resource_type = ? AND resource_id = ?`

// ErrHeldElsewhere is a learned mapping refused because the row names another SP.
var ErrHeldElsewhere = errors.New("the mapping names another service provider")

// Learn records where a resource was seen to live, unless the table already says
// another SP holds it: then it changes nothing and returns ErrHeldElsewhere. A
// create answer, a broadcast hit or a notification may add a row, never move one:
// only the holder's own evidence (its delete notification, a 404 confirmed with
// mixmatch's own account) frees a row for another SP.
func (s *Store) Learn(ctx context.Context, m Mapping) (err error) {
	if err := m.normalize(); err != nil {
		return err
	}
	defer s.cache.forget(cacheKey{m.ResourceType, m.ResourceID})
	release, err := s.write(ctx)
	if err != nil {
		return fmt.Errorf("while recording %s %s at %s: %w", m.ResourceType, m.ResourceID, m.ResourceSP, err)
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
	if err = s.learn(ctx, tx, m); err != nil {
		return err
	}
	return tx.Commit()
}

// learn is Learn within a transaction. The holder is read back rather than told
// by the count of rows changed, which MySQL reports as found rows here.
func (s *Store) learn(ctx context.Context, tx *sqlx.Tx, m Mapping) error {
	query := learnSQL
	if s.engine == dburl.MySQL {
		query = learnMySQL
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(query), m.ResourceType, m.ResourceID, m.ResourceSP, m.ProjectID); err != nil {
		return fmt.Errorf("while recording %s %s at %s: %w", m.ResourceType, m.ResourceID, m.ResourceSP, err)
	}
	var holder string
	if err := tx.GetContext(ctx, &holder, tx.Rebind(holderSQL), m.ResourceType, m.ResourceID); err != nil {
		return fmt.Errorf("while recording %s %s at %s: %w", m.ResourceType, m.ResourceID, m.ResourceSP, err)
	}
	if holder != m.ResourceSP {
		return fmt.Errorf("%s %s at %s (held by %s): %w", m.ResourceType, m.ResourceID, m.ResourceSP, holder, ErrHeldElsewhere)
	}
	return nil
}

// Upsert records where a resource lives, replacing what was known of it: the
// operator's word (mixmatch-manage mappings add), not a cloud's.
func (s *Store) Upsert(ctx context.Context, m Mapping) error {
	if err := m.normalize(); err != nil {
		return err
	}
	defer s.cache.forget(cacheKey{m.ResourceType, m.ResourceID})
	query := upsertSQL
	if s.engine == dburl.MySQL {
		query = upsertMySQL
	}
	release, err := s.write(ctx)
	if err != nil {
		return fmt.Errorf("while recording %s %s at %s: %w", m.ResourceType, m.ResourceID, m.ResourceSP, err)
	}
	defer release()
	_, err = s.db.ExecContext(ctx, s.db.Rebind(query), m.ResourceType, m.ResourceID, m.ResourceSP, m.ProjectID)
	if err != nil {
		return fmt.Errorf("while recording %s %s at %s: %w", m.ResourceType, m.ResourceID, m.ResourceSP, err)
	}
	return nil
}

// Delete forgets a resource; it reports whether a row was there.
func (s *Store) Delete(ctx context.Context, resourceType, resourceID string) (bool, error) {
	defer s.cache.forget(cacheKey{resourceType, NormalizeID(resourceID)})
	release, err := s.write(ctx)
	if err != nil {
		return false, fmt.Errorf("while deleting %s %s: %w", resourceType, resourceID, err)
	}
	defer release()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM resource_mapping
		WHERE resource_type = ? AND resource_id = ?`), resourceType, NormalizeID(resourceID))
	if err != nil {
		return false, fmt.Errorf("while deleting %s %s: %w", resourceType, resourceID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// DeleteHeldBy forgets a resource if the row names sp: a cloud's word that it
// deleted its copy frees the id, and says nothing of another cloud's.
func (s *Store) DeleteHeldBy(ctx context.Context, resourceType, resourceID, sp string) (bool, error) {
	defer s.cache.forget(cacheKey{resourceType, NormalizeID(resourceID)})
	release, err := s.write(ctx)
	if err != nil {
		return false, fmt.Errorf("while deleting %s %s: %w", resourceType, resourceID, err)
	}
	defer release()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM resource_mapping
		WHERE resource_type = ? AND resource_id = ? AND resource_sp = ?`), resourceType, NormalizeID(resourceID), sp)
	if err != nil {
		return false, fmt.Errorf("while deleting %s %s: %w", resourceType, resourceID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ChangeProject moves a resource to another project (a volume transfer); it reports
// whether the resource was known.
func (s *Store) ChangeProject(ctx context.Context, resourceType, resourceID, projectID string) (bool, error) {
	defer s.cache.forget(cacheKey{resourceType, NormalizeID(resourceID)})
	projectID = NormalizeID(projectID)
	if projectID == "" || len(projectID) > 255 {
		return false, fmt.Errorf("%w: project id %q must have 1 to 255 characters", ErrInvalid, projectID)
	}
	release, err := s.write(ctx)
	if err != nil {
		return false, fmt.Errorf("while moving %s %s to project %s: %w", resourceType, resourceID, projectID, err)
	}
	defer release()
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE resource_mapping
		SET project_id = ?, updated_at = CURRENT_TIMESTAMP
		WHERE resource_type = ? AND resource_id = ?`), projectID, resourceType, NormalizeID(resourceID))
	if err != nil {
		return false, fmt.Errorf("while moving %s %s to project %s: %w", resourceType, resourceID, projectID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Filter selects mappings; empty fields match everything.
type Filter struct {
	Type    string
	SP      string
	Project string
	// Limit bounds the rows returned (0: no bound).
	Limit int
}

// List returns the mappings a filter selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Mapping, error) {
	var where []string
	var args []any
	if f.Type != "" {
		where, args = append(where, "resource_type = ?"), append(args, f.Type)
	}
	if f.SP != "" {
		where, args = append(where, "resource_sp = ?"), append(args, f.SP)
	}
	if f.Project != "" {
		where, args = append(where, "project_id = ?"), append(args, NormalizeID(f.Project))
	}
	query := `SELECT ` + columns + ` FROM resource_mapping`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	mappings := []Mapping{}
	if err := s.db.SelectContext(ctx, &mappings, s.db.Rebind(query), args...); err != nil {
		return nil, fmt.Errorf("while listing mappings: %w", err)
	}
	return mappings, nil
}
