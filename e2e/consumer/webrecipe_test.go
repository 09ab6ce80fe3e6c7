package consumer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	_ "modernc.org/sqlite"
)

// webRecipeSubstitutions are the only changes made to the README's web
// recipe to run it here: the example hosts become the in-process provider
// and the program's own address, and the PostgreSQL driver the SQLite one
// (as the recipe's comment says). Each must occur in the recipe, so a
// changed recipe fails here instead of silently running something else.
func webRecipeSubstitutions(issuer, addr string) [][2]string {
	return [][2]string{
		{`"https://login.example.com"`, `"` + issuer + `"`},
		{`"my-app"`, `"` + oauthtest.ClientWeb + `"`},
		{`"https://app.example.com/callback"`, `"https://` + addr + `/callback"`},
		{`sql.Open("pgx"`, `sql.Open("sqlite"`},
		{`Addr: ":8443"`, `Addr: "` + addr + `"`},
	}
}

// TestReadmeWebRecipeDrainsOnSIGTERM builds the README's web recipe as a
// program (the recipe's text, with only the substitutions above, given
// examples/websession as its session store and the SQLite vault), starts
// it as a process against the in-process provider (rotating refresh
// tokens, reuse revokes the grant), signs alice in through /login and
// /callback, and lets her access token expire. Her next request refreshes
// while the test holds the SQLite file locked from the moment the refresh
// request reaches the provider, so the rotated refresh token cannot be
// written and is held in the process's memory. The test then releases the
// lock and sends SIGTERM: after the process exits, the vault holds the
// rotated refresh token (written by users.Drain), and it refreshes. A
// recipe that never reaches Drain (log.Fatal, no signal handling) leaves
// the spent token in the vault and fails here.
func TestReadmeWebRecipeDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	ctx := context.Background()
	root := repoRoot(t)
	var recipe string
	for _, b := range readmeBlocks(t, root) {
		if strings.Contains(b, "users.Drain(") {
			recipe = b
		}
	}
	if recipe == "" {
		t.Fatal("the README has no web recipe calling users.Drain")
	}
	srv, err := oauthtest.Start(oauthtest.Options{AccessTokenLifetime: 2 * time.Second, RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := freeAddr(t)
	srv.AddRedirectURI("https://" + addr + "/callback")
	for _, s := range webRecipeSubstitutions(srv.Issuer, addr) {
		if !strings.Contains(recipe, s[0]) {
			t.Fatalf("the web recipe no longer contains %s", s[0])
		}
		recipe = strings.ReplaceAll(recipe, s[0], s[1])
	}

	dir := t.TempDir()
	bin := buildWebRecipe(t, root, dir, recipe)
	appCert := writeAppCert(t, dir)
	caFile := filepath.Join(dir, "provider-ca.pem")
	must(t, os.WriteFile(caFile, srv.CACertPEM, 0o600))
	vaultPath := filepath.Join(dir, "vault.db")
	dsn := "file:" + vaultPath + "?_pragma=busy_timeout(5000)"
	vaultKey := make([]byte, 32)
	rand.Read(vaultKey)
	cookieKey := make([]byte, 32)
	rand.Read(cookieKey)
	vaultKeys := "k1:" + base64.StdEncoding.EncodeToString(vaultKey)

	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"SSL_CERT_FILE="+caFile, // the provider's CA, as the system roots
		"APP_CLIENT_SECRET="+oauthtest.WebSecret,
		"APP_POSTGRES_DSN="+dsn,
		"APP_VAULT_KEYS="+vaultKeys,
		"APP_COOKIE_KEY="+hex.EncodeToString(cookieKey))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	// The browser: trusts the app's certificate and the provider's CA,
	// keeps cookies, follows no redirect by itself.
	roots := srv.RootCAs()
	roots.AddCert(appCert)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 90 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + addr
	var loginResp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		loginResp, err = browser.Get(base + "/login")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recipe never served /login: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	loginResp.Body.Close()
	// A visitor with no session is sent to /login (ErrLoginRequired).
	if resp, err := browser.Get(base + "/contacts"); err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET /contacts without a session: %v %v", resp, err)
	}
	cb, err := srv.Login(ctx, loginResp.Header.Get("Location"), "alice")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := browser.Get(cb)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %v %v\n%s", resp, err, out.String())
	}
	resp.Body.Close()

	// The vault as the test sees it (same file, same keys).
	t.Setenv("APP_VAULT_KEYS", vaultKeys)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := secret.FromEnv("APP_VAULT_KEYS")
	if err != nil {
		t.Fatal(err)
	}
	vault, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	key := tokenstore.Key(srv.Issuer, oauthtest.ClientWeb, oauthtest.Subject("alice"))
	rec, err := engine.LoadRecord(ctx, vault, key)
	if err != nil {
		t.Fatalf("no record after login: %v\n%s", err, out.String())
	}
	loginRT := rec.RefreshToken

	// Lock the vault when the refresh reaches the provider: the rotation's
	// write fails and is held in the app's memory.
	lockConn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lockConn.Close()
	var locked, refreshes atomic.Int32
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == tokenPath && r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			refreshes.Add(1)
			if locked.CompareAndSwap(0, 1) {
				if _, err := lockConn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
					t.Errorf("locking the vault: %v", err)
				}
			}
		}
		return false
	})
	time.Sleep(2500 * time.Millisecond) // the login's access token expires
	resp, err = browser.Get(base + "/contacts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if locked.Load() != 1 || resp.StatusCode == http.StatusOK {
		t.Fatalf("the refresh did not happen under the lock (status %d)\n%s", resp.StatusCode, out.String())
	}
	if _, err := lockConn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if rec, err := engine.LoadRecord(ctx, vault, key); err != nil || rec.RefreshToken != loginRT {
		t.Fatalf("the rotation was written before the drain (%v): the test proves nothing", err)
	}

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the recipe exited with %v\n%s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the recipe did not exit after SIGTERM\n%s", out.String())
	}
	rec, err = engine.LoadRecord(ctx, vault, key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RefreshToken == loginRT {
		t.Fatalf("after SIGTERM the vault still holds the spent refresh token: the rotation was lost (Drain not reached)\n%s", out.String())
	}
	// The drained record works: one more refresh, with the rotated token.
	t.Setenv("APP_CLIENT_SECRET", oauthtest.WebSecret)
	sec, err := secret.FromEnv("APP_CLIENT_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	c, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientWeb, ClientSecret: sec,
		RedirectURL: base + "/callback", Scopes: []string{"openid", "offline_access"}, HTTP: strictnet.Config{RootCAs: srv.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: vault, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Fatalf("the drained record does not refresh: %v", err)
	}
	if n := refreshes.Load(); n != 2 {
		t.Fatalf("%d refresh requests, want 2 (one by the app, one here)", n)
	}
}

// buildWebRecipe writes the recipe as the body of a program whose session
// store is examples/websession, in a module that requires this checkout
// like the e2e module does, and builds it.
func buildWebRecipe(t *testing.T, root, dir, recipe string) string {
	t.Helper()
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "websession"), 0o755))
	ws, err := os.ReadFile(filepath.Join(root, "examples", "websession", "websession.go"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(src, "websession", "websession.go"), ws, 0o644))
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"example.com/webrecipe/websession\"\n\t_ \"modernc.org/sqlite\"\n")
	for p := range readmeImports {
		b.WriteString("\t\"" + p + "\"\n")
	}
	b.WriteString(")\n\nvar _ = []any{")
	for _, use := range readmeImports {
		b.WriteString(use + ", ")
	}
	b.WriteString(`}

var sessions *websession.Store

func main() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", os.Getenv("APP_POSTGRES_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	sessions, err = websession.New(ctx, websession.Config{DB: db})
	if err != nil {
		log.Fatal(err)
	}
	recipe(ctx)
}

func recipe(ctx context.Context) {
` + recipe + "}\n")
	must(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(b.String()), 0o644))
	gomod, err := os.ReadFile(filepath.Join(root, "e2e", "go.mod"))
	must(t, err)
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module example.com/webrecipe")
	mod = strings.ReplaceAll(mod, "=> ../oauthtest", "=> "+filepath.Join(root, "oauthtest"))
	mod = strings.ReplaceAll(mod, "=> ..\n", "=> "+root+"\n")
	must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "e2e", "go.sum"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(src, "go.sum"), sum, 0o644))
	bin := filepath.Join(dir, "webrecipe")
	run(t, src, "go", "build", "-o", bin, ".")
	return bin
}

// writeAppCert writes cert.pem and key.pem (a self-signed certificate for
// 127.0.0.1) into dir, where the recipe looks for them.
func writeAppCert(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600))
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}
