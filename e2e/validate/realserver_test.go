package validate_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// These tests run against the real in-process authorization server
// (zitadel's OpenID-certified op package): the happy paths and a key
// rotation the server performs itself.

type realFlow struct {
	s   *oauthtest.Server
	ctx context.Context
}

func startReal(t *testing.T) *realFlow {
	t.Helper()
	s, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatalf("oauthtest.Start: %v", err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &realFlow{s: s, ctx: context.WithValue(ctx, oauth2.HTTPClient, s.HTTPClient())}
}

func randString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login runs the authorization-code flow with PKCE and a nonce and returns
// the token response and the nonce.
func (f *realFlow) login(t *testing.T, client, secret string) (*oauth2.Token, string) {
	t.Helper()
	cfg := &oauth2.Config{
		ClientID: client, ClientSecret: secret, RedirectURL: oauthtest.WebRedirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: f.s.AuthURL, TokenURL: f.s.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", oauthtest.ScopeAPIRead},
	}
	verifier, state, nonce := oauth2.GenerateVerifier(), randString(), randString()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))
	cb, err := f.s.Login(f.ctx, authURL, oauthtest.UserAlice)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	u, err := url.Parse(cb)
	if err != nil || u.Query().Get("state") != state {
		t.Fatalf("callback %v", err)
	}
	tok, err := cfg.Exchange(f.ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok, nonce
}

// metadataAlgs reads id_token_signing_alg_values_supported from discovery.
func (f *realFlow) metadataAlgs(t *testing.T) []string {
	resp, err := f.s.HTTPClient().Get(f.s.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil || len(md.Algs) == 0 {
		t.Fatalf("discovery: %v %v", err, md.Algs)
	}
	return md.Algs
}

func TestRealServerIDTokenAndRotation(t *testing.T) {
	f := startReal(t)
	clk := &clock{t: time.Now()}
	jwks, err := validate.NewJWKS(validate.JWKSConfig{URL: f.s.JWKSURL, HTTPClient: strictPool(t, f.s.RootCAs()), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{Issuer: f.s.Issuer, ClientID: oauthtest.ClientWeb, Algorithms: f.metadataAlgs(t), KeySet: jwks})
	if err != nil {
		t.Fatal(err)
	}
	jwksPath := mustPath(t, f.s.JWKSURL)

	tok1, nonce1 := f.login(t, oauthtest.ClientWeb, oauthtest.WebSecret)
	raw1 := tok1.Extra("id_token").(string)
	id1, err := v.Verify(f.ctx, raw1, validate.IDTokenCheck{Nonce: nonce1, AccessToken: tok1.AccessToken})
	if err != nil {
		t.Fatalf("real ID token: %v", err)
	}
	if id1.Subject == "" || id1.Issuer != f.s.Issuer {
		t.Fatalf("claims %+v", id1)
	}
	if id1.StandardClaims.Subject != id1.Subject {
		t.Fatalf("profile claims %+v", id1.StandardClaims)
	}
	if _, err := v.Verify(f.ctx, raw1, validate.IDTokenCheck{Nonce: randString()}); !errors.Is(err, &validate.ClaimError{Claim: "nonce"}) {
		t.Fatalf("real token, other flow's nonce: %v", err)
	}
	if _, err := v.Verify(f.ctx, raw1, validate.IDTokenCheck{Nonce: nonce1, AccessToken: "another-access-token"}); !errors.Is(err, &validate.ClaimError{Claim: "at_hash"}) {
		t.Fatalf("real token, wrong access token for at_hash: %v", err)
	}
	if n := f.s.Count(jwksPath); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}

	// The server rotates its signing key; the old key stays published.
	newKid, err := f.s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	tok2, nonce2 := f.login(t, oauthtest.ClientWeb, oauthtest.WebSecret)
	raw2 := tok2.Extra("id_token").(string)
	if jwtKid(raw2) != newKid {
		t.Fatal("the server did not sign with the new key")
	}
	// Within the cooldown the new kid is unknown and no fetch is made.
	if _, err := v.Verify(f.ctx, raw2, validate.IDTokenCheck{Nonce: nonce2}); !errors.Is(err, validate.ErrInvalidToken) || !strings.Contains(err.Error(), "no matching key") {
		t.Fatalf("new kid within cooldown: %v", err)
	}
	if n := f.s.Count(jwksPath); n != 1 {
		t.Fatalf("JWKS fetched %d times within cooldown", n)
	}
	clk.Advance(31 * time.Second)
	if _, err := v.Verify(f.ctx, raw2, validate.IDTokenCheck{Nonce: nonce2}); err != nil {
		t.Fatalf("new kid after cooldown: %v", err)
	}
	if _, err := v.Verify(f.ctx, raw1, validate.IDTokenCheck{Nonce: nonce1}); err != nil {
		t.Fatalf("old kid after rotation: %v", err)
	}
	if n := f.s.Count(jwksPath); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
	// UserInfo sub check against the real userinfo endpoint.
	req, _ := http.NewRequest(http.MethodGet, f.s.UserinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+tok2.AccessToken)
	resp, err := f.s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ui struct {
		Sub string `json:"sub"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ui); err != nil {
		t.Fatal(err)
	}
	// (oauthclient.Client.UserInfo makes this check; here by hand.)
	if ui.Sub == "" || ui.Sub != id1.Subject {
		t.Fatalf("userinfo sub %q, ID token sub %q", ui.Sub, id1.Subject)
	}
}

func TestRealServerAccessTokens(t *testing.T) {
	f := startReal(t)
	jwks, err := validate.NewJWKS(validate.JWKSConfig{URL: f.s.JWKSURL, HTTPClient: strictPool(t, f.s.RootCAs())})
	if err != nil {
		t.Fatal(err)
	}
	// zitadel's JWT access tokens carry typ "JWT", not RFC 9068's at+jwt:
	// they are refused as access tokens (and would need introspection).
	jwtTok, nonce := f.login(t, oauthtest.ClientWebJWTAccess, oauthtest.WebJWTAccessSecret)
	atv, err := validate.NewAccessTokenVerifier(validate.AccessTokenConfig{Issuer: f.s.Issuer, Audience: oauthtest.ClientResource, KeySet: jwks})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := atv.Verify(f.ctx, jwtTok.AccessToken); !errors.Is(err, &validate.ClaimError{Claim: "typ"}) {
		t.Fatalf("typ JWT access token: %v", err)
	}
	// Its ID token is refused as an access token too.
	if _, err := atv.Verify(f.ctx, jwtTok.Extra("id_token").(string)); !errors.Is(err, &validate.ClaimError{Claim: "typ"}) {
		t.Fatalf("real ID token as access token: %v", err)
	}
	// And its access token is refused as an ID token (no nonce in it).
	idv, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{Issuer: f.s.Issuer, ClientID: oauthtest.ClientWebJWTAccess, KeySet: jwks})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idv.Verify(f.ctx, jwtTok.AccessToken, validate.IDTokenCheck{Nonce: nonce}); err == nil {
		t.Fatal("real access token accepted as an ID token")
	}

	// Opaque tokens go through introspection, authenticated as the API.
	opaque, _ := f.login(t, oauthtest.ClientWeb, oauthtest.WebSecret)
	in, err := validate.NewIntrospector(validate.IntrospectionConfig{
		Endpoint: f.s.IntrospectionURL, HTTPClient: strictPool(t, f.s.RootCAs()),
		Authenticate: func(req *http.Request, _ url.Values) error {
			req.SetBasicAuth(oauthtest.ClientResource, oauthtest.ResourceSecret)
			return nil
		},
		Issuer: f.s.Issuer, ClientID: oauthtest.ClientWeb, CacheSize: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	at, err := in.Verify(f.ctx, opaque.AccessToken)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	if err := at.RequireScopes(oauthtest.ScopeAPIRead); err != nil {
		t.Fatalf("scopes %v: %v", at.Scopes, err)
	}
	var ise *validate.InsufficientScopeError
	if err := at.RequireScopes(oauthtest.ScopeAPIWrite); !errors.As(err, &ise) || ise.Scope[0] != oauthtest.ScopeAPIWrite {
		t.Fatalf("api.write: %v", err)
	}
	before := f.s.Count(mustPath(t, f.s.IntrospectionURL))
	if _, err := in.Verify(f.ctx, opaque.AccessToken); err != nil {
		t.Fatal(err)
	}
	if f.s.Count(mustPath(t, f.s.IntrospectionURL)) != before {
		t.Fatal("cached introspection called the server again")
	}
	if _, err := in.Verify(f.ctx, "not-a-token"); !errors.Is(err, &validate.ClaimError{Claim: "active"}) {
		t.Fatalf("garbage token: %v", err)
	}
}

func mustPath(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// clock is an adjustable clock for the verifiers' Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwtKid returns the kid of a compact JWS's header, or "".
func jwtKid(raw string) string {
	h, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &hdr) != nil {
		return ""
	}
	return hdr.Kid
}

// strictPool is oauthsafe's strict client trusting pool: the only kind of
// client validate accepts besides nil.
func strictPool(t testing.TB, pool *x509.CertPool) *http.Client {
	t.Helper()
	c, err := strictnet.NewClient(strictnet.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
