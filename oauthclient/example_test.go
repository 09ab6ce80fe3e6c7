package oauthclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
	"github.com/oauthsafe/oauthsafe/validate"
)

// A backend service calls an API with client credentials: the token is
// cached in memory, refreshed ahead of expiry by one request at a time, and
// sent only in the Authorization header, only to the allowed origin.
// (Runnable versions of these examples, against a real authorization
// server, are the e2e module's tests.)
func ExampleClient_ServiceTokenSource() {
	ctx := context.Background()
	secret, err := oauthclient.SecretFromFile("/run/secrets/client_secret") // 0600 and yours, or refused
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:       "https://login.example.com",
		ClientID:     "billing",
		ClientSecret: secret,
		Scopes:       []string{"invoices.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	src := client.ServiceTokenSource(oauthclient.ClientCredentialsOptions{})
	api, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{"https://api.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := api.Get("https://api.example.com/v1/invoices")
	var scopeErr *validate.InsufficientScopeError
	switch {
	case errors.As(err, &scopeErr):
		log.Fatalf("the API wants scope %q", scopeErr.Scope)
	case err != nil:
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(len(body))
}

// A desktop tool resumes its user's session from the OS keyring: the
// refresh token (with the subject and the granted scopes) stays in the
// keyring, access tokens only in memory, and each refresh runs once per
// account across processes.
func ExampleClient_TokenSource() {
	ctx := context.Background()
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   "https://id.example.com",
		ClientID: "my-cli", // a public (native) client
		Scopes:   []string{"openid", "offline_access", "api.read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	store := &keyring.Store{Service: "my-cli"}
	key := tokenstore.ProfileKey("https://id.example.com", "my-cli", "default")
	src, err := client.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, nil)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := src.TokenContext(ctx)
	if errors.Is(err, tokenstore.ErrLoginRequired) {
		log.Fatal("log in again") // see callback.Loopback
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Expiry, src.Scopes())
}
