package oauthclient_test

import (
	"context"
	"fmt"
	"log"
	"net/url"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// Start begins a login: the authorization URL carries a PKCE S256
// challenge, a 256-bit state and, for OpenID Connect, a nonce; the Pending
// flow keeps the verifier until Exchange. (A static Metadata stands in for
// discovery here, so the example runs offline; the e2e module's examples
// run whole logins against a real provider.)
func ExampleClient_Start() {
	ctx := context.Background()
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:      "https://login.example.com",
		ClientID:    "my-cli", // a public client: PKCE, no secret
		RedirectURL: "http://127.0.0.1:8400/callback",
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
	pending, authURL, err := client.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	fmt.Println(u.Scheme + "://" + u.Host + u.Path)
	fmt.Println("response_type:", q.Get("response_type"))
	fmt.Println("code_challenge_method:", q.Get("code_challenge_method"))
	fmt.Println("state is the pending flow's:", q.Get("state") == pending.State() && len(pending.State()) == 43)
	fmt.Println("nonce sent:", q.Get("nonce") != "")
	fmt.Println("verifier in the URL:", q.Has("code_verifier"))
	// Output:
	// https://login.example.com/authorize
	// response_type: code
	// code_challenge_method: S256
	// state is the pending flow's: true
	// nonce sent: true
	// verifier in the URL: false
}
