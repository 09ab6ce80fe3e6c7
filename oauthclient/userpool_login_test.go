package oauthclient

import (
	"context"
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestUnknownUserIsLoginRequired: a visitor with no session (empty key)
// or a key the vault has no record for (never signed in, signed out) gets
// an error matching tokenstore.ErrLoginRequired from UserPool's Source and
// Token, never a configuration error, and no token request is made; a
// signed-in user's key still resumes.
func TestUnknownUserIsLoginRequired(t *testing.T) {
	ctx := context.Background()
	h := newHostileAS(t)
	c, toks := loggedIn(t, h, newTestClock())
	vault := &tokenstore.Memory{}
	key := tokenstore.Key(h.srv.URL, "client-1", toks.Subject())
	if _, err := c.TokenSource(ctx, TokenSourceConfig{Store: vault, Key: key}, toks); err != nil {
		t.Fatal(err)
	}
	pool, err := c.UserPool(TokenSourceConfig{Store: vault})
	if err != nil {
		t.Fatal(err)
	}
	calls := h.tokenCalls.Load()
	for _, k := range []string{"", tokenstore.Key(h.srv.URL, "client-1", "nobody")} {
		_, err := pool.Source(ctx, k)
		if !errors.Is(err, tokenstore.ErrLoginRequired) || errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("Source(%q) = %v, want ErrLoginRequired (not ErrConfig)", k, err)
		}
		if _, err := poolToken(ctx, pool, k); !errors.Is(err, tokenstore.ErrLoginRequired) {
			t.Errorf("Token(%q) = %v, want ErrLoginRequired", k, err)
		}
	}
	if h.tokenCalls.Load() != calls || pool.Len() != 0 {
		t.Fatalf("unknown users made %d token calls and left %d engines", h.tokenCalls.Load()-calls, pool.Len())
	}
	if src, err := pool.Source(ctx, key); err != nil || src == nil {
		t.Fatalf("a signed-in user: %v", err)
	}
}
