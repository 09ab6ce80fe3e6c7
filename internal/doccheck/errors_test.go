// Package doccheck checks promises the docs make, on the source. First: every error a
// library package returns matches one of its sentinels (or is one of its
// error types). The check is on the source: an error is made either as a
// package-level sentinel (errors.New in a var declaration) or by wrapping
// (fmt.Errorf with %w, cfgerr.New); an errors.New inside a function, or a
// fmt.Errorf without %w, makes an error that matches nothing, and fails
// this test. Second (examples_test.go): every Example runs.
package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// promised are the packages whose docs promise that every error matches a
// sentinel.
var promised = []string{
	"oauthclient",
	"oauthclient/apiclient",
	"oauthclient/assertion",
	"callback",
	"validate",
	"secret",
	"strictnet",
}

func TestEveryErrorMatchesASentinel(t *testing.T) {
	for _, dir := range promised {
		for _, bad := range unwrappedErrors(t, filepath.Join("..", "..", dir)) {
			t.Errorf("%s: an error that matches no sentinel; wrap one with %%w, or use cfgerr.New", bad)
		}
	}
}

// TestTheCheckFindsUnwrappedErrors: the check sees both kinds of
// unwrapped error, and accepts the two ways of making one that matches.
func TestTheCheckFindsUnwrappedErrors(t *testing.T) {
	dir := t.TempDir()
	src := `package p

import (
	"errors"
	"fmt"
)

var ErrX = errors.New("x")

func ok() error  { return fmt.Errorf("%w: detail", ErrX) }
func bad1() error { return errors.New("plain") }
func bad2(n int) error { return fmt.Errorf("plain %d", n) }
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := unwrappedErrors(t, dir)
	if len(got) != 2 || !strings.Contains(got[0], "p.go:11") || !strings.Contains(got[1], "p.go:12") {
		t.Fatalf("found %q, want p.go:11 and p.go:12", got)
	}
}

// unwrappedErrors returns file:line of every error made in the non-test
// files of dir that matches no sentinel.
func unwrappedErrors(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go file in %s", dir)
	}
	var bad []string
	for _, f := range files {
		sentinels := map[ast.Node]bool{}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, s := range g.Specs {
					for _, v := range s.(*ast.ValueSpec).Values {
						sentinels[v] = true
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch {
			case pkg.Name == "errors" && sel.Sel.Name == "New" && !sentinels[call]:
				bad = append(bad, fset.Position(call.Pos()).String())
			case pkg.Name == "fmt" && sel.Sel.Name == "Errorf" && len(call.Args) > 0:
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok {
					bad = append(bad, fset.Position(call.Pos()).String()+" (format not a literal)")
					break
				}
				format, _ := strconv.Unquote(lit.Value)
				if !strings.Contains(format, "%w") {
					bad = append(bad, fset.Position(call.Pos()).String())
				}
			}
			return true
		})
	}
	return bad
}

// TestOneHomePerError: a sentinel has one public name. No library package
// declares an exported Err… variable that is another library package's
// sentinel (var ErrX = strictnet.ErrPolicy), and no two exported
// variables name the same internal sentinel (var ErrX = filelock.ErrY in
// two packages).
func TestOneHomePerError(t *testing.T) {
	bad, err := reexportedErrors(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestOneHomeCheckFindsReexports: the check sees both kinds of second name.
func TestOneHomeCheckFindsReexports(t *testing.T) {
	root := t.TempDir()
	write := func(dir, src string) {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "e.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "package a\nimport \"errors\"\nvar ErrA = errors.New(\"a\")\n")
	write("b", "package b\nimport \"github.com/oauthsafe/oauthsafe/a\"\nvar ErrB = a.ErrA\n")
	write("c", "package c\nimport \"github.com/oauthsafe/oauthsafe/internal/x\"\nvar ErrC = x.ErrX\n")
	write("d", "package d\nimport \"github.com/oauthsafe/oauthsafe/internal/x\"\nvar ErrD = x.ErrX\n")
	bad, err := reexportedErrors(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || !strings.Contains(bad[0], "ErrB") || !strings.Contains(bad[1], "x.ErrX") {
		t.Fatalf("found %q, want ErrB and the second name of x.ErrX", bad)
	}
}

// reexportedErrors walks the library packages under root (not internal/,
// not other modules or the directories of notLibrary) and returns one
// line per second public name of a sentinel.
func reexportedErrors(root string) ([]string, error) {
	const module = "github.com/oauthsafe/oauthsafe/"
	var bad []string
	internalNames := map[string]string{} // "x.ErrX" -> first package naming it
	err := libraryGoFiles(root, func(rel string, inInternal bool) error {
		if inInternal {
			return nil
		}
		path := filepath.Join(root, rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{} // local name -> import path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = p
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !n.IsExported() || !strings.HasPrefix(n.Name, "Err") || i >= len(vs.Values) {
						continue
					}
					sel, ok := vs.Values[i].(*ast.SelectorExpr)
					if !ok {
						continue
					}
					x, ok := sel.X.(*ast.Ident)
					if !ok {
						continue
					}
					p, ok := imports[x.Name]
					if !ok || !strings.HasPrefix(p, module) {
						continue
					}
					target := x.Name + "." + sel.Sel.Name
					if !strings.Contains(p, "/internal/") {
						bad = append(bad, pkg+"."+n.Name+" is "+target+": use "+target+" itself")
						continue
					}
					if first, dup := internalNames[target]; dup {
						bad = append(bad, pkg+"."+n.Name+" names "+target+" again (first: "+first+")")
						continue
					}
					internalNames[target] = pkg + "." + n.Name
				}
			}
		}
		return nil
	})
	sort.Strings(bad)
	return bad, err
}
