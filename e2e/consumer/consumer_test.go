// Package consumer checks what the library costs a program that uses it: the
// modules a consumer's build pulls in, and the packages it links.
package consumer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// named are the modules the library may depend on (docs/architecture.md, packages), with
// a package of each for the baseline consumer to import.
var named = map[string]string{
	"golang.org/x/oauth2":           "golang.org/x/oauth2",
	"github.com/coreos/go-oidc/v3":  "github.com/coreos/go-oidc/v3/oidc",
	"github.com/go-jose/go-jose/v4": "github.com/go-jose/go-jose/v4",
	"github.com/zalando/go-keyring": "github.com/zalando/go-keyring",
	"github.com/google/uuid":        "github.com/google/uuid",
	"golang.org/x/crypto":           "golang.org/x/crypto/scrypt",
	"golang.org/x/sys":              "golang.org/x/sys/cpu",
}

const self = "github.com/oauthsafe/oauthsafe"

// TestConsumerModuleGraph builds two throwaway consumer modules: one that
// imports every library package of this checkout (through a replace), and a
// baseline that imports only the named dependencies at the versions the
// library's go.mod selects. Every module in the first's `go list -m all`
// must be in the baseline's (or be ours): the library adds nothing of its
// own to a consumer's graph.
func TestConsumerModuleGraph(t *testing.T) {
	root := repoRoot(t)
	libPkgs := libraryPackages(t, root)
	versions := requiredVersions(t, root)

	var req []string
	var imps []string
	for mod, pkg := range named {
		v, ok := versions[mod]
		if !ok {
			continue // not required by the library (yet); nothing to compare
		}
		req = append(req, mod+" "+v)
		imps = append(imps, pkg)
	}
	sort.Strings(req)
	sort.Strings(imps)
	baseline := graph(t, "require (\n\t"+strings.Join(req, "\n\t")+"\n)\n", imps)
	ours := graph(t, "require "+self+" v0.0.0\n\nreplace "+self+" => "+root+"\n", libPkgs)

	var extra []string
	for m := range ours {
		if m != self && !baseline[m] {
			extra = append(extra, m)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Fatalf("a consumer of the library gets modules the named dependencies do not bring: %v", extra)
	}
	t.Logf("consumer module graph: %d modules (ours included), baseline %d", len(ours), len(baseline))
	// docs/architecture.md: 19 modules counting ours, give or take what the named
	// dependencies' own go.mod files add between versions.
	if len(ours) > 22 {
		t.Fatalf("consumer module graph has %d modules, want at most 22", len(ours))
	}
}

// TestServiceLinksNoDBus checks that a backend service importing oauthclient
// (and the engine) but not tokenstore/keyring links no D-Bus or keyring code.
func TestServiceLinksNoDBus(t *testing.T) {
	root := repoRoot(t)
	dir := consumer(t, "require "+self+" v0.0.0\n\nreplace "+self+" => "+root+"\n",
		[]string{self + "/oauthclient", self + "/tokenstore", self + "/validate", self + "/callback"})
	out := run(t, dir, "go", "list", "-deps", ".")
	for _, p := range strings.Fields(out) {
		if strings.HasPrefix(p, "github.com/godbus/") || strings.HasPrefix(p, "github.com/zalando/go-keyring") || strings.HasPrefix(p, "github.com/danieljoos/wincred") {
			t.Fatalf("a consumer that does not import tokenstore/keyring links %s", p)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "go.work")); err != nil {
		t.Fatalf("not the repository root: %s", d)
	}
	return d
}

// libraryPackages lists the root module's importable packages.
func libraryPackages(t *testing.T, root string) []string {
	t.Helper()
	out := run(t, root, "go", "list", "-f", "{{.ImportPath}} {{.Name}}", "./...")
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] == "main" || strings.Contains(f[0], "/internal/") || strings.Contains(f[0], "/scripts/") {
			continue
		}
		pkgs = append(pkgs, f[0])
	}
	if len(pkgs) < 4 {
		t.Fatalf("found only %v", pkgs)
	}
	return pkgs
}

// requiredVersions reads the versions the library's go.mod requires (with
// `go mod edit -json`, which neither resolves nor writes anything).
func requiredVersions(t *testing.T, root string) map[string]string {
	t.Helper()
	out := run(t, root, "go", "mod", "edit", "-json")
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal([]byte(out), &mod); err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for _, r := range mod.Require {
		v[r.Path] = r.Version
	}
	return v
}

// graph creates a consumer module and returns its `go list -m all` paths.
func graph(t *testing.T, mod string, imports []string) map[string]bool {
	t.Helper()
	dir := consumer(t, mod, imports)
	out := run(t, dir, "go", "list", "-m", "-f", "{{.Path}}", "all")
	m := map[string]bool{}
	for _, p := range strings.Fields(out) {
		if p != "example.com/consumer" {
			m[p] = true
		}
	}
	return m
}

func consumer(t *testing.T, mod string, imports []string) string {
	t.Helper()
	dir := t.TempDir()
	var src bytes.Buffer
	src.WriteString("package main\n\nimport (\n")
	for _, p := range imports {
		src.WriteString("\t_ \"" + p + "\"\n")
	}
	src.WriteString(")\n\nfunc main() {}\n")
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/consumer\n\ngo 1.26.0\n\n"+mod), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), src.Bytes(), 0o644))
	run(t, dir, "go", "mod", "tidy")
	return dir
}

// run runs a go command outside the workspace (GOWORK=off), as a consumer would.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, dir, err, stderr.String())
	}
	return string(out)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLibraryRequiresTestedVersions: every module the library's go.mod
// requires is required at the version the workspace's tests select (the
// highest any module of the workspace requires, as minimal version
// selection picks it): a consumer of the library gets the versions the
// tests ran, not older ones. It reads the go.mod files only (no network, no
// go.sum written).
func TestLibraryRequiresTestedVersions(t *testing.T) {
	root := repoRoot(t)
	required := requiredVersions(t, root)
	var work struct{ Use []struct{ DiskPath string } }
	if err := json.Unmarshal([]byte(run(t, root, "go", "work", "edit", "-json", filepath.Join(root, "go.work"))), &work); err != nil {
		t.Fatal(err)
	}
	selected := map[string]string{}
	for _, u := range work.Use {
		for path, v := range requiredVersions(t, filepath.Join(root, u.DiskPath)) {
			if semverLess(selected[path], v) {
				selected[path] = v
			}
		}
	}
	if len(required) < 5 || len(work.Use) < 3 {
		t.Fatalf("the library requires %v; the workspace uses %v", required, work.Use)
	}
	for path, v := range required {
		if s := selected[path]; s != v {
			t.Errorf("the library requires %s %s, the tests run %s: require %s", path, v, s, s)
		}
	}
}

// semverLess compares two vMAJOR.MINOR.PATCH[-pre] versions ("" is the
// lowest); pre-release suffixes compare as strings.
func semverLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	num := func(v string) ([3]int, string) {
		v = strings.TrimPrefix(v, "v")
		core, pre, _ := strings.Cut(v, "-")
		var n [3]int
		for i, p := range strings.SplitN(core, ".", 3) {
			fmt.Sscanf(p, "%d", &n[i])
		}
		return n, pre
	}
	an, ap := num(a)
	bn, bp := num(b)
	if an != bn {
		for i := range an {
			if an[i] != bn[i] {
				return an[i] < bn[i]
			}
		}
	}
	return ap != "" && (bp == "" || ap < bp)
}
