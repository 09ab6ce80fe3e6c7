package oauthclient_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// startAS starts the real in-process authorization server (zitadel op).
func startAS(t *testing.T, opts oauthtest.Options) *oauthtest.Server {
	t.Helper()
	srv, err := oauthtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func secretFromEnv(t *testing.T, value string) secret.Value {
	t.Helper()
	t.Setenv("OAUTHSAFE_TEST_CLIENT_SECRET", value)
	s, err := secret.FromEnv("OAUTHSAFE_TEST_CLIENT_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthCodeFlowAgainstRealServer(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	cases := []struct {
		name     string
		clientID string
		secret   string
		method   string
		redirect string
	}{
		{"confidential client_secret_basic", oauthtest.ClientWeb, oauthtest.WebSecret, "client_secret_basic", oauthtest.WebRedirectURI},
		{"confidential client_secret_post", oauthtest.ClientWebPost, oauthtest.WebPostSecret, "client_secret_post", oauthtest.WebRedirectURI},
		{"public client with PKCE on a loopback port", oauthtest.ClientNative, "", "none", "http://127.0.0.1:49152/callback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := oauthclient.Config{
				Issuer:      srv.Issuer,
				ClientID:    tc.clientID,
				RedirectURL: tc.redirect,
				Scopes:      []string{"openid", "profile", "email", "offline_access", oauthtest.ScopeAPIRead},
				HTTP:        strictnet.Config{RootCAs: srv.RootCAs()},
				AuthMethod:  tc.method,
			}
			if tc.secret != "" {
				cfg.ClientSecret = secretFromEnv(t, tc.secret)
			}
			c, err := oauthclient.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.Config().AuthMethod != tc.method {
				t.Fatalf("auth method %s, want %s", c.Config().AuthMethod, tc.method)
			}
			if !c.Metadata().AuthorizationResponseIssParameter {
				t.Fatal("the real server advertises iss in the authorization response")
			}
			p, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cb, err := srv.Login(ctx, authURL, "alice")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(cb)
			if u.Query().Get("iss") != srv.Issuer {
				t.Fatalf("callback has no iss: %s", u.Query().Encode())
			}
			toks, err := c.Exchange(ctx, p, u.Query())
			if err != nil {
				t.Fatal(err)
			}
			if toks.OAuth2Token().AccessToken == "" || toks.OAuth2Token().RefreshToken == "" {
				t.Fatal("missing access or refresh token")
			}
			if toks.Subject() != oauthtest.Subject("alice") {
				t.Fatalf("subject %q", toks.Subject())
			}
			if id := toks.IDToken(); id == nil || id.Nonce == "" || id.Issuer != srv.Issuer {
				t.Fatalf("ID token not verified with a nonce: %+v", id)
			}
			if got := srv.TokenRequests("authorization_code"); got != 1 {
				t.Fatalf("authorization_code requests = %d", got)
			}

			// The code is single-use: the same callback again fails at the server.
			if _, err := c.Exchange(ctx, p, u.Query()); !errors.Is(err, oauthclient.ErrAuthorizationServer) {
				t.Fatalf("replayed code: err = %v", err)
			}

			// Refresh with rotation: the old refresh token stops working.
			rotated, err := refreshOnce(ctx, c, toks)
			if err != nil {
				t.Fatal(err)
			}
			if rotated == "" || rotated == toks.OAuth2Token().RefreshToken {
				t.Fatal("refresh did not rotate")
			}
			if _, err := refreshOnce(ctx, c, toks); !errors.Is(err, tokenstore.ErrLoginRequired) {
				t.Fatalf("reused refresh token: err = %v, want ErrLoginRequired", err)
			}
			srv.Reset()
		})
	}
}

func TestExchangeWithTamperedCallbackMakesNoTokenRequest(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	ctx := context.Background()
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative,
		RedirectURL: "http://127.0.0.1:50000/callback", Scopes: []string{"openid"},
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, authURL, _ := c.Start(ctx, oauthclient.StartOptions{})
	cb, err := srv.Login(ctx, authURL, "bob")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cb)
	q := u.Query()
	bad := url.Values{"code": q["code"], "iss": q["iss"], "state": {"attacker"}}
	if _, err := c.Exchange(ctx, p, bad); !errors.Is(err, oauthclient.ErrStateMismatch) {
		t.Fatalf("err = %v", err)
	}
	noIss := url.Values{"code": q["code"], "state": q["state"]}
	if _, err := c.Exchange(ctx, p, noIss); !errors.Is(err, oauthclient.ErrIssuerMismatch) {
		t.Fatalf("err = %v", err)
	}
	if n := srv.TokenRequests("authorization_code"); n != 0 {
		t.Fatalf("%d token requests reached the server", n)
	}
	// A flow started for one client cannot be completed by another.
	other, _ := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientDevice, Scopes: []string{"openid"},
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if _, err := other.Exchange(ctx, p, q); !errors.Is(err, oauthclient.ErrIssuerMismatch) {
		t.Fatalf("cross-client exchange: err = %v", err)
	}
	if n := srv.TokenRequests("authorization_code"); n != 0 {
		t.Fatalf("%d token requests reached the server", n)
	}
	if _, err := c.Exchange(ctx, p, q); err != nil {
		t.Fatalf("the genuine callback still completes: %v", err)
	}
}
