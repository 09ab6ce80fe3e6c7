package oauthclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// revokeCounter adds an RFC 7009 endpoint to h that records every token it
// receives and answers status.
type revokeCounter struct {
	mu     sync.Mutex
	tokens []string
	hints  []string // token_type_hint of each
	status int
}

func (rc *revokeCounter) install(h *hostileAS) {
	h.srv.Config.Handler.(*http.ServeMux).HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.tokens = append(rc.tokens, r.PostForm.Get("token"))
		rc.hints = append(rc.hints, r.PostForm.Get("token_type_hint"))
		if rc.status != 0 && rc.status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rc.status)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		}
	})
}

func (rc *revokeCounter) sent() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.tokens...)
}

// TestUserPool: the whole web-backend path on one store: a login's engine
// added to the pool serves the login's access token without a request;
// another replica's pool resumes the user from the store and refreshes
// once with the stored refresh token; End revokes the current refresh
// token and deletes the record, after which the user must log in again.
func TestUserPool(t *testing.T) {
	ctx := context.Background()
	h := newHostileAS(t)
	rc := &revokeCounter{}
	rc.install(h)
	c, toks := loggedIn(t, h, newTestClock())
	vault := &tokenstore.Memory{}
	key := tokenstore.Key(h.srv.URL, "client-1", toks.Subject())

	pool, err := c.UserPool(TokenSourceConfig{Store: vault})
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.TokenSource(ctx, TokenSourceConfig{Store: vault, Key: key}, toks)
	if err != nil {
		t.Fatal(err)
	}
	pool.Add(key, src)
	calls := h.tokenCalls.Load()
	tok, err := poolToken(ctx, pool, key)
	if err != nil || tok.AccessToken != toks.OAuth2Token().AccessToken || h.tokenCalls.Load() != calls {
		t.Fatalf("pooled login: %v, %v, %d token calls", tok, err, h.tokenCalls.Load()-calls)
	}

	// Another replica: resumed from the store, one refresh with the stored token.
	replica, _ := c.UserPool(TokenSourceConfig{Store: vault})
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		if r.PostForm.Get("refresh_token") != "RT-secret-value" {
			t.Errorf("resume sent another refresh token")
		}
		h.writeTokens(w, map[string]any{"access_token": "AT-resumed", "refresh_token": "RT-rotated"})
	})
	tok, err = poolToken(ctx, replica, key)
	if err != nil || tok.AccessToken != "AT-resumed" || h.tokenCalls.Load() != calls+1 {
		t.Fatalf("resumed: %v, %v", tok, err)
	}

	// End: revoke the current (rotated) refresh token, delete the record.
	if err := pool.End(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := rc.sent(); len(got) != 1 || got[0] != "RT-rotated" {
		t.Fatalf("revoked %d tokens (want the rotated one once)", len(got))
	}
	if rc.hints[0] != "refresh_token" {
		t.Fatalf("revoked with token_type_hint %q, want refresh_token (RFC 7009)", rc.hints[0])
	}
	if _, err := engine.LoadRecord(ctx, vault, key); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("record after End: %v", err)
	}
	if pool.Len() != 0 {
		t.Fatal("End kept the engine")
	}
	calls = h.tokenCalls.Load()
	if _, err := poolToken(ctx, pool, key); !errors.Is(err, tokenstore.ErrLoginRequired) || h.tokenCalls.Load() != calls {
		t.Fatalf("after End: %v (a request was made: %v)", err, h.tokenCalls.Load() != calls)
	}
}

// TestUserPoolEndRevocationFails: a refused revocation still deletes the
// record and reports ErrRevocationFailed; without a revocation endpoint End
// deletes and reports nothing.
func TestUserPoolEndRevocationFails(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		endpoint bool
		want     error
	}{{"refused", true, tokenstore.ErrRevocationFailed}, {"no endpoint", false, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			rc := &revokeCounter{status: http.StatusServiceUnavailable}
			rc.install(h)
			if !tc.endpoint {
				h.set("revocation_endpoint", nil)
			}
			c, toks := loggedIn(t, h, newTestClock())
			vault := &tokenstore.Memory{}
			pool, _ := c.UserPool(TokenSourceConfig{Store: vault})
			src, err := c.TokenSource(ctx, TokenSourceConfig{Store: vault, Key: "u"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			pool.Add("u", src)
			err = pool.End(ctx, "u")
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("End = %v, want %v", err, tc.want)
			}
			if _, err := vault.Get(ctx, "u"); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatalf("record kept: %v", err)
			}
			if n := len(rc.sent()); tc.endpoint != (n == 1) {
				t.Fatalf("%d revocation requests", n)
			}
		})
	}
}

// TestUserPoolBound: MaxUsers bounds the engines kept; a dropped user
// resumes from the store.
func TestUserPoolBound(t *testing.T) {
	ctx := context.Background()
	h := newHostileAS(t)
	c, toks := loggedIn(t, h, newTestClock())
	vault := &tokenstore.Memory{}
	pool, _ := c.UserPool(TokenSourceConfig{Store: vault, MaxUsers: 3})
	for i := range 10 {
		key := "user-" + strconv.Itoa(i)
		src, err := c.TokenSource(ctx, TokenSourceConfig{Store: vault, Key: key}, toks)
		if err != nil {
			t.Fatal(err)
		}
		pool.Add(key, src)
		if pool.Len() > 3 {
			t.Fatalf("%d engines kept, bound 3", pool.Len())
		}
	}
	tok, err := poolToken(ctx, pool, "user-0") // dropped long ago: resumed, refreshed
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("resumed user: %v", err)
	}
}

// TestUserPoolConfig: a missing Store, a Key or negative numbers are
// refused with ErrConfig; the zero Client gives a pool whose calls fail, never panic.
func TestUserPoolConfig(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	for _, cfg := range []TokenSourceConfig{{}, {Store: &tokenstore.Memory{}, Key: "k"}, {Store: &tokenstore.Memory{}, MaxUsers: -1}, {Store: &tokenstore.Memory{}, Margin: -1}, {Store: &tokenstore.Memory{}, ReuseGrace: -1}} {
		if _, err := c.UserPool(cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("UserPool(%+v) = %v", cfg, err)
		}
	}
	ctx := context.Background()
	vault := &tokenstore.Memory{}
	engine.SaveRecord(ctx, vault, "u", &engine.Record{RefreshToken: "rt", Subject: "s"})
	pool, err := (&Client{}).UserPool(TokenSourceConfig{Store: vault})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poolToken(ctx, pool, "u"); err == nil {
		t.Fatal("the zero Client's pool handed out a token")
	}
	if err := pool.End(ctx, "u"); err != nil {
		t.Fatalf("End with the zero Client: %v", err)
	}
}

// TestUserPoolHotPath: for a pooled user with a valid access token, Source
// and TokenContext send nothing and allocate nothing, and Source hands out
// the same TokenSource each time (made once per engine).
func TestUserPoolHotPath(t *testing.T) {
	ctx := context.Background()
	h := newHostileAS(t)
	c, toks := loggedIn(t, h, newTestClock())
	vault := &tokenstore.Memory{}
	key := tokenstore.Key(h.srv.URL, "client-1", toks.Subject())
	pool, err := c.UserPool(TokenSourceConfig{Store: vault})
	if err != nil {
		t.Fatal(err)
	}
	src, err := c.TokenSource(ctx, TokenSourceConfig{Store: vault, Key: key}, toks)
	if err != nil {
		t.Fatal(err)
	}
	pool.Add(key, src)
	if again, err := pool.Source(ctx, key); err != nil || again != src {
		t.Fatalf("Source = %p, %v; want the login's TokenSource %p", again, err, src)
	}
	calls := h.tokenCalls.Load()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := poolToken(ctx, pool, key); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || h.tokenCalls.Load() != calls {
		t.Fatalf("a pooled user's token: %v allocations, %d token requests; want none", allocs, h.tokenCalls.Load()-calls)
	}
}
