package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// queryArg is where the SQL text sits among each database method's arguments.
var queryArg = map[string]int{
	"Exec": 0, "Query": 0, "QueryRow": 0, "Queryx": 0, "QueryRowx": 0, "MustExec": 0, "NamedExec": 0,
	"Prepare": 0, "Preparex": 0, "Rebind": 0,
	"ExecContext": 1, "QueryContext": 1, "QueryRowContext": 1, "QueryxContext": 1, "QueryRowxContext": 1,
	"NamedExecContext": 1, "PrepareContext": 1, "PreparexContext": 1, "Get": 1, "Select": 1,
	"GetContext": 2, "SelectContext": 2,
}

// The text of every SQL statement mixmatch runs is built from constants only, so
// that ids, names and project ids from requests and notifications can reach the
// database as bound parameters and nowhere else. The check is syntactic: a query
// is a string literal, a constant, a concatenation of those, or a local variable
// every assignment of which is one (strings.Join of such a local slice included).
func TestSQLTextIsBuiltFromConstantsOnly(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// dbtest creates and drops the test databases it names itself; it is never
		// linked into mixmatch.
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "dbtest") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if !importsSQL(f) {
			return nil
		}
		consts := packageConsts(filepath.Dir(path), fset, t)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			c := &constness{consts: consts, assigns: assignments(fn.Body)}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				i, ok := queryArg[sel.Sel.Name]
				if !ok || i >= len(call.Args) {
					return true
				}
				// A prepared statement ("stmt" by convention) runs the text its
				// Prepare call, checked here too, was given; its arguments are bound.
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "stmt" {
					return true
				}
				checked++
				if !c.constant(call.Args[i]) {
					t.Errorf("%s: the SQL text given to %s is not built from constants alone", fset.Position(call.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d database calls checked", checked)
	if checked < 10 {
		t.Fatalf("only %d database calls found: the check is not looking where the queries are", checked)
	}
}

func importsSQL(f *ast.File) bool {
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if p == "database/sql" || p == "github.com/jmoiron/sqlx" {
			return true
		}
	}
	return false
}

var constCache = map[string]map[string]bool{}

// packageConsts are the names of a package's string constants.
func packageConsts(dir string, fset *token.FileSet, t *testing.T) map[string]bool {
	if c, ok := constCache[dir]; ok {
		return c
	}
	names := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, spec := range g.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						names[n.Name] = true
					}
				}
			}
		}
	}
	constCache[dir] = names
	return names
}

// assignments are the right-hand sides each local name is given in a function.
func assignments(body *ast.BlockStmt) map[string][]ast.Expr {
	out := map[string][]ast.Expr{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.AssignStmt:
			if len(s.Lhs) != len(s.Rhs) {
				for _, l := range s.Lhs {
					if id, ok := l.(*ast.Ident); ok {
						out[id.Name] = append(out[id.Name], nil) // from a call: unknown
					}
				}
				return true
			}
			for i, l := range s.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					out[id.Name] = append(out[id.Name], s.Rhs[i])
				}
			}
		case *ast.ValueSpec:
			for i, id := range s.Names {
				if i < len(s.Values) {
					out[id.Name] = append(out[id.Name], s.Values[i])
				}
			}
		}
		return true
	})
	return out
}

type constness struct {
	consts  map[string]bool
	assigns map[string][]ast.Expr
	seen    map[string]bool
}

func (c *constness) constant(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return c.constant(e.X)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && c.constant(e.X) && c.constant(e.Y)
	case *ast.Ident:
		if c.consts[e.Name] {
			return true
		}
		rhs, ok := c.assigns[e.Name]
		if !ok {
			return false // a parameter or a field: from outside
		}
		if c.seen == nil {
			c.seen = map[string]bool{}
		}
		if c.seen[e.Name] {
			return true // already being checked higher up
		}
		c.seen[e.Name] = true
		defer delete(c.seen, e.Name)
		for _, r := range rhs {
			if r == nil || !c.constant(r) {
				return false
			}
		}
		return true
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		switch {
		case ok && sel.Sel.Name == "Rebind" && len(e.Args) == 1:
			return c.constant(e.Args[0])
		case ok && sel.Sel.Name == "Join" && len(e.Args) == 2:
			return c.constant(e.Args[0]) && c.constant(e.Args[1])
		}
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "append" {
			for _, a := range e.Args {
				if !c.constant(a) {
					return false
				}
			}
			return true
		}
		return false
	case *ast.CompositeLit:
		for _, el := range e.Elts {
			if !c.constant(el) {
				return false
			}
		}
		return true
	}
	return false
}

// The check itself tells a built query from a concatenated value.
func TestSQLTextCheckCatchesValues(t *testing.T) {
	src := `package x
const cols = "a, b"
func f(db DB, id string, n int) {
	q := "SELECT " + cols + " FROM t"
	q += " WHERE id = ?"
	db.Exec(q, id)
	bad := "SELECT * FROM t WHERE id = '" + id + "'"
	db.Exec(bad)
	db.GetContext(ctx, &v, db.Rebind(fmt.Sprintf("SELECT %d", n)))
}`
	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	fn := f.Decls[1].(*ast.FuncDecl)
	c := &constness{consts: map[string]bool{"cols": true}, assigns: assignments(fn.Body)}
	var got []bool
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Exec" || sel.Sel.Name == "GetContext") {
				got = append(got, c.constant(call.Args[queryArg[sel.Sel.Name]]))
			}
		}
		return true
	})
	if len(got) != 3 || !got[0] || got[1] || got[2] {
		t.Fatalf("constant? %v, want [true false false]", got)
	}
}
