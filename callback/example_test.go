package callback_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
)

// A web application serves the login and the redirect endpoint. /login
// answers 303 to the provider and seals the flow in its own cookie, so any
// replica with the same key completes it. (A static Metadata stands in for
// discovery so the example runs offline; the e2e module's Example runs a
// whole login against a real provider.)
func ExampleNew() {
	ctx := context.Background()
	clientSecret, err := secret.FromReader(strings.NewReader("from-your-secret-store")) // secret.FromEnv in production
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: "https://login.example.com", ClientID: "my-app", ClientSecret: clientSecret,
		RedirectURL: "https://app.example.com/callback",
		Scopes:      []string{"openid", "offline_access"},
		Metadata: &oauthclient.Metadata{
			Issuer:                        "https://login.example.com",
			AuthorizationEndpoint:         "https://login.example.com/authorize",
			TokenEndpoint:                 "https://login.example.com/token",
			CodeChallengeMethodsSupported: []string{"S256"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32) // in production: loaded, the same on every replica
	rand.Read(key)          // crypto/rand: never fails
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			// Create the application's session here; keep the refresh
			// token server-side (tokenstore/sqlstore).
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://app.example.com/login", nil))
	to, _ := url.Parse(rec.Header().Get("Location"))
	cookie := rec.Result().Cookies()[0]
	fmt.Println(rec.Code, to.Host+to.Path)
	fmt.Println("PKCE:", to.Query().Get("code_challenge_method"))
	fmt.Println("flow cookie:", cookie.HttpOnly, cookie.Secure, cookie.SameSite == http.SameSiteLaxMode)
	// Output:
	// 303 login.example.com/authorize
	// PKCE: S256
	// flow cookie: true true true
}

// The redirect endpoint refuses a callback whose state opens no pending
// login of this browser (here a forged "access denied" sent to the
// application's server on 127.0.0.1): 400, a plain page, no token request,
// and OnError is told why with an error matching ErrRefused.
func ExampleHandler_ServeHTTP() {
	ctx := context.Background()
	clientSecret, err := secret.FromReader(strings.NewReader("from-your-secret-store"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: "https://login.example.com", ClientID: "my-app", ClientSecret: clientSecret,
		RedirectURL: "https://app.example.com/callback",
		Metadata: &oauthclient.Metadata{ // static, so that the example runs offline
			Issuer:                        "https://login.example.com",
			AuthorizationEndpoint:         "https://login.example.com/authorize",
			TokenEndpoint:                 "https://login.example.com/token",
			CodeChallengeMethodsSupported: []string{"S256"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key) // crypto/rand: never fails
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			return nil
		},
		OnError: func(r *http.Request, err error) {
			fmt.Println("OnError:", errors.Is(err, callback.ErrRefused), err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h) // the application's redirect endpoint
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/callback?error=access_denied&state=forged")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Security-Policy"))
	// Output:
	// OnError: true callback: request refused: no pending login matches this state: no cookie for this state
	// 400 no-store default-src 'none'
}
