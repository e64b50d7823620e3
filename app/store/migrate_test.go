package store_test

import (
	"context"
	"strings"
	"testing"

	"mixmatch/app/dbtest"
	"mixmatch/app/dburl"
	"mixmatch/app/store"
)

// The DDL SQLAlchemy's create_all ran for the Python mixmatch's ResourceMapping model.
var upstreamDDL = map[string]string{
	dburl.SQLite: `CREATE TABLE resource_mapping (id INTEGER NOT NULL, resource_type VARCHAR(60) NOT NULL,
		resource_id VARCHAR(255) NOT NULL, resource_sp VARCHAR(255) NOT NULL,
		project_id VARCHAR(255) NOT NULL, PRIMARY KEY (id))`,
	dburl.PostgreSQL: `CREATE TABLE resource_mapping (id SERIAL NOT NULL, resource_type VARCHAR(60) NOT NULL,
		resource_id VARCHAR(255) NOT NULL, resource_sp VARCHAR(255) NOT NULL,
		project_id VARCHAR(255) NOT NULL, PRIMARY KEY (id))`,
	dburl.MySQL: `CREATE TABLE resource_mapping (id INTEGER NOT NULL AUTO_INCREMENT, resource_type VARCHAR(60) NOT NULL,
		resource_id VARCHAR(255) NOT NULL, resource_sp VARCHAR(255) NOT NULL,
		project_id VARCHAR(255) NOT NULL, PRIMARY KEY (id))`,
}

// An operator moving from the Python mixmatch keeps their table: db_sync takes it over,
// normalises hand-written ids and keeps the newest of duplicate rows.
func TestMigrateTakesOverAnUpstreamTable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := open(t, connection)
		db := s.DB()
		db.MustExec(upstreamDDL[s.Engine()])
		for _, row := range [][4]string{
			{"volumes", "aaa", "default", "p1"},
			{"volumes", "aaa", "remote1", "p1"}, // learned later: wins
			{"images", "BBB-1", "default", "P-2"},
			{"snapshots", "ccc", "remote1", "p3"},
		} {
			db.MustExec(db.Rebind(`INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
				VALUES (?, ?, ?, ?)`), row[0], row[1], row[2], row[3])
		}

		applied, err := s.Migrate(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) < 2 {
			t.Fatalf("applied %v, want every migration", applied)
		}
		rows, err := s.List(ctx, store.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, m := range rows {
			got = append(got, m.ResourceType+"/"+m.ResourceID+"@"+m.ResourceSP+":"+m.ProjectID)
		}
		want := "volumes/aaa@remote1:p1 images/bbb1@default:p2 snapshots/ccc@remote1:p3"
		if strings.Join(got, " ") != want {
			t.Fatalf("after takeover: %v, want %s", got, want)
		}
		if err := s.CheckSchema(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Operators fix the table with plain SQL: an INSERT of the four upstream columns gets
// its timestamps from the defaults, and a second row for the same resource is refused.
func TestPlainSQLInsert(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := migrated(t, connection)
		insert := s.DB().Rebind(`INSERT INTO resource_mapping (resource_type, resource_id, resource_sp, project_id)
			VALUES (?, ?, ?, ?)`)
		if _, err := s.DB().Exec(insert, "images", "ddd", "remote1", "p"); err != nil {
			t.Fatal(err)
		}
		m, err := s.Find(ctx, "images", "ddd")
		if err != nil {
			t.Fatal(err)
		}
		if m.CreatedAt.IsZero() || m.UpdatedAt.IsZero() || m.ID == 0 {
			t.Fatalf("defaults not applied: %+v", m)
		}
		if _, err := s.DB().Exec(insert, "images", "ddd", "default", "p"); err == nil {
			t.Fatal("a second row for the same resource was accepted")
		}
	})
}

func TestCheckSchemaRefusesAnUnmigratedDatabase(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, connection string) {
		ctx := context.Background()
		s := open(t, connection)
		err := s.CheckSchema(ctx)
		if err == nil || !strings.Contains(err.Error(), "db_sync") {
			t.Fatalf("CheckSchema before db_sync = %v, want an error naming db_sync", err)
		}
		if _, err := s.Migrate(ctx, nil); err != nil {
			t.Fatal(err)
		}
		// db_sync twice is a no-op.
		applied, err := s.Migrate(ctx, nil)
		if err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate = %v, %v", applied, err)
		}
		if err := s.CheckSchema(ctx); err != nil {
			t.Fatal(err)
		}
		current, newest, err := s.SchemaVersion(ctx)
		if err != nil || current != newest || newest < 2 {
			t.Fatalf("SchemaVersion = %d, %d, %v", current, newest, err)
		}
	})
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, connection := range []string{"oracle://x/y", "postgresql://u:secret@127.0.0.1:1/db"} {
		_, err := store.Open(context.Background(), connection, store.Options{})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", connection)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
	if _, err := store.Open(context.Background(), "sqlite:///"+t.TempDir()+"/a?b", store.Options{}); err == nil {
		t.Fatal("sqlite URL with a query was accepted")
	}
}
