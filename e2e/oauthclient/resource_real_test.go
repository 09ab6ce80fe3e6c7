package oauthclient_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/validate"
)

func TestUserInfoAndIntrospectionAgainstRealServer(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	ctx := context.Background()
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:40000/callback",
		Scopes: []string{"openid", "email", oauthtest.ScopeAPIRead}, HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice")
	claims, err := c.UserInfo(ctx, toks)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != oauthtest.Subject("alice") || claims.Email == "" {
		t.Fatalf("userinfo %+v", claims)
	}

	// The API (a resource server) introspects the opaque access token,
	// authenticated with its own credentials.
	api, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientResource, ClientSecret: secretFromEnv(t, oauthtest.ResourceSecret),
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := api.Introspector(validate.IntrospectionConfig{Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}
	at, err := in.Verify(ctx, toks.OAuth2Token().AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := at.RequireScopes(oauthtest.ScopeAPIRead); err != nil {
		t.Fatal(err)
	}
	var ise *validate.InsufficientScopeError
	if err := at.RequireScopes(oauthtest.ScopeAPIWrite); !errors.As(err, &ise) || ise.Scope[0] != oauthtest.ScopeAPIWrite {
		t.Fatalf("err = %v", err)
	}
	if err := c.Revoke(ctx, toks.OAuth2Token().AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Verify(ctx, toks.OAuth2Token().AccessToken); !errors.Is(err, &validate.ClaimError{Claim: "active"}) {
		t.Fatalf("revoked token: err = %v, want a ClaimError for active", err)
	}
}
