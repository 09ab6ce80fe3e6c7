package oauthtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestCountersHookAndInterceptor(t *testing.T) {
	s := start(t, Options{})
	cc := clientcredentials.Config{ClientID: ClientService, ClientSecret: ServiceSecret, TokenURL: s.TokenURL,
		AuthStyle: oauth2.AuthStyleInHeader}
	s.Reset()
	if s.Count(tokenPath) != 0 || s.TokenRequests("client_credentials") != 0 {
		t.Fatal("Reset did not zero the counters")
	}

	var hooked atomic.Int32
	var sawGrant atomic.Value
	s.SetHook(func(r *http.Request) {
		hooked.Add(1)
		if r.URL.Path == tokenPath {
			// The hook can read the body; the server still gets it.
			if err := r.ParseForm(); err == nil {
				sawGrant.Store(r.PostForm.Get("grant_type"))
			}
		}
	})
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := cc.Token(ctxFor(t, s)); err != nil {
				t.Errorf("Token: %v", err)
			}
		})
	}
	wg.Wait()
	if got := s.TokenRequests("client_credentials"); got != n {
		t.Fatalf("TokenRequests = %d, want %d", got, n)
	}
	if got := s.Count(tokenPath); got != n {
		t.Fatalf("Count = %d, want %d", got, n)
	}
	if hooked.Load() != n || sawGrant.Load() != "client_credentials" {
		t.Fatalf("hook saw %d requests, grant %v", hooked.Load(), sawGrant.Load())
	}
	s.SetHook(nil)

	// The interceptor answers instead of the server, and the request is
	// still counted.
	var once atomic.Bool
	s.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == tokenPath && once.CompareAndSwap(false, true) {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	s.Reset()
	_, err := cc.Token(ctxFor(t, s))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("intercepted request: err = %v", err)
	}
	if _, err := cc.Token(ctxFor(t, s)); err != nil {
		t.Fatalf("after interception: %v", err)
	}
	if got := s.TokenRequests("client_credentials"); got != 2 {
		t.Fatalf("TokenRequests = %d, want 2", got)
	}
	s.SetInterceptor(nil)
	if c := s.Counts(); c[tokenPath] != 2 || len(c) != 1 {
		t.Fatalf("Counts = %v", c)
	}
}

func TestRedirectURIMatching(t *testing.T) {
	s := start(t, Options{RedirectURIs: []string{"http://127.0.0.1:7000/cb"}})
	try := func(id, secret, redirect string) error {
		cfg := oauthConfig(s, id, secret, oauth2.AuthStyleInHeader, redirect, "openid")
		v := oauth2.GenerateVerifier()
		_, err := s.Login(ctxFor(t, s), cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), UserAlice)
		return err
	}
	// Web clients: exact match only.
	if err := try(ClientWeb, WebSecret, "http://127.0.0.1:7001/cb"); err == nil {
		t.Fatal("web client accepted another port")
	}
	if err := try(ClientWeb, WebSecret, "http://127.0.0.1:7002/new"); err == nil {
		t.Fatal("web client accepted an unregistered URI")
	}
	s.AddRedirectURI("http://127.0.0.1:7002/new")
	if err := try(ClientWeb, WebSecret, "http://127.0.0.1:7002/new"); err != nil {
		t.Fatalf("after AddRedirectURI: %v", err)
	}
	// Native client: any loopback port, but the path must match.
	if err := try(ClientNative, "", "http://127.0.0.1:61234/callback"); err != nil {
		t.Fatalf("native loopback port: %v", err)
	}
	if err := try(ClientNative, "", "http://127.0.0.1:61234/other"); err == nil {
		t.Fatal("native client accepted another path")
	}
	if err := try(ClientNative, "", "http://192.0.2.1:61234/callback"); err == nil {
		t.Fatal("native client accepted a non-loopback host")
	}
}

func TestRotateKey(t *testing.T) {
	s := start(t, Options{})
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, "openid")
	old := s.SigningKeyID()
	tok1 := codeFlow(t, s, cfg, UserAlice)
	newID, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if newID == old || s.SigningKeyID() != newID {
		t.Fatalf("key id %q after rotation from %q", s.SigningKeyID(), old)
	}
	tok2 := codeFlow(t, s, cfg, UserAlice) // verified against the JWKS
	kid := func(tok *oauth2.Token) string {
		jws, err := jose.ParseSignedCompact(tok.Extra("id_token").(string), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		return jws.Signatures[0].Header.KeyID
	}
	if kid(tok1) != old || kid(tok2) != newID {
		t.Fatalf("kids %q, %q; want %q, %q", kid(tok1), kid(tok2), old, newID)
	}
	// Both keys are published, so the old ID token still verifies.
	ctx := ctxFor(t, s)
	ks := oidc.NewRemoteKeySet(ctx, s.JWKSURL)
	if _, err := ks.VerifySignature(ctx, tok1.Extra("id_token").(string)); err != nil {
		t.Fatalf("old token no longer verifies: %v", err)
	}
	resp, err := s.HTTPClient().Get(s.JWKSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(set.Keys))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm != "RS256" {
			t.Fatalf("bad JWK %+v", k)
		}
	}
}

func TestJWTAccessToken(t *testing.T) {
	s := start(t, Options{})
	cfg := oauthConfig(s, ClientWebJWTAccess, WebJWTAccessSecret, oauth2.AuthStyleInHeader, WebRedirectURI,
		"openid", ScopeAPIRead)
	tok := codeFlow(t, s, cfg, UserBob)
	jws, err := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("access token is not a JWS: %v", err)
	}
	ctx := ctxFor(t, s)
	payload, err := oidc.NewRemoteKeySet(ctx, s.JWKSURL).VerifySignature(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	aud, _ := json.Marshal(claims["aud"])
	if claims["iss"] != s.Issuer || claims["sub"] != Subject(UserBob) || !strings.Contains(string(aud), `"`+ClientResource+`"`) ||
		claims["scope"] != ScopeAPIRead {
		t.Fatalf("claims %v", claims)
	}
	t.Logf("JWT access token typ header: %v", jws.Signatures[0].Protected.ExtraHeaders["typ"])
	// The opaque client's token is not a JWT.
	opaque := codeFlow(t, s, oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, "openid"), UserBob)
	if strings.Count(opaque.AccessToken, ".") == 2 {
		t.Fatal("opaque access token looks like a JWT")
	}
}

func TestStartOptions(t *testing.T) {
	if _, err := Start(Options{AccessTokenLifetime: -1}); err == nil {
		t.Fatal("negative lifetime accepted")
	}
	if len(Users()) < 2 || Subject(UserAlice) == "" || Subject(UserAlice) == Subject(UserBob) || Subject("nobody") != "" {
		t.Fatal("users")
	}
	s := start(t, Options{})
	if !strings.Contains(string(s.CACertPEM), "BEGIN CERTIFICATE") || s.ClientKey == nil || s.ClientKeyID == "" {
		t.Fatal("exported material missing")
	}
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := Start(Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
