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
