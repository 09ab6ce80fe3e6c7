package oauthclient

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// bindingAS makes a hostileAS behave as a DPoP server that binds a public
// client's refresh tokens (RFC 9449 §5): each refresh token it issues is
// bound to the thumbprint of the proof that got it (or unbound without a
// proof); a refresh of a bound token must prove the bound key or gets
// invalid_grant, an unbound one may be proven with any key.
// With requireProof, a request without a proof gets use_dpop_nonce.
type bindingAS struct {
	mu           sync.Mutex
	bound        map[string]string // refresh token -> jkt ("" unbound)
	n            int
	refreshJKTs  []string // the jkt of each refresh request's proof
	requireProof bool
}

func newBindingAS(t *testing.T, h *hostileAS) *bindingAS {
	b := &bindingAS{bound: map[string]string{}}
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		jkt := ""
		if _, k := proofOf(t, r.Header); k != nil {
			tp, _ := k.Thumbprint(crypto.SHA256)
			jkt = base64.RawURLEncoding.EncodeToString(tp)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.requireProof && jkt == "" {
			w.Header().Set("DPoP-Nonce", "n-1")
			writeJSON(w, 400, map[string]string{"error": "use_dpop_nonce"})
			return
		}
		if r.PostForm.Get("grant_type") == "refresh_token" {
			b.refreshJKTs = append(b.refreshJKTs, jkt)
			want, ok := b.bound[r.PostForm.Get("refresh_token")]
			delete(b.bound, r.PostForm.Get("refresh_token")) // rotation: single use
			if !ok || (want != "" && want != jkt) {          // an unbound token may be proven with any key
				writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "refresh token unknown or bound to another key"})
				return
			}
		}
		b.n++
		rt := fmt.Sprintf("RT-%d", b.n)
		b.bound[rt] = jkt
		tt := "Bearer"
		if jkt != "" {
			tt = "DPoP"
		}
		h.writeTokens(w, map[string]any{"token_type": tt, "refresh_token": rt})
	})
	return b
}

func (b *bindingAS) lastRefreshJKT() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.refreshJKTs) == 0 {
		return ""
	}
	return b.refreshJKTs[len(b.refreshJKTs)-1]
}

func recordJKT(t *testing.T, rec *engine.Record) string {
	t.Helper()
	if rec.DPoPKey.IsZero() {
		return ""
	}
	k, err := dpop.Unmarshal(rec.DPoPKey.PKCS8())
	if err != nil {
		t.Fatal(err)
	}
	return k.JKT()
}

// TestRefreshUsesRecordDPoPKey (S27, the library side of
// TestDPoPKeyPersistedWithRefreshToken): the login's key is written with
// its refresh token; a source resumed from the Store alone, by another
// Client, proves its refresh with the stored key; a record without a key
// gets one (DPoP on, or a server answering use_dpop_nonce) stored with
// the refresh token bound to it; a record whose key was dropped, or holds
// a key this client cannot sign with, needs a new login.
func TestRefreshUsesRecordDPoPKey(t *testing.T) {
	ctx := context.Background()
	const key = "k"
	login := func(t *testing.T, h *hostileAS, clk *testClock, dpop bool) (*Tokens, *tokenstore.Memory) {
		t.Helper()
		cfg := h.config()
		cfg.Now, cfg.DPoP = clk.Now, dpop
		c, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, good := h.start(t, c)
		toks, err := c.Exchange(ctx, p, good)
		if err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		h.nonce = ""
		h.mu.Unlock()
		st := &tokenstore.Memory{}
		if _, err := c.TokenSource(ctx, TokenSourceConfig{Store: st, Key: key}, toks); err != nil {
			t.Fatal(err)
		}
		return toks, st
	}
	resume := func(t *testing.T, h *hostileAS, clk *testClock, st tokenstore.Store, dpop bool) (*TokenSource, error) {
		t.Helper()
		cfg := h.config()
		cfg.Now, cfg.DPoP = clk.Now, dpop
		c, err := New(ctx, cfg) // another Client: nothing shared with the login's
		if err != nil {
			t.Fatal(err)
		}
		src, err := c.TokenSource(ctx, TokenSourceConfig{Store: st, Key: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Token()
		return src, err
	}

	t.Run("stored with the login, used after resume", func(t *testing.T) {
		h := newHostileAS(t)
		as := newBindingAS(t, h)
		clk := newTestClock()
		toks, st := login(t, h, clk, true)
		rec, err := engine.LoadRecord(ctx, st, key)
		if err != nil {
			t.Fatal(err)
		}
		if toks.dpop == nil || recordJKT(t, rec) != toks.dpop.JKT() || rec.RefreshToken != toks.OAuth2Token().RefreshToken {
			t.Fatal("the login's key is not in the record with its refresh token")
		}
		for i := range 2 {
			src, err := resume(t, h, clk, st, false) // DPoP off: the record's key decides
			if err != nil {
				t.Fatalf("refresh %d: %v", i, err)
			}
			if as.lastRefreshJKT() != toks.dpop.JKT() {
				t.Fatalf("refresh %d not proven with the stored key", i)
			}
			if tok, _ := src.Token(); tok.TokenType != "DPoP" || dpop.TokenKey(tok) == nil || dpop.TokenKey(tok).JKT() != toks.dpop.JKT() {
				t.Fatalf("refreshed token %q does not carry the stored key", tok.TokenType)
			}
			clk.Advance(2 * time.Hour)
		}
		if rec, _ := engine.LoadRecord(ctx, st, key); recordJKT(t, rec) != toks.dpop.JKT() {
			t.Fatal("rotation dropped or replaced the key")
		}
	})

	t.Run("key dropped from the record: login required", func(t *testing.T) {
		h := newHostileAS(t)
		as := newBindingAS(t, h)
		clk := newTestClock()
		_, st := login(t, h, clk, true)
		rec, _ := engine.LoadRecord(ctx, st, key)
		rec.DPoPKey = engine.PrivateKey{}
		if err := engine.SaveRecord(ctx, st, key, rec); err != nil {
			t.Fatal(err)
		}
		if _, err := resume(t, h, clk, st, true); !errors.Is(err, tokenstore.ErrLoginRequired) {
			t.Fatalf("refresh with another key: %v", err)
		}
		if as.lastRefreshJKT() == "" {
			t.Fatal("no proof sent")
		}
	})

	for _, tc := range []struct {
		name         string
		dpop         bool
		requireProof bool
	}{
		{"record without a key, DPoP on", true, false},
		{"record without a key, server answers use_dpop_nonce", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			as := newBindingAS(t, h)
			clk := newTestClock()
			toks, st := login(t, h, clk, false)
			if toks.OAuth2Token().TokenType != "Bearer" {
				t.Fatal("login should be Bearer")
			}
			as.mu.Lock()
			as.requireProof = tc.requireProof
			as.mu.Unlock()
			if _, err := resume(t, h, clk, st, tc.dpop); err != nil {
				t.Fatal(err)
			}
			rec, _ := engine.LoadRecord(ctx, st, key)
			jkt := recordJKT(t, rec)
			if jkt == "" || as.lastRefreshJKT() != jkt {
				t.Fatal("the new key is not stored with the refresh token bound to it")
			}
			clk.Advance(2 * time.Hour)
			if _, err := resume(t, h, clk, st, false); err != nil || as.lastRefreshJKT() != jkt {
				t.Fatalf("next refresh: %v", err)
			}
		})
	}

	t.Run("a key this client cannot sign with", func(t *testing.T) {
		h := newHostileAS(t)
		newBindingAS(t, h)
		clk := newTestClock()
		_, st := login(t, h, clk, true)
		rk, _ := rsa.GenerateKey(rand.Reader, 1024)
		der, _ := x509.MarshalPKCS8PrivateKey(rk)
		pk, err := engine.NewPrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := engine.LoadRecord(ctx, st, key)
		rec.DPoPKey = pk
		engine.SaveRecord(ctx, st, key, rec)
		before := h.tokenCalls.Load()
		_, err = resume(t, h, clk, st, true)
		if !errors.Is(err, tokenstore.ErrLoginRequired) || !errors.Is(err, ErrDPoP) || h.tokenCalls.Load() != before {
			t.Fatalf("RSA key in the record: %v, %d requests", err, h.tokenCalls.Load()-before)
		}
	})
}

// TestUserInfoDPoP: a DPoP-bound login calls userinfo with
// "Authorization: DPoP" and a fresh proof (GET, the userinfo URL, ath, the
// login's key); use_dpop_nonce is honoured with exactly one retry; a loop
// stops there; a bad nonce is refused; a Bearer login stays Bearer.
func TestUserInfoDPoP(t *testing.T) {
	ctx := context.Background()
	userinfoOK := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"sub":"user-1"}`))
	}
	useNonce := func(w http.ResponseWriter, nonce string) {
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="nonce needed"`)
		w.Header().Set("DPoP-Nonce", nonce)
		w.WriteHeader(http.StatusUnauthorized)
	}
	for _, tc := range []struct {
		name  string
		dpop  bool
		serve func(n int, w http.ResponseWriter, c dpop.ProofClaims)
		calls int
		want  error // nil: success
	}{
		{"nonce honoured with one retry", true, func(n int, w http.ResponseWriter, c dpop.ProofClaims) {
			if n == 1 {
				useNonce(w, "u-1")
				return
			}
			if c.Nonce != "u-1" {
				t.Errorf("retry nonce %q", c.Nonce)
			}
			userinfoOK(w)
		}, 2, nil},
		{"use_dpop_nonce loop stops after one retry", true, func(n int, w http.ResponseWriter, _ dpop.ProofClaims) {
			useNonce(w, fmt.Sprintf("u-%d", n))
		}, 2, ErrMalformedResponse},
		{"bad nonce refused", true, func(n int, w http.ResponseWriter, _ dpop.ProofClaims) {
			useNonce(w, "bad\u202enonce")
		}, 1, ErrDPoP},
		{"Bearer login", false, func(n int, w http.ResponseWriter, _ dpop.ProofClaims) { userinfoOK(w) }, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			cfg := h.config()
			cfg.DPoP = tc.dpop
			c, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				tt := "Bearer"
				if r.Header.Get("DPoP") != "" {
					tt = "DPoP"
				}
				h.writeTokens(w, map[string]any{"token_type": tt})
			})
			p, good := h.start(t, c)
			toks, err := c.Exchange(ctx, p, good)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			n := 0
			h.mu.Lock()
			h.userinfoFn = func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				i := n
				mu.Unlock()
				auth := r.Header.Get("Authorization")
				claims, k := proofOf(t, r.Header)
				if tc.dpop {
					tp, _ := k.Thumbprint(crypto.SHA256)
					if auth != "DPoP "+toks.OAuth2Token().AccessToken || claims.HTM != "GET" || claims.HTU != h.srv.URL+"/userinfo" ||
						claims.ATH != dpop.AccessTokenHash(toks.OAuth2Token().AccessToken) || base64.RawURLEncoding.EncodeToString(tp) != toks.dpop.JKT() {
						t.Errorf("userinfo request %d: Authorization %.6q, proof %+v", i, auth, claims)
					}
				} else if auth != "Bearer "+toks.OAuth2Token().AccessToken || k != nil {
					t.Errorf("Bearer userinfo request: Authorization %.6q, proof sent %v", auth, k != nil)
				}
				tc.serve(i, w, claims)
			}
			h.mu.Unlock()
			_, err = c.UserInfo(ctx, toks)
			mu.Lock()
			defer mu.Unlock()
			if n != tc.calls {
				t.Errorf("%d userinfo requests, want %d", n, tc.calls)
			}
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("UserInfo = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestServiceSourceOneDPoPKey: the service token source proves every token
// request with one key for its lifetime (also when DPoP came on through
// use_dpop_nonce), and each token carries it; ClientCredentials makes a new
// key per call.
func TestServiceSourceOneDPoPKey(t *testing.T) {
	for _, tc := range []struct {
		name         string
		dpop         bool
		requireProof bool
	}{{"Config.DPoP", true, false}, {"use_dpop_nonce", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			var mu sync.Mutex
			var jkts []string
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				_, k := proofOf(t, r.Header)
				if k == nil {
					if tc.requireProof {
						w.Header().Set("DPoP-Nonce", "n-1")
						writeJSON(w, 400, map[string]string{"error": "use_dpop_nonce"})
						return
					}
					t.Error("no proof")
				}
				tp, _ := k.Thumbprint(crypto.SHA256)
				mu.Lock()
				jkts = append(jkts, base64.RawURLEncoding.EncodeToString(tp))
				n := len(jkts)
				mu.Unlock()
				writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("AT-%d", n), "token_type": "DPoP", "expires_in": 60})
			})
			seen := func() []string {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), jkts...)
			}
			clk := newTestClock()
			c := serviceClient(t, h, func(c *Config) { c.DPoP, c.Now = tc.dpop, clk.Now })
			src := c.serviceSource(nil, nil)
			for range 3 {
				tok, err := src.Token()
				if err != nil {
					t.Fatal(err)
				}
				if k, j := dpop.TokenKey(tok), seen(); k == nil || k.JKT() != j[len(j)-1] {
					t.Fatal("the token does not carry the key that got it")
				}
				clk.Advance(2 * time.Minute)
			}
			if j := seen(); len(j) != 3 || j[0] != j[1] || j[1] != j[2] {
				t.Fatalf("service source proofs by %q, want one key", j)
			}
			for range 2 {
				if _, err := c.serviceSource(nil, nil).TokenContext(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if j := seen(); j[3] == j[4] || j[3] == j[0] {
				t.Fatal("ClientCredentials reused a key")
			}
		})
	}
}
