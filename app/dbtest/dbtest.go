// Package dbtest gives tests a throwaway database on each engine mixmatch supports:
// a SQLite file in a temporary directory, and a fresh database on the PostgreSQL and
// MariaDB/MySQL servers named by MIXMATCH_TEST_POSTGRESQL and MIXMATCH_TEST_MYSQL,
// dropped when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mixmatch/app/dburl"
)

// URLs the tests create their databases with: the servers on loopback, as the user
// scripts/test-services.sh makes for them, mixmatch_test, who may create databases
// (on MariaDB only those named mixmatch_test_*, as these are) and nothing more; the
// servers' own admins are left alone. MySQL connects to information_schema, which
// every user may read, because the URL must name a database. Override with the
// environment variables.
const (
	DefaultPostgreSQL = "postgresql://mixmatch_test:mixmatch_test@127.0.0.1:5432/postgres"
	DefaultMySQL      = "mysql://mixmatch_test:mixmatch_test@127.0.0.1:3306/information_schema"
)

// Engine is one database engine under test.
type Engine struct {
	Name string // sqlite, postgresql or mysql
	// New returns the connection URL of a new, empty database.
	New func(t testing.TB) string
}

// Engines returns the engines to test: MIXMATCH_TEST_ENGINES (comma separated) or all
// three. A server that cannot be reached fails the test rather than skipping it: a
// silently skipped engine is how a MySQL-only bug ships.
func Engines() []Engine {
	names := os.Getenv("MIXMATCH_TEST_ENGINES")
	if names == "" {
		names = "sqlite,postgresql,mysql"
	}
	var engines []Engine
	for _, name := range strings.Split(names, ",") {
		switch strings.TrimSpace(name) {
		case "sqlite":
			engines = append(engines, Engine{Name: "sqlite", New: SQLite})
		case "postgresql":
			engines = append(engines, Engine{Name: "postgresql", New: PostgreSQL})
		case "mysql":
			engines = append(engines, Engine{Name: "mysql", New: func(t testing.TB) string {
				return server(t, env("MIXMATCH_TEST_MYSQL", DefaultMySQL), "DROP DATABASE IF EXISTS %s")
			}})
		default:
			panic("MIXMATCH_TEST_ENGINES: unknown engine " + name)
		}
	}
	return engines
}

// ForEach runs fn as a subtest on a new database of every engine.
func ForEach(t *testing.T, fn func(t *testing.T, connection string)) {
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) { fn(t, e.New(t)) })
	}
}

// PostgreSQL returns the URL of a new database on the PostgreSQL server.
func PostgreSQL(t testing.TB) string {
	return server(t, env("MIXMATCH_TEST_POSTGRESQL", DefaultPostgreSQL), "DROP DATABASE IF EXISTS %s WITH (FORCE)")
}

// SQLite returns the URL of a SQLite file in the test's temporary directory.
func SQLite(t testing.TB) string {
	return "sqlite:///" + filepath.Join(t.TempDir(), "mixmatch.db")
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func server(t testing.TB, admin, dropFormat string) string {
	t.Helper()
	target, err := dburl.Parse(admin)
	if err != nil {
		t.Fatalf("admin URL %s: %v", admin, err)
	}
	db, err := sql.Open(target.Driver, target.DSN)
	if err != nil {
		t.Fatal(err)
	}
	name := "mixmatch_test_" + randomHex(6)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatalf("cannot create a test database on %s (is the server running? scripts/test-services.sh starts it): %v",
			dburl.Redacted(admin), err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec(strings.Replace(dropFormat, "%s", name, 1)); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LockSQLite makes another process's writer hold the SQLite database a connection
// URL names (BEGIN IMMEDIATE), as a long transaction elsewhere would, until unlock
// is called or the test ends.
func LockSQLite(t testing.TB, connection string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", strings.TrimPrefix(connection, "sqlite:///"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}
