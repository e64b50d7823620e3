package dburl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, engine, driver, dsn string
	}{
		{"sqlite:////var/lib/mixmatch/mixmatch.db", SQLite, "sqlite3", "/var/lib/mixmatch/mixmatch.db?" + sqliteParams},
		{"sqlite:///var/mixmatch.db", SQLite, "sqlite3", "var/mixmatch.db?" + sqliteParams},
		{"sqlite://", SQLite, "sqlite3", ":memory:?_foreign_keys=on"},
		{"sqlite:///:memory:", SQLite, "sqlite3", ":memory:?_foreign_keys=on"},
		{"postgresql://mm:pw@db.example:5433/mixmatch", PostgreSQL, "pgx", "postgres://mm:pw@db.example:5433/mixmatch"},
		{"postgresql+psycopg2://mm:pw@db/mixmatch?sslmode=require", PostgreSQL, "pgx", "postgres://mm:pw@db/mixmatch?sslmode=require"},
		{"postgres:///mixmatch?host=/run/postgresql", PostgreSQL, "pgx", "postgres:///mixmatch?host=/run/postgresql"},
		{"mysql://mm:p%40ss@db.example/mixmatch", MySQL, "mysql", "mm:p@ss@tcp(db.example:3306)/mixmatch?"},
		{"mysql+pymysql://root:pw@127.0.0.1:3307/mixmatch?charset=utf8&plugin=dbcounter", MySQL, "mysql", "root:pw@tcp(127.0.0.1:3307)/mixmatch?"},
		{"mysql+pymysql://root@/mixmatch?unix_socket=/run/mysqld/mysqld.sock", MySQL, "mysql", "root@unix(/run/mysqld/mysqld.sock)/mixmatch?"},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.in, err)
			continue
		}
		if got.Engine != tc.engine || got.Driver != tc.driver || !strings.HasPrefix(got.DSN, tc.dsn) {
			t.Errorf("Parse(%s) = %+v, want %s %s %s...", tc.in, got, tc.engine, tc.driver, tc.dsn)
		}
	}
}

func TestMySQLOptions(t *testing.T) {
	got, err := Parse("mysql://u:p@h/db")
	if err != nil {
		t.Fatal(err)
	}
	// Matched-rows counting, UTC times, read-only rejection and utf8mb4 are what the
	// store relies on.
	for _, want := range []string{"clientFoundRows=true", "parseTime=true", "rejectReadOnly=true", "charset=utf8mb4"} {
		if !strings.Contains(got.DSN, want) {
			t.Errorf("DSN %s lacks %s", got.DSN, want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/mixmatch.db", "not a database URL"},
		{"oracle://u:p@h/db", "unsupported database engine"},
		{"sqlite:/x.db", "not a database URL"},
		{"sqlite://x.db", "three slashes"},
		{"sqlite:///x.db?mode=ro", "not supported"},
		{"postgresql://u:p@h:5432/", "names no database"},
		{"mysql://u:p@h", "names no database"},
		{"mysql://u:p@h/db?charset=latin1", "charset"},
		{"mysql://u:p@h/db?ssl_ca=/x", `option "ssl_ca"`},
		{"postgresql://u:secret@h:bad/db", "postgresql URL"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error with %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%s) shows the password: %v", tc.in, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	if got := Redacted("mysql+pymysql://root:secret@h/db"); strings.Contains(got, "secret") {
		t.Fatalf("Redacted = %s", got)
	}
}
