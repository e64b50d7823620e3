package migrations

import (
	"io/fs"
	"reflect"
	"testing"
)

// A migration shipped for one engine and forgotten for another would leave the
// schemas apart while both report the same version.
func TestEveryEngineHasTheSameMigrations(t *testing.T) {
	var want []string
	for _, engine := range []string{"sqlite3", "postgres", "mysql"} {
		fsys, err := For(engine)
		if err != nil {
			t.Fatal(err)
		}
		names, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: no migrations (%v)", engine, err)
		}
		if want == nil {
			want = names
		} else if !reflect.DeepEqual(names, want) {
			t.Errorf("%s has %v, sqlite3 has %v", engine, names, want)
		}
	}
}
