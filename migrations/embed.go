// Package migrations holds the database schema as numbered plain-SQL files, one
// directory per engine because SQLite, PostgreSQL and MySQL disagree on column types and
// on what ALTER TABLE may do. A shipped file is never edited: a change is a new number,
// present in every engine's directory.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite3/*.sql postgres/*.sql mysql/*.sql
var all embed.FS

// For returns the migrations of one engine, named as goose names its dialects
// ("sqlite3", "postgres", "mysql").
func For(dialect string) (fs.FS, error) {
	return fs.Sub(all, dialect)
}
