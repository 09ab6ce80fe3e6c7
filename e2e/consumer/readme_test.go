package consumer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmePrelude declares what the README's Go recipes may assume, as the
// README says above them: ctx, and for the web recipe the application's
// own session store. Everything else a recipe uses it must declare itself.
const readmePrelude = `
// sessionStore is the application's session store (for example
// gorilla/sessions): it keeps the user's store key server-side.
type sessionStore interface {
	Create(w http.ResponseWriter, r *http.Request, key string) error
	Key(r *http.Request) string
	End(w http.ResponseWriter, r *http.Request) error
}

var sessions sessionStore
`

// readmeImports are the packages a recipe may use without importing them:
// the library's and the standard library's; each is referenced once, so an
// unused one is no error.
var readmeImports = map[string]string{
	"context":                       "context.Background",
	"crypto/x509":                   "x509.NewCertPool",
	"strings":                       "strings.CutPrefix",
	"database/sql":                  "sql.Open",
	"encoding/hex":                  "hex.DecodeString",
	"errors":                        "errors.Is",
	"fmt":                           "fmt.Sprint",
	"log":                           "log.Print",
	"net/http":                      "http.NewServeMux",
	"os":                            "os.Getenv",
	"os/signal":                     "signal.NotifyContext",
	"syscall":                       "syscall.SIGTERM",
	"time":                          "time.Now",
	self + "/oauthclient":           "oauthclient.New",
	self + "/oauthclient/apiclient": "apiclient.New",
	self + "/oauthclient/assertion": "assertion.Func",
	self + "/secret":                "secret.FromEnv",
	self + "/strictnet":             "strictnet.NewClient",
	self + "/callback":              "callback.New",
	self + "/resourceclient":        "resourceclient.New",
	self + "/tokenstore":            "tokenstore.Key",
	self + "/tokenstore/keyring":    "keyring.Check",
	self + "/tokenstore/sqlstore":   "sqlstore.New",
	self + "/validate":              "validate.NewJWKS",
}

// readmeBlocks returns the README's ```go blocks.
func readmeBlocks(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestReadmeRecipesCompile: every Go block of the README compiles as
// written, as the body of a function given ctx (and, for the web recipe,
// the application's session store), in a module that requires this
// checkout's library the way a consumer would. A recipe that uses a name
// it never declares, leaves a variable unused, or calls an API that does
// not exist fails here.
func TestReadmeRecipesCompile(t *testing.T) {
	root := repoRoot(t)
	blocks := readmeBlocks(t, root)
	if len(blocks) < 3 {
		t.Fatalf("the README has %d Go blocks", len(blocks))
	}
	dir := t.TempDir()
	var src bytes.Buffer
	src.WriteString("package main\n\nimport (\n")
	for p := range readmeImports {
		src.WriteString("\t\"" + p + "\"\n")
	}
	src.WriteString(")\n\nvar _ = []any{")
	for _, use := range readmeImports {
		src.WriteString(use + ", ")
	}
	src.WriteString("}\n" + readmePrelude + "\nfunc main() {}\n")
	for i, b := range blocks {
		src.WriteString("\nfunc recipe" + string(rune('A'+i)) + "(ctx context.Context) {\n" + b + "}\n")
	}
	mod := "module example.com/readme\n\ngo 1.26.0\n\nrequire " + self + " v0.0.0\n\nreplace " + self + " => " + root + "\n"
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), src.Bytes(), 0o644))
	run(t, dir, "go", "mod", "tidy")
	run(t, dir, "go", "vet", ".")
}
