// Package dburl turns the SQLAlchemy-style URL of mixmatch.conf's [database] connection
// into a Go driver name and DSN, so an operator keeps the string oslo.db read.
package dburl

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Engine names as goose names its dialects.
const (
	SQLite     = "sqlite3"
	PostgreSQL = "postgres"
	MySQL      = "mysql"
)

// Target is where a connection string leads.
type Target struct {
	Engine string // SQLite, PostgreSQL or MySQL
	Driver string // database/sql driver name
	DSN    string
	// Path is the SQLite file ("" for an in-memory database).
	Path string
}

// Memory reports an in-memory SQLite database, which lives as long as one connection.
func (t Target) Memory() bool { return t.Engine == SQLite && t.Path == "" }

// SQLite gets a busy timeout so that several workers and the ingester wait for each
// other instead of failing with "database is locked", WAL so that readers never wait
// for the writer, and immediate transactions so that a read-then-write transaction
// cannot deadlock against another one upgrading its lock.
const sqliteParams = "_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_foreign_keys=on"

// Parse reads a connection URL: sqlite:////abs/path.db, sqlite:///relative.db (relative
// to the working directory), sqlite:// (memory), postgresql[+driver]://user:pass@host:port/db
// and mysql[+driver]://user:pass@host:port/db.
func Parse(raw string) (Target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Target{}, fmt.Errorf("%q is not a database URL (expected sqlite:///path, postgresql://... or mysql://...)", redact(raw))
	}
	base, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "sqlite":
		return parseSQLite(rest)
	case "postgresql", "postgres":
		return parsePostgres(rest)
	case "mysql", "mariadb":
		return parseMySQL(rest)
	}
	return Target{}, fmt.Errorf("unsupported database engine %q (use sqlite, postgresql or mysql)", scheme)
}

func parseSQLite(rest string) (Target, error) {
	// SQLAlchemy: "sqlite://" + "/" + path, so "sqlite:////abs" is absolute and
	// "sqlite:///rel" relative; "sqlite://" and "sqlite:///:memory:" are memory.
	path, query, _ := strings.Cut(rest, "?")
	if query != "" {
		return Target{}, fmt.Errorf("sqlite URL options (%q) are not supported", query)
	}
	if path == "" || path == "/:memory:" {
		return Target{Engine: SQLite, Driver: "sqlite3", DSN: ":memory:?_foreign_keys=on"}, nil
	}
	if !strings.HasPrefix(path, "/") {
		return Target{}, fmt.Errorf("sqlite URL needs three slashes before a relative path and four before an absolute one: sqlite:///%s", path)
	}
	path = path[1:]
	if strings.ContainsAny(path, "?#%") {
		return Target{}, fmt.Errorf("sqlite path %q contains one of ? # %%", path)
	}
	return Target{Engine: SQLite, Driver: "sqlite3", Path: filepath.Clean(path),
		DSN: filepath.Clean(path) + "?" + sqliteParams}, nil
}

func parsePostgres(rest string) (Target, error) {
	u, err := url.Parse("postgres://" + rest)
	if err != nil {
		return Target{}, fmt.Errorf("postgresql URL: %s", redactErr(err))
	}
	if strings.Trim(u.Path, "/") == "" {
		return Target{}, fmt.Errorf("postgresql URL names no database (postgresql://user:pass@host:port/DBNAME)")
	}
	// pgx reads the libpq URL form, query options (sslmode, host=/socket/dir, ...) included.
	return Target{Engine: PostgreSQL, Driver: "pgx", DSN: u.String()}, nil
}

// mysqlIgnored are options meaningful only to SQLAlchemy or PyMySQL; devstack writes
// plugin=dbcounter into every connection string.
var mysqlIgnored = map[string]bool{"plugin": true, "binary_prefix": true, "read_default_group": true}

func parseMySQL(rest string) (Target, error) {
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		return Target{}, fmt.Errorf("mysql URL: %s", redactErr(err))
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.Trim(u.Path, "/")
	if cfg.DBName == "" {
		return Target{}, fmt.Errorf("mysql URL names no database (mysql://user:pass@host:port/DBNAME)")
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "3306"
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// UPDATE must report rows matched, not rows changed: moving a mapping to the
	// project it already has is a success, not "not found".
	cfg.ClientFoundRows = true
	// After a Galera or primary failover, a read-only node must drop the connection
	// rather than fail every write.
	cfg.RejectReadOnly = true
	cfg.Timeout = 10 * time.Second
	for key, values := range u.Query() {
		value := values[len(values)-1]
		switch {
		case key == "charset":
			// PyMySQL's utf8 is MySQL's three-byte utf8; utf8mb4 is a superset of it.
			if value != "utf8" && value != "utf8mb4" {
				return Target{}, fmt.Errorf("mysql charset %q is not supported (use utf8 or utf8mb4)", value)
			}
		case key == "unix_socket":
			cfg.Net, cfg.Addr = "unix", value
		case mysqlIgnored[key]:
		default:
			return Target{}, fmt.Errorf("mysql URL option %q is not supported (supported: charset, unix_socket)", key)
		}
	}
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return Target{}, err
	}
	return Target{Engine: MySQL, Driver: "mysql", DSN: cfg.FormatDSN()}, nil
}

// redact keeps a password out of error messages and logs.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "***" + raw[i:]
	}
	return raw
}

// url.Error quotes the whole URL, password included.
func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// Redacted returns the connection string with its password replaced, for logs.
func Redacted(raw string) string { return redact(raw) }
