package callback_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
)

// A desktop or CLI tool logs its user in through the browser: the receiver
// listens on 127.0.0.1 on an ephemeral port, prints the URL (and opens it
// when Open is set), and accepts exactly one callback that passes the state,
// error and issuer checks. (A runnable version against a real authorization
// server is in the e2e module.)
func ExampleLoopback_Login() {
	ctx := context.Background()
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   "https://id.example.com",
		ClientID: "my-cli", // registered with the redirect URI http://127.0.0.1/callback
		Scopes:   []string{"openid", "offline_access", "api.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	l := &callback.Loopback{Client: client, Out: os.Stderr}
	tokens, err := l.Login(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as", tokens.Subject())
}

// A web application serves the login and the redirect endpoint. Each login
// lives in its own sealed cookie, so any replica with the same key
// completes it.
func ExampleNew() {
	ctx := context.Background()
	secret, err := secret.FromEnv("APP_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: "https://login.example.com", ClientID: "my-app", ClientSecret: secret,
		RedirectURL: "https://app.example.com/callback",
		Scopes:      []string{"openid", "offline_access", "api.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	key, err := callback.NewKey() // in production: the same key on every replica
	if err != nil {
		log.Fatal(err)
	}
	h, err := callback.New(callback.Config{
		Client: client,
		Keys:   [][]byte{key},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			// Create the application's session here; keep the refresh
			// token server-side (see tokenstore/sqlstore).
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
