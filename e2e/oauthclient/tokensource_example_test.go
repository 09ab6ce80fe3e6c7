package oauthclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// A desktop tool keeps its user's login: the refresh token (with the
// subject and the granted scopes) goes to a Store, access tokens stay in
// memory, and the next run resumes from the Store without a browser. A
// real tool uses the OS keyring (&keyring.Store{Service: "my-cli"}); the
// in-memory Store stands in for it here.
func ExampleClient_TokenSource() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:      srv.Issuer,
		ClientID:    oauthtest.ClientNative,
		RedirectURL: "http://127.0.0.1:8400/callback",
		Scopes:      []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:        strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		log.Fatal(err)
	}
	store := new(tokenstore.Memory)
	key := tokenstore.ProfileKey(srv.Issuer, oauthtest.ClientNative, "default")

	// First run: log in (callback.Loopback does this part in a real tool)
	// and hand the login to a source over the Store.
	pending, authURL, err := client.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	redirect, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(redirect)
	login, err := client.Exchange(ctx, pending, u.Query())
	if err != nil {
		log.Fatal(err)
	}
	first, err := client.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, login)
	if err != nil {
		log.Fatal(err)
	}
	first.Close(ctx) // a tool exiting: any unsaved rotation is written first

	// Next run: resume from the Store; the first Token call refreshes.
	src, err := client.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close(ctx)
	tok, err := src.TokenContext(ctx)
	if errors.Is(err, tokenstore.ErrLoginRequired) {
		log.Fatal("log in again") // the refresh token was revoked or expired
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("access token:", tok.AccessToken != "" && tok.AccessToken != login.OAuth2Token().AccessToken)
	fmt.Println("scopes:", strings.Join(src.Scopes(), " "))
	fmt.Println("refreshes:", srv.TokenRequests("refresh_token"))
	// Output:
	// access token: true
	// scopes: openid offline_access api.read
	// refreshes: 1
}
