package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"mixmatch/app/dburl"
	"mixmatch/migrations"
)

// Applied is one migration that Migrate ran.
type Applied struct {
	Version int64
	Name    string
}

func (s *Store) provider(logger *slog.Logger) (*goose.Provider, error) {
	fsys, err := migrations.For(s.engine)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	// db_sync may run on several hosts at once when a deployment tool starts them
	// together; the lock makes the others wait instead of applying a step twice.
	switch s.engine {
	case dburl.PostgreSQL:
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case dburl.MySQL:
		locker, err := lock.NewMySQLTableLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	return goose.NewProvider(goose.Dialect(s.engine), s.db.DB, fsys, opts...)
}

// Migrate brings the schema to the newest version and returns the steps it applied.
func (s *Store) Migrate(ctx context.Context, logger *slog.Logger) ([]Applied, error) {
	p, err := s.provider(logger)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	var applied []Applied
	for _, r := range results {
		if r.Error == nil {
			applied = append(applied, Applied{Version: r.Source.Version, Name: r.Source.Path})
		}
	}
	if err != nil {
		return applied, fmt.Errorf("while migrating the %s database: %w", s.engine, err)
	}
	return applied, nil
}

// SchemaVersion returns the version the database is at and the newest one known.
func (s *Store) SchemaVersion(ctx context.Context) (current, newest int64, err error) {
	p, err := s.provider(nil)
	if err != nil {
		return 0, 0, err
	}
	return p.GetVersions(ctx)
}

// CheckSchema refuses a database that db_sync has not brought up to date, so a worker
// never runs queries against columns that are not there yet.
func (s *Store) CheckSchema(ctx context.Context) error {
	current, newest, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("while reading the schema version (has `mixmatch-manage db_sync` run?): %w", err)
	}
	if current < newest {
		return fmt.Errorf("the database schema is at version %d, this mixmatch needs %d: run `mixmatch-manage db_sync`", current, newest)
	}
	if current > newest {
		return fmt.Errorf("the database schema is at version %d, newer than this mixmatch knows (%d): upgrade mixmatch", current, newest)
	}
	return nil
}
