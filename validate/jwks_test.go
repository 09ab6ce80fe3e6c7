package validate

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	jose "github.com/go-jose/go-jose/v4"
)

// unknownKidToken is a well-formed RS256 token with a random kid and a
// random signature: the signature is never checked because no key matches.
func unknownKidToken(t testing.TB) string {
	kid := make([]byte, 12)
	sig := make([]byte, 256)
	rand.Read(kid)
	rand.Read(sig)
	claims, _ := json.Marshal(idClaims())
	return rawJWS(`{"alg":"RS256","typ":"JWT","kid":"`+hex.EncodeToString(kid)+`"}`, string(claims), sig)
}

func TestJWKSUnknownKidStorm(t *testing.T) {
	testKeys(t)
	for _, warm := range []bool{false, true} {
		name := map[bool]string{false: "cold cache", true: "warm cache past cooldown"}[warm]
		t.Run(name, func(t *testing.T) {
			ks := newKeyServer(t, standardJWKS(t))
			clk := newClock()
			jwks := newTestJWKS(t, ks, clk.Now)
			v, err := NewIDTokenVerifier(IDTokenConfig{Issuer: testIssuer, ClientID: testClientID, KeySet: jwks, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if warm {
				if _, err := v.Verify(ctx, sign(t, rs256(), idClaims()), IDTokenCheck{Nonce: testNonce}); err != nil {
					t.Fatal(err)
				}
				// The cooldown has passed: one refetch is allowed.
				clk.Advance(31 * time.Second)
			}
			// Slow the fetch down so the storm piles up behind it.
			ks.mu.Lock()
			ks.gate = make(chan struct{})
			ks.started = make(chan struct{}, 1)
			gate, started := ks.gate, ks.started
			ks.mu.Unlock()
			go func() { <-started; time.Sleep(20 * time.Millisecond); close(gate) }()

			const total, workers = 10000, 64
			tokens := make([]string, 256)
			for i := range tokens {
				tokens[i] = unknownKidToken(t)
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < total; i += workers {
						_, err := v.Verify(ctx, tokens[(i*7919)%len(tokens)], IDTokenCheck{Nonce: testNonce})
						if !errors.Is(err, errKeyNotFound) {
							errs <- err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("unexpected result: %v", err)
			}
			n := ks.fetches.Load()
			if n > 2 {
				t.Fatalf("%d JWKS fetches for 10,000 unknown kids, want at most 2", n)
			}
			// The refetch did happen (once): the cache is not simply frozen.
			want := int64(1)
			if warm {
				want = 2
			}
			if n != want {
				t.Fatalf("%d fetches, want exactly %d", n, want)
			}
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	keyA := jwkJSON(t, &rsaKey.PublicKey, "a", "RS256", "sig")
	keyB := jwkJSON(t, &rsaKey2.PublicKey, "b", "RS256", "sig")
	ks := newKeyServer(t, []json.RawMessage{keyA})
	clk := newClock()
	jwks := newTestJWKS(t, ks, clk.Now)
	v, err := NewIDTokenVerifier(IDTokenConfig{Issuer: testIssuer, ClientID: testClientID, KeySet: jwks, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verify := func(key *signOpts) error {
		claims := with(idClaims(), "exp", clk.Now().Add(10*time.Minute).Unix(), "iat", clk.Now().Unix())
		_, err := v.Verify(ctx, sign(t, *key, claims), IDTokenCheck{Nonce: testNonce})
		return err
	}
	signA := &signOpts{alg: jose.RS256, key: rsaKey, kid: "a"}
	signB := &signOpts{alg: jose.RS256, key: rsaKey2, kid: "b"}

	if err := verify(signA); err != nil {
		t.Fatalf("A before rotation: %v", err)
	}
	// The server publishes B next to A.
	ks.setKeys(keyA, keyB)
	clk.Advance(10 * time.Second)
	if err := verify(signB); !errors.Is(err, errKeyNotFound) {
		t.Fatalf("B within cooldown: got %v, want errKeyNotFound", err)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within cooldown", n)
	}
	clk.Advance(25 * time.Second) // 35 s since the first fetch
	if err := verify(signB); err != nil {
		t.Fatalf("B after cooldown: %v", err)
	}
	if err := verify(signA); err != nil {
		t.Fatalf("A still published: %v", err)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// The server removes A. A keeps working until the set is fetched again
	// (max age), then it is gone; B keeps working.
	ks.setKeys(keyB)
	clk.Advance(30 * time.Minute)
	if err := verify(signA); err != nil {
		t.Fatalf("A before max age: %v", err)
	}
	clk.Advance(31 * time.Minute)
	if err := verify(signA); !errors.Is(err, errKeyNotFound) {
		t.Fatalf("A after removal and max age: got %v", err)
	}
	if err := verify(signB); err != nil {
		t.Fatalf("B after removal of A: %v", err)
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

func TestJWKSMaxAgeIsHard(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, standardJWKS(t))
	clk := newClock()
	jwks := newTestJWKS(t, ks, clk.Now)
	tok := sign(t, rs256(), idClaims())
	ctx := context.Background()
	if _, err := jwks.VerifySignature(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// The server goes down and the keys age out: they are not used stale.
	ks.mu.Lock()
	ks.status = http.StatusInternalServerError
	ks.mu.Unlock()
	clk.Advance(time.Hour + time.Second)
	if _, err := jwks.VerifySignature(ctx, tok); !errors.Is(err, errKeySet) {
		t.Fatalf("stale keys with server down: %v", err)
	}
	// A failed fetch also starts a cooldown: no hammering.
	for i := 0; i < 100; i++ {
		if _, err := jwks.VerifySignature(ctx, tok); !errors.Is(err, errKeySet) {
			t.Fatal(err)
		}
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	ks.mu.Lock()
	ks.status = 0
	ks.mu.Unlock()
	clk.Advance(31 * time.Second)
	if _, err := jwks.VerifySignature(ctx, tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestJWKSCancelledCallerDoesNotPoisonFetch(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, standardJWKS(t))
	gate, started := make(chan struct{}), make(chan struct{}, 1)
	ks.gate, ks.started = gate, started
	jwks := newTestJWKS(t, ks, func() time.Time { return testNow })
	tok := sign(t, rs256(), idClaims())

	ctx1, cancel1 := context.WithCancel(context.Background())
	res1 := make(chan error, 1)
	go func() { _, err := jwks.VerifySignature(ctx1, tok); res1 <- err }()
	<-started // the shared fetch is in flight, started by caller 1
	res2 := make(chan error, 1)
	go func() { _, err := jwks.VerifySignature(context.Background(), tok); res2 <- err }()
	cancel1()
	if err := <-res1; !errors.Is(err, errKeySet) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(gate)
	select {
	case err := <-res2:
		if err != nil {
			t.Fatalf("other caller failed after the first cancelled: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("other caller never finished")
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 shared fetch", n)
	}
}

func TestJWKSKnownKeysDoNotWaitForFetch(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, standardJWKS(t))
	clk := newClock()
	jwks := newTestJWKS(t, ks, clk.Now)
	ctx := context.Background()
	known := sign(t, rs256(), idClaims())
	if _, err := jwks.VerifySignature(ctx, known); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	gate, started := make(chan struct{}), make(chan struct{}, 1)
	ks.mu.Lock()
	ks.gate, ks.started = gate, started
	ks.mu.Unlock()
	defer close(gate)
	go jwks.VerifySignature(ctx, unknownKidToken(t)) // blocks in the fetch
	<-started
	done := make(chan error, 1)
	go func() { _, err := jwks.VerifySignature(ctx, known); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("verification with a known key waited on the in-flight fetch")
	}
}

func TestJWKSResponseBounds(t *testing.T) {
	testKeys(t)
	many := make([]json.RawMessage, 101)
	for i := range many {
		many[i] = jwkJSON(t, &rsaKey.PublicKey, "k"+strings.Repeat("x", i), "RS256", "sig")
	}
	huge := []byte(`{"keys":[],"pad":"` + strings.Repeat("A", 1<<20) + `"}`)
	for _, tc := range []struct {
		name   string
		setup  func(*keyServer)
		errMsg string
	}{
		{"body over 1 MiB", func(ks *keyServer) { ks.raw = huge }, "1 MiB"},
		{"more than MaxKeys keys", func(ks *keyServer) { ks.keys = many }, "too many"},
		{"HTML body", func(ks *keyServer) { ks.raw = []byte("<html>hi</html>") }, "not a JWK Set"},
		{"no keys member", func(ks *keyServer) { ks.raw = []byte(`{"keyz":[]}`) }, "not a JWK Set"},
		{"status 500", func(ks *keyServer) { ks.status = 500 }, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, standardJWKS(t))
			tc.setup(ks)
			jwks := newTestJWKS(t, ks, func() time.Time { return testNow })
			_, err := jwks.VerifySignature(context.Background(), sign(t, rs256(), idClaims()))
			if !errors.Is(err, errKeySet) || !strings.Contains(err.Error(), tc.errMsg) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// Exactly 1 MiB of valid key set is accepted.
	t.Run("1 MiB exactly", func(t *testing.T) {
		keys, _ := json.Marshal(map[string]any{"keys": standardJWKS(t)})
		body := append(keys[:len(keys)-1], []byte(`,"pad":"`)...)
		body = append(body, []byte(strings.Repeat("A", (1<<20)-len(body)-2)+`"}`)...)
		ks := newKeyServer(t, nil)
		ks.raw = body
		jwks := newTestJWKS(t, ks, func() time.Time { return testNow })
		if _, err := jwks.VerifySignature(context.Background(), sign(t, rs256(), idClaims())); err != nil {
			t.Fatalf("len %d: %v", len(body), err)
		}
	})
	t.Run("redirect to http", func(t *testing.T) {
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("plain http server reached") }))
		defer plain.Close()
		red := httptest.NewTLSServer(http.RedirectHandler(plain.URL, http.StatusFound))
		defer red.Close()
		jwks, err := NewJWKS(JWKSConfig{URL: red.URL, HTTPClient: strictFor(t, red)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwks.VerifySignature(context.Background(), sign(t, rs256(), idClaims())); !errors.Is(err, errKeySet) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestNewJWKSConfig(t *testing.T) {
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS10}}}
	for _, cfg := range []JWKSConfig{
		{URL: "http://127.0.0.1/jwks"},
		{URL: "/jwks"},
		{URL: "https://user:pw@127.0.0.1/jwks"},
		{URL: "https://127.0.0.1/jwks", HTTPClient: insecure},
		{URL: "https://127.0.0.1/jwks", HTTPClient: old},
		{URL: "https://127.0.0.1/jwks", Cooldown: 2 * time.Hour},
		{URL: "https://127.0.0.1/jwks", MaxKeys: -1},
	} {
		if _, err := NewJWKS(cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("%+v: got %v", cfg, err)
		}
	}
}

func TestJWKSKeyMatching(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, []json.RawMessage{
		jwkJSON(t, &rsaKey.PublicKey, "dup", "RS256", "sig"),
		jwkJSON(t, &rsaKey2.PublicKey, "dup", "RS256", "sig"), // duplicate kid: both tried
		[]byte(`{"kty":"oct","kid":"sym","k":"c2VjcmV0"}`),    // symmetric: ignored
		[]byte(`{"kty":"XYZ","kid":"odd"}`),                   // unknown kty: skipped, not fatal
		jwkJSON(t, &ecKey.PublicKey, "ops", "ES256", ""),
	})
	jwks := newTestJWKS(t, ks, func() time.Time { return testNow })
	ctx := context.Background()
	if _, err := jwks.VerifySignature(ctx, sign(t, signOpts{alg: jose.RS256, key: rsaKey2, kid: "dup"}, idClaims())); err != nil {
		t.Fatalf("second key under a duplicate kid: %v", err)
	}
	if _, err := jwks.VerifySignature(ctx, sign(t, signOpts{alg: jose.HS256, key: []byte(strings.Repeat("s", 32)), kid: "sym"}, idClaims())); !errors.Is(err, errAlgorithm) {
		t.Fatalf("HS256 via KeySet: %v", err)
	}
	if _, err := jwks.VerifySignature(ctx, sign(t, signOpts{alg: jose.ES256, key: ecKey, kid: "ops"}, idClaims())); err != nil {
		t.Fatalf("EC key: %v", err)
	}
	// key_ops without "verify" is never used.
	ks2 := newKeyServer(t, []json.RawMessage{[]byte(strings.Replace(string(jwkJSON(t, &ecKey.PublicKey, "ops", "ES256", "")), `{`, `{"key_ops":["encrypt"],`, 1))})
	jwks2 := newTestJWKS(t, ks2, func() time.Time { return testNow })
	if _, err := jwks2.VerifySignature(ctx, sign(t, signOpts{alg: jose.ES256, key: ecKey, kid: "ops"}, idClaims())); !errors.Is(err, errKeyNotFound) {
		t.Fatalf("key_ops encrypt: %v", err)
	}
}

// TestJWKSNoRedirects: the key set fetch follows no redirect (no server
// call of the SDK does): a JWKS URI that answers 301, 302, 307 or 308 to
// a valid key set on the same host or another https host fails with
// errKeySet naming the redirect, and the target is never asked.
func TestJWKSNoRedirects(t *testing.T) {
	target := newKeyServer(t, standardJWKS(t))
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, sameHost := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d/same host %v", status, sameHost), func(t *testing.T) {
				var red *httptest.Server
				red = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/moved" {
						target.serve(w, r) // the real key set, one hop away
						return
					}
					to := target.URL + "/jwks"
					if sameHost {
						to = red.URL + "/moved"
					}
					http.Redirect(w, r, to, status)
				}))
				defer red.Close()
				before := target.fetches.Load()
				jwks, err := NewJWKS(JWKSConfig{URL: red.URL + "/jwks", HTTPClient: strictFor(t, red)})
				if err != nil {
					t.Fatal(err)
				}
				_, err = jwks.VerifySignature(context.Background(), sign(t, rs256(), idClaims()))
				if !errors.Is(err, errKeySet) || !strings.Contains(err.Error(), "redirect") {
					t.Fatalf("a redirecting JWKS URI = %v, want errKeySet naming the redirect", err)
				}
				if n := target.fetches.Load() - before; n != 0 {
					t.Fatalf("the redirect target was asked %d times", n)
				}
			})
		}
	}
}
