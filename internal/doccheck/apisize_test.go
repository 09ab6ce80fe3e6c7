package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The size of the library's API, counted as issue 30 counts it: exported
// types, funcs, methods on exported types, vars and consts declared in the
// non-test files of the library packages (not internal/, not the other
// modules), and the exported Err… variables among them. The budgets are
// ratchets: lower them when the API shrinks, never raise them without
// deciding to.
const (
	maxLibraryIdentifiers    = 229
	maxTokenstoreIdentifiers = 29
	maxErrVars               = 35
	maxFuncLines             = 80
)

// TestAPISize fails when the library's API grows past its budgets, or a
// function of the library module (internal/ included) grows past
// maxFuncLines. go test -v -run TestAPISize ./internal/doccheck/ prints
// the count per package.
func TestAPISize(t *testing.T) {
	perPkg, errVars, err := exportedIdentifiers(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, pkg := range slices.Sorted(func(yield func(string) bool) {
		for k := range perPkg {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("%-28s %3d", pkg, perPkg[pkg])
		total += perPkg[pkg]
	}
	t.Logf("total %d, exported Err… variables %d", total, errVars)
	if total > maxLibraryIdentifiers {
		t.Errorf("the library exports %d identifiers, budget %d", total, maxLibraryIdentifiers)
	}
	if n := perPkg["tokenstore"]; n > maxTokenstoreIdentifiers {
		t.Errorf("tokenstore exports %d identifiers, budget %d", n, maxTokenstoreIdentifiers)
	}
	if errVars > maxErrVars {
		t.Errorf("the library exports %d Err… variables, budget %d", errVars, maxErrVars)
	}
	long, err := longFunctions(filepath.Join("..", ".."), maxFuncLines)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range long {
		t.Errorf("function over %d lines: %s", maxFuncLines, l)
	}
}

// TestAPISizeCounts: the counter counts what it says on a package made
// for it, and sees a long function.
func TestAPISizeCounts(t *testing.T) {
	root := t.TempDir()
	src := "package p\n\nimport \"errors\"\n\n" +
		"type T struct{}\ntype u struct{}\n\n" +
		"func (T) A()  {}\nfunc (T) b()  {}\nfunc (u) C()  {}\nfunc F()      {}\nfunc g()      {}\n\n" +
		"var ErrX = errors.New(\"x\")\nvar V, w = 1, 2\n\nconst K = 1\n\n" +
		"func Long() {\n" + strings.Repeat("\t_ = 1\n", 5) + "}\n"
	for _, dir := range []string{"p", "internal/q"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "p.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	perPkg, errVars, err := exportedIdentifiers(root)
	if err != nil {
		t.Fatal(err)
	}
	// T, T.A, F, ErrX, V, K, Long; not u.C, T.b, g, w, nor internal/.
	if len(perPkg) != 1 || perPkg["p"] != 7 || errVars != 1 {
		t.Fatalf("counted %v and %d Err vars, want p: 7 and 1", perPkg, errVars)
	}
	long, err := longFunctions(root, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(long) != 2 || !strings.Contains(long[0], "internal/q/p.go:Long") || !strings.Contains(long[1], "p/p.go:Long") {
		t.Fatalf("long functions %q, want Long in both files", long)
	}
}

// libraryGoFiles calls fn with the path (relative to root) of every
// non-test Go file of the library module under root; inInternal reports
// whether it lies under an internal/ directory.
func libraryGoFiles(root string, fn func(rel string, inInternal bool) error) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if top := strings.Split(rel, "/")[0]; top != "internal" && slices.Contains(notLibrary, top) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		return fn(rel, slices.Contains(strings.Split(rel, "/"), "internal"))
	})
}

// exportedIdentifiers counts, per library package (outside internal/),
// the exported types, funcs, methods on exported types, vars and consts,
// and the exported Err… variables of all of them.
func exportedIdentifiers(root string) (map[string]int, int, error) {
	perPkg := map[string]int{}
	errVars := 0
	err := libraryGoFiles(root, func(rel string, inInternal bool) error {
		if inInternal {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, rel), nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && (d.Recv == nil || receiverExported(d.Recv)) {
					perPkg[pkg]++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							perPkg[pkg]++
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								perPkg[pkg]++
								if d.Tok == token.VAR && strings.HasPrefix(n.Name, "Err") {
									errVars++
								}
							}
						}
					}
				}
			}
		}
		return nil
	})
	return perPkg, errVars, err
}

func receiverExported(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

// longFunctions returns "path:Name (n lines)" for every function
// declaration of the library module (internal/ included) longer than max
// lines.
func longFunctions(root string, max int) ([]string, error) {
	var long []string
	err := libraryGoFiles(root, func(rel string, _ bool) error {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok {
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > max {
					long = append(long, rel+":"+fd.Name.Name+" ("+strconv.Itoa(n)+" lines)")
				}
			}
		}
		return nil
	})
	sort.Strings(long)
	return long, err
}
