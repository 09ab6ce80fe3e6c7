package oauthclient_test

import (
	"context"
	"fmt"
	"log"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// A desktop or web login: start a flow, send the user to the authorization
// URL, and complete the flow with the redirect's parameters. The in-process
// server stands in for a real provider and completes the login itself.
func ExampleClient_Exchange() {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:      srv.Issuer,
		ClientID:    oauthtest.ClientNative, // a public client: PKCE, no secret
		RedirectURL: "http://127.0.0.1:8400/callback",
		Scopes:      []string{"openid", "email", "offline_access"},
		HTTP:        strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		log.Fatal(err)
	}
	pending, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// In a real program the browser visits authURL and the server redirects
	// back to the redirect URL; here the test server logs alice in.
	callbackURL, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(callbackURL)
	tokens, err := c.Exchange(ctx, pending, u.Query())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("subject:", tokens.Subject())
	fmt.Println("scopes:", strings.Join(tokens.Scopes(), " "))
	fmt.Println("has refresh token:", tokens.OAuth2Token().RefreshToken != "")
	fmt.Println("printed:", strings.Contains(fmt.Sprint(tokens), tokens.OAuth2Token().AccessToken))
	// Output:
	// subject: sub-alice-7f3a
	// scopes: openid email offline_access
	// has refresh token: true
	// printed: false
}
