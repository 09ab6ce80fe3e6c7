package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// runDemo starts the embedded authorization server, an API that accepts a
// token only when the server says by introspection that it is active for
// it, and the app; then a programmatic browser signs in as alice, loads the
// page (an API call on her behalf), loads it again from a restarted app
// (a new pool resumed from the vault), and signs out.
func runDemo(ctx context.Context, s settings, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "webapp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A sealing key for this run only, in a 0600 file as a deployment
	// would mount it. It never goes to the database.
	vaultKey, err := sqlstore.NewSealingKey("demo-1")
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "vault-keys")
	if err := os.WriteFile(keyFile, []byte(vaultKey.Reveal()+"\n"), 0o600); err != nil {
		return err
	}
	s.keysFile = keyFile
	where := "PostgreSQL (" + envPostgres + ")"
	if s.postgresDSN == "" {
		s.sqlitePath = filepath.Join(dir, "vault.db")
		where = "SQLite " + s.sqlitePath
	}
	vault, db, err := openVault(ctx, s)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stderr, "demo: vault in %s, sealed under a key generated for this run (0600 file)\n", where)

	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	checker, err := demoapi.New(ctx, srv)
	if err != nil {
		return err
	}
	checker.Seen = demoAPISeen
	apiMux := http.NewServeMux()
	apiMux.Handle("GET /v1/contacts", checker.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"contacts":2}`)
	}))
	api := httptest.NewTLSServer(apiMux)
	defer api.Close()
	apiRoots := x509.NewCertPool()
	apiRoots.AddCert(api.Certificate())

	var app http.Handler
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer ts.Close()
	srv.AddRedirectURI(ts.URL + "/callback")
	os.Setenv(envClientSecret, oauthtest.WebSecret) // demo only: a real app gets it from its environment
	secret, err := secret.FromEnv(envClientSecret)
	if err != nil {
		return err
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientWeb, ClientSecret: secret,
		RedirectURL: ts.URL + "/callback", Scopes: []string{"openid", "profile", "offline_access", oauthtest.ScopeAPIRead},
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()}})
	if err != nil {
		return err
	}
	cookieKey := make([]byte, 32)
	rand.Read(cookieKey) // crypto/rand: never fails
	cfg := appConfig{Client: client, CookieKey: cookieKey, Vault: vault, APIURL: api.URL + "/v1/contacts",
		APIRoots: apiRoots, Sessions: &sessions{m: map[string]session{}}, Log: stderr}
	if app, err = newApp(cfg); err != nil {
		return err
	}

	// The browser: a cookie jar; it stops at the authorization server,
	// where srv.Login plays the user signing in.
	jar, _ := cookiejar.New(nil)
	browser := ts.Client()
	browser.Jar = jar
	browser.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != ts.Listener.Addr().String() {
			return http.ErrUseLastResponse
		}
		return nil
	}
	do := func(method, u string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, "", err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, string(b), nil
	}
	resp, _, err := do(http.MethodGet, ts.URL+"/")
	if err != nil {
		return err
	}
	cb, err := srv.Login(ctx, resp.Header.Get("Location"), "alice")
	if err != nil {
		return err
	}
	page := func(label, u string) error {
		resp, body, err := do(http.MethodGet, u) // after the callback: 303 to "/", then the page
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "API on your behalf: 200 OK") {
			return fmt.Errorf("GET %s -> %s %q", resp.Request.URL.Path, resp.Status, body)
		}
		fmt.Fprintf(stdout, "%s: GET %s -> %s\n%s", label, resp.Request.URL.Path, resp.Status, body)
		return nil
	}
	if err := page("signed in", cb); err != nil {
		return err
	}
	var key string
	cfg.Sessions.mu.Lock()
	for _, v := range cfg.Sessions.m {
		key = v.key
	}
	cfg.Sessions.mu.Unlock()
	if _, err := engine.LoadRecord(ctx, vault, key); err != nil {
		return fmt.Errorf("the login's record is not in the vault: %w", err)
	}
	fmt.Fprintln(stdout, "vault: alice's record is stored, sealed; her access token only in memory")

	// A restart (or another replica): a new pool over the same vault and
	// sessions. Alice's engine resumes from her sealed record and
	// refreshes once.
	refreshes := srv.TokenRequests("refresh_token")
	if app, err = newApp(cfg); err != nil {
		return err
	}
	if err := page("after a restart", ts.URL+"/"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resumed from the vault with %d refresh\n", srv.TokenRequests("refresh_token")-refreshes)
	if demoInspect != nil {
		demoInspect(dir)
	}

	revocationPath := strings.TrimPrefix(srv.RevocationURL, srv.Issuer)
	revoked := srv.Count(revocationPath)
	if _, _, err = do(http.MethodPost, ts.URL+"/logout"); err != nil {
		return err
	}
	_, err = engine.LoadRecord(ctx, vault, key)
	if !errors.Is(err, tokenstore.ErrNotFound) {
		return fmt.Errorf("after logout the vault still answers %v", err)
	}
	fmt.Fprintf(stdout, "signed out: %d revocation request, record deleted from the vault\n", srv.Count(revocationPath)-revoked)
	return nil
}

// demoAPISeen, when set (by tests), receives every bearer token the demo
// API receives. demoInspect, when set, is called with the demo's temporary
// directory (the SQLite vault, the key file) after the resumed page, while
// alice's record is in the vault.
var (
	demoAPISeen func(string)
	demoInspect func(dir string)
)
