package callback_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// sessions is the application's own session store: session id -> subject.
// A real application also keeps the refresh token, in a tokenstore.Store.
type sessions struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *sessions) put(id, subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = subject
}

func (s *sessions) get(r *http.Request) (string, bool) {
	c, err := r.Cookie("session")
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.m[c.Value]
	return sub, ok
}

// Example wires a web application: /login starts a login, /callback is the
// redirect endpoint, and OnLogin creates the application's session. A
// protected page sends anonymous users to /login with a return-to path.
// The in-process authorization server stands in for the provider, and an
// HTTP client with a cookie jar plays the browser.
func Example() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(mux)
	defer app.Close()
	srv.AddRedirectURI(app.URL + "/callback")

	// In production the deployment sets the secret; never in source code.
	os.Setenv("APP_CLIENT_SECRET", oauthtest.WebSecret)
	secret, err := secret.FromEnv("APP_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:       srv.Issuer,
		ClientID:     oauthtest.ClientWeb,
		ClientSecret: secret,
		RedirectURL:  app.URL + "/callback",
		Scopes:       []string{"openid", "profile"},
		HTTP:         strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		log.Fatal(err)
	}
	// In production: loaded from the secret store, the same on every replica.
	key := make([]byte, 32)
	rand.Read(key) // crypto/rand: never fails

	store := &sessions{m: map[string]string{}}
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			id := rand.Text() // a new session id at every login (no fixation)
			store.put(id, t.Subject())
			http.SetCookie(w, &http.Cookie{Name: "session", Value: id, Path: "/",
				HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	mux.HandleFunc("/reports", func(w http.ResponseWriter, r *http.Request) {
		sub, ok := store.get(r)
		if !ok {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape("/reports"), http.StatusSeeOther)
			return
		}
		fmt.Fprintf(w, "reports for %s", sub)
	})

	// The browser.
	jar, _ := cookiejar.New(nil)
	browser := app.Client()
	browser.Jar = jar
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	visit := func(u string) *http.Response {
		res, err := browser.Get(u)
		if err != nil {
			log.Fatal(err)
		}
		return res
	}
	res := visit(app.URL + "/reports")                                         // anonymous: 303 to /login?return_to=/reports
	res = visit(app.URL + res.Header.Get("Location"))                          // Start: 303 to the authorization server
	cb, err := srv.Login(ctx, res.Header.Get("Location"), oauthtest.UserAlice) // the user signs in
	if err != nil {
		log.Fatal(err)
	}
	res = visit(cb) // the redirect endpoint: 303 to a clean URL
	fmt.Println(res.StatusCode, res.Header.Get("Location"))
	res = visit(app.URL + res.Header.Get("Location"))
	body, _ := io.ReadAll(res.Body)
	fmt.Println(string(body))
	// Output:
	// 303 /reports
	// reports for sub-alice-7f3a
}
