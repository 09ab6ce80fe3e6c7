package machine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// clock is a settable clock for the engine's backoff.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestJWTBearerErrorsNotRetried: the server's refusals of the JWT-bearer
// grant come back as *oauthclient.AuthError with their code, and the
// source does not send the refused request again, not at once and not
// after any backoff, nor tries another grant (S31, S17); invalid_grant
// is tried again only with a new assertion.
func TestJWTBearerErrorsNotRetried(t *testing.T) {
	ctx := context.Background()
	srv := start(t, oauthtest.Options{})
	wl, err := srv.NewWorkloadIssuer("https://ci.example/oidc")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(aud string) string {
		t.Helper()
		raw, err := wl.Sign("repo:shop/orders:ref:refs/heads/main", aud, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwtassert.Parse(raw, time.Now()); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	for _, tc := range []struct {
		code      string
		client    oauthclient.Config
		scopes    []string
		assertion string
	}{
		{"invalid_grant", oauthclient.Config{ClientID: oauthtest.ClientNative}, nil, sign("https://another-server.example")},
		{"invalid_scope", oauthclient.Config{ClientID: oauthtest.ClientNative}, []string{"admin"}, sign(srv.Issuer)},
		{"unauthorized_client", oauthclient.Config{ClientID: oauthtest.ClientWeb, ClientSecret: secretOf(t, oauthtest.WebSecret)}, nil, sign(srv.Issuer)},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv.Reset()
			clk := &clock{t: time.Now()}
			tc.client.Now = clk.now
			c := newClient(t, srv, tc.client)
			src := c.JWTBearer(assertion.Func(func(context.Context, string) (string, error) { return tc.assertion, nil }), oauthclient.GrantOptions{Scopes: tc.scopes})
			_, err := src.TokenContext(ctx)
			var ae *oauthclient.AuthError
			if !errors.As(err, &ae) || ae.Code != tc.code || !errors.Is(err, oauthclient.ErrAuthorizationServer) {
				t.Fatalf("Token = %v, want *oauthclient.AuthError %s", err, tc.code)
			}
			if errors.Is(err, tokenstore.ErrLoginRequired) || strings.Contains(err.Error(), "log in again") {
				t.Fatalf("a machine grant's refusal says %q", err)
			}
			// Again at once, and after the longest backoff.
			for i := range 6 {
				if i == 3 {
					clk.advance(10 * time.Minute) // past any backoff (at most a minute)
				}
				_, err2 := src.TokenContext(ctx)
				if !errors.As(err2, &ae) || ae.Code != tc.code {
					t.Fatalf("call %d: %v, want the same refusal", i, err2)
				}
			}
			if n := srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer"); n != 1 {
				t.Fatalf("%d JWT-bearer requests, want 1 (the refusal was retried)", n)
			}
			for _, other := range []string{"client_credentials", "refresh_token", "authorization_code", oauthtest.GrantTokenExchange} {
				if n := srv.TokenRequests(other); n != 0 {
					t.Fatalf("%d %s requests: the client switched grant", n, other)
				}
			}
		})
	}

	// invalid_grant is for that assertion: a new one (a rotated token) is
	// sent, and succeeds.
	srv.Reset()
	var mu sync.Mutex
	current := sign("https://another-server.example")
	clk := &clock{t: time.Now()}
	c := newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientNative, Now: clk.now})
	src := c.JWTBearer(assertion.Func(func(context.Context, string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return current, nil
	}), oauthclient.GrantOptions{NoDPoP: true /* proofs would carry the moved clock */})
	if _, err := src.TokenContext(ctx); !errors.Is(err, oauthclient.ErrAuthorizationServer) {
		t.Fatalf("wrong audience: %v", err)
	}
	if _, err := src.TokenContext(ctx); err == nil || srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer") != 1 {
		t.Fatalf("the same refused assertion was sent again (%d requests)", srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer"))
	}
	mu.Lock()
	current = sign(srv.Issuer)
	mu.Unlock()
	clk.advance(2 * time.Minute) // past the engine's backoff
	if _, err := src.TokenContext(ctx); err != nil {
		t.Fatalf("with a new assertion: %v", err)
	}
	if n := srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer"); n != 2 {
		t.Fatalf("%d JWT-bearer requests, want 2", n)
	}
}
