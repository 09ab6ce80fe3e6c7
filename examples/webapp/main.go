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

// newApp wires the handlers.
func newApp(client *oauthclient.Client, key []byte) (http.Handler, error) {
	s := &sessions{m: map[string]string{}}
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			return s.create(w, t)
		},
		OnError: func(r *http.Request, err error) { log.Printf("login refused: %v", err) },
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
	issuer := flag.String("issuer", "", "issuer URL")
	clientID := flag.String("client-id", "", "client ID (confidential, client_secret_basic)")
	redirect := flag.String("redirect", "", "registered https redirect URI, ending in /callback")
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve on")
	certFile := flag.String("tls-cert", "", "TLS certificate")
	keyFile := flag.String("tls-key", "", "TLS key")
	demo := flag.Bool("demo", false, "run against the embedded test server")
	flag.Parse()
	ctx := context.Background()
	if *demo {
		runDemo(ctx)
		return
	}
	secret, err := oauthclient.SecretFromEnv("WEBAPP_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	key, err := hex.DecodeString(os.Getenv("WEBAPP_COOKIE_KEY"))
	if err != nil || len(key) != callback.KeySize {
		log.Fatal("WEBAPP_COOKIE_KEY must be 32 random bytes in hex")
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: *issuer, ClientID: *clientID, ClientSecret: secret,
		RedirectURL: *redirect, Scopes: []string{"openid", "profile"}})
	if err != nil {
		log.Fatal(err)
	}
	app, err := newApp(client, key)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServeTLS(*listen, *certFile, *keyFile, app))
}

func runDemo(ctx context.Context) {
	srv, err := authserver.Start(authserver.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	var app http.Handler
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { app.ServeHTTP(w, r) }))
	defer ts.Close()
	srv.AddRedirectURI(ts.URL + "/callback")
	os.Setenv("WEBAPP_CLIENT_SECRET", authserver.WebSecret) // demo only: a real app gets it from its environment
	secret, err := oauthclient.SecretFromEnv("WEBAPP_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: authserver.ClientWeb, ClientSecret: secret,
		RedirectURL: ts.URL + "/callback", Scopes: []string{"openid", "profile"}, HTTP: oauthclient.HTTPConfig{RootCAs: srv.RootCAs()}})
	if err != nil {
		log.Fatal(err)
	}
	key, err := callback.NewKey()
	if err != nil {
		log.Fatal(err)
	}
	if app, err = newApp(client, key); err != nil {
		log.Fatal(err)
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
	resp, err := browser.Get(ts.URL + "/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	cb, err := srv.Login(ctx, resp.Header.Get("Location"), "alice")
	if err != nil {
		log.Fatal(err)
	}
	if resp, err = browser.Get(cb); err != nil { // 303 to "/", then the page
		log.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("GET %s -> %s %s", resp.Request.URL.Path, resp.Status, page)
}
