// Command webapp is a web application that signs its users in with the
// authorization-code flow: /login starts a login, /callback is the redirect
// endpoint, and OnLogin creates a session. Pending logins live in sealed
// cookies, so any number of replicas sharing the key can serve them.
//
//	WEBAPP_CLIENT_SECRET=... WEBAPP_COOKIE_KEY=$(openssl rand -hex 32) \
//	go run ./examples/webapp -issuer https://id.example.com -client-id web \
//	    -redirect https://app.example.com/callback -listen 127.0.0.1:8443 \
//	    -tls-cert cert.pem -tls-key key.pem
//
// With -demo it starts the embedded test server, serves itself on a local
// TLS port, signs in as alice with a programmatic browser and prints the
// page that the signed-in user sees.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/authserver"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// sessions maps a random session id to the signed-in subject. A real
// application keeps refresh tokens in a tokenstore.Store, not here.
type sessions struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *sessions) subject(r *http.Request) (string, bool) {
	c, err := r.Cookie("__Host-session")
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.m[c.Value]
	return sub, ok
}

func (s *sessions) create(w http.ResponseWriter, t *oauthclient.Tokens) error {
	id := rand.Text()
	s.mu.Lock()
	s.m[id] = t.Subject()
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "__Host-session", Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// newApp wires the handlers; refused logins are logged to logw.
func newApp(client *oauthclient.Client, key []byte, logw io.Writer) (http.Handler, error) {
	s := &sessions{m: map[string]string{}}
	logger := log.New(logw, "webapp: ", log.LstdFlags)
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			if demoTokensSeen != nil {
				demoTokensSeen(t)
			}
			return s.create(w, t)
		},
		OnError: func(r *http.Request, err error) { logger.Printf("login refused: %v", err) },
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sub, ok := s.subject(r)
		if !ok {
			http.Redirect(w, r, "/login?return_to=/", http.StatusSeeOther)
			return
		}
		fmt.Fprintf(w, "Hello, %s\n", html.EscapeString(sub))
	})
	return mux, nil
}

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// run is the whole program: it serves until the listener fails, or with
// -demo runs one login and prints the signed-in page. It never prints a token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "", "issuer URL")
	clientID := fs.String("client-id", "", "client ID (confidential, client_secret_basic)")
	redirect := fs.String("redirect", "", "registered https redirect URI, ending in /callback")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve on")
	certFile := fs.String("tls-cert", "", "TLS certificate")
	keyFile := fs.String("tls-key", "", "TLS key")
	demo := fs.Bool("demo", false, "run against the embedded test server")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *demo {
		return runDemo(ctx, stdout, stderr)
	}
	secret, err := oauthclient.SecretFromEnv("WEBAPP_CLIENT_SECRET")
	if err != nil {
		return err
	}
	key, err := hex.DecodeString(os.Getenv("WEBAPP_COOKIE_KEY"))
	if err != nil || len(key) != callback.KeySize {
		return errors.New("WEBAPP_COOKIE_KEY must be 32 random bytes in hex")
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: *issuer, ClientID: *clientID, ClientSecret: secret,
		RedirectURL: *redirect, Scopes: []string{"openid", "profile"}})
	if err != nil {
		return err
	}
	app, err := newApp(client, key, stderr)
	if err != nil {
		return err
	}
	hs := &http.Server{Addr: *listen, Handler: app, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(stderr, "webapp: ", log.LstdFlags)}
	return hs.ListenAndServeTLS(*certFile, *keyFile)
}

func runDemo(ctx context.Context, stdout, stderr io.Writer) error {
	srv, err := authserver.Start(authserver.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	var app http.Handler
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer ts.Close()
	srv.AddRedirectURI(ts.URL + "/callback")
	os.Setenv("WEBAPP_CLIENT_SECRET", authserver.WebSecret) // demo only: a real app gets it from its environment
	secret, err := oauthclient.SecretFromEnv("WEBAPP_CLIENT_SECRET")
	if err != nil {
		return err
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: authserver.ClientWeb, ClientSecret: secret,
		RedirectURL: ts.URL + "/callback", Scopes: []string{"openid", "profile"}, HTTP: oauthclient.HTTPConfig{RootCAs: srv.RootCAs()}})
	if err != nil {
		return err
	}
	key, err := callback.NewKey()
	if err != nil {
		return err
	}
	if app, err = newApp(client, key, stderr); err != nil {
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
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		return browser.Do(req)
	}
	resp, err := get(ts.URL + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	cb, err := srv.Login(ctx, resp.Header.Get("Location"), "alice")
	if err != nil {
		return err
	}
	if resp, err = get(cb); err != nil { // 303 to "/", then the page
		return err
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s -> %s", resp.Request.URL.Path, resp.Status)
	}
	fmt.Fprintf(stdout, "GET %s -> %s %s", resp.Request.URL.Path, resp.Status, page)
	return nil
}

// demoTokensSeen, when set (by tests), receives the tokens of each login,
// so that a test can check none of them was printed.
var demoTokensSeen func(*oauthclient.Tokens)
