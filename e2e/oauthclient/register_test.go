package oauthclient_test

import (
	"context"
	"testing"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestRegisterThenNew: Register (RFC 7591) at the real provider returns
// the registered client as a Config for New: the issuer of the metadata,
// the client id the provider assigned, and the method (the one asked for,
// else the provider's) with its secret (none for "none"); New takes it as
// it is (plus the caller's HTTP), and a login with it logs the user in
// (the code exchange authenticates with that method).
func TestRegisterThenNew(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	ctx := context.Background()
	hc := strictnet.Config{RootCAs: srv.RootCAs()}
	md, err := oauthclient.Discover(ctx, srv.Issuer, hc)
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1/callback"
	for _, tc := range []struct{ asked, want string }{
		{"none", "none"},            // a native client: no secret
		{"", "client_secret_basic"}, // the provider's default (RFC 7591 §2), with a secret
	} {
		cfg, err := oauthclient.Register(ctx, md, hc, oauthclient.RegistrationRequest{
			RedirectURIs: []string{redirect}, ClientName: "register test", ApplicationType: "native", AuthMethod: tc.asked,
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Issuer != srv.Issuer || cfg.ClientID == "" || cfg.ClientSecret.IsZero() != (tc.want == "none") || cfg.AuthMethod != tc.want {
			t.Fatalf("asked %q, registered %v", tc.asked, cfg)
		}
		cfg.HTTP, cfg.RedirectURL, cfg.Scopes = hc, redirect, []string{"openid"}
		c, err := oauthclient.New(ctx, *cfg)
		if err != nil {
			t.Fatal(err)
		}
		if toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice"); toks.Subject() != oauthtest.Subject("alice") {
			t.Fatalf("login with the client registered with %q: subject %q", tc.want, toks.Subject())
		}
	}
}
