package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

var userScopes = []string{"openid", "profile", "email", "offline_access", ScopeAPIRead}

func refresh(t *testing.T, s *Server, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	t.Helper()
	return cfg.TokenSource(ctxFor(t, s), &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
}

func TestRefreshRotation(t *testing.T) {
	s := start(t, Options{})
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, userScopes...)
	tok := codeFlow(t, s, cfg, UserAlice)
	s.Reset()

	t2, err := refresh(t, s, cfg, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated")
	}
	if t2.AccessToken == tok.AccessToken {
		t.Fatalf("access token not renewed")
	}
	if got := s.TokenRequests("refresh_token"); got != 1 {
		t.Fatalf("refresh requests = %d, want 1", got)
	}
	// The consumed token is refused...
	if _, err := refresh(t, s, cfg, tok.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse: err = %v, want invalid_grant", err)
	}
	// ...but without RevokeFamilyOnReuse the current one still works.
	t3, err := refresh(t, s, cfg, t2.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the rotated token: %v", err)
	}
	// Another client cannot use it.
	other := oauthConfig(s, ClientWebPost, WebPostSecret, oauth2.AuthStyleInParams, WebRedirectURI)
	if _, err := refresh(t, s, other, t3.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("foreign client: err = %v, want invalid_grant", err)
	}
	if got := s.TokenRequests("refresh_token"); got != 4 {
		t.Fatalf("refresh requests = %d, want 4", got)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	s := start(t, Options{RevokeFamilyOnReuse: true})
	cfg := oauthConfig(s, ClientNative, "", oauth2.AuthStyleInParams, "http://127.0.0.1:1234/callback", userScopes...)
	tok := codeFlow(t, s, cfg, UserBob)
	t2, err := refresh(t, s, cfg, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := refresh(t, s, cfg, tok.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse: err = %v, want invalid_grant", err)
	}
	if _, err := refresh(t, s, cfg, t2.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("current token after reuse: err = %v, want invalid_grant", err)
	}
	if active := introspect(t, s, t2.AccessToken)["active"]; active != false {
		t.Fatalf("access token of the revoked family is still active")
	}
}

func TestConcurrentRefreshOnlyOneWins(t *testing.T) {
	s := start(t, Options{})
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, userScopes...)
	tok := codeFlow(t, s, cfg, UserAlice)
	s.Reset()
	const n = 8
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := refresh(t, s, cfg, tok.RefreshToken)
			switch {
			case err == nil:
				ok.Add(1)
			case isOAuthError(err, "invalid_grant"):
				refused.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != n-1 {
		t.Fatalf("ok=%d refused=%d, want 1 and %d", ok.Load(), refused.Load(), n-1)
	}
	if got := s.TokenRequests("refresh_token"); got != n {
		t.Fatalf("counted %d refresh requests, want %d", got, n)
	}
}

func TestShortAccessTokenLifetime(t *testing.T) {
	s := start(t, Options{AccessTokenLifetime: 2 * time.Second})
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, userScopes...)
	tok := codeFlow(t, s, cfg, UserAlice)
	if d := time.Until(tok.Expiry); d > 3*time.Second || d <= 0 {
		t.Fatalf("expiry in %v, want about 2s", d)
	}
}

func introspect(t *testing.T, s *Server, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ClientResource, ResourceSecret)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspection status %d", resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func revoke(t *testing.T, s *Server, form url.Values, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.RevocationURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestIntrospectionAndRevocation(t *testing.T) {
	s := start(t, Options{})
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, userScopes...)
	tok := codeFlow(t, s, cfg, UserAlice)

	m := introspect(t, s, tok.AccessToken)
	if m["active"] != true || m["client_id"] != ClientWeb || m["sub"] != Subject(UserAlice) {
		t.Fatalf("introspection: %v", m)
	}
	if !strings.Contains(m["scope"].(string), ScopeAPIRead) {
		t.Fatalf("scope missing: %v", m["scope"])
	}
	if m := introspect(t, s, "not-a-token"); m["active"] != false {
		t.Fatalf("garbage is active: %v", m)
	}

	// Revoking the refresh token ends the grant: refresh and access token.
	if st := revoke(t, s, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, ClientWeb, WebSecret); st != 200 {
		t.Fatalf("revoke status %d", st)
	}
	if _, err := refresh(t, s, cfg, tok.RefreshToken); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("refresh after revocation: %v", err)
	}
	if m := introspect(t, s, tok.AccessToken); m["active"] != false {
		t.Fatalf("access token active after its grant was revoked")
	}
	// Unknown tokens are fine (RFC 7009 §2.2); a wrong secret is not.
	if st := revoke(t, s, url.Values{"token": {"unknown"}}, ClientWeb, WebSecret); st != 200 {
		t.Fatalf("revoke unknown: status %d", st)
	}
	if st := revoke(t, s, url.Values{"token": {"unknown"}}, ClientWeb, "wrong"); st != 401 {
		t.Fatalf("revoke with a wrong secret: status %d, want 401", st)
	}
	if got := s.Count("/revoke"); got != 3 {
		t.Fatalf("Count(/revoke) = %d, want 3", got)
	}
}

func TestClientCredentials(t *testing.T) {
	s := start(t, Options{})
	cases := []struct {
		name, id, secret string
		style            oauth2.AuthStyle
		wantErr          string
	}{
		{"basic", ClientService, ServiceSecret, oauth2.AuthStyleInHeader, ""},
		{"post", ClientServicePost, ServicePostSecret, oauth2.AuthStyleInParams, ""},
		{"basic client using post", ClientService, ServiceSecret, oauth2.AuthStyleInParams, "invalid_client"},
		{"post client using basic", ClientServicePost, ServicePostSecret, oauth2.AuthStyleInHeader, "invalid_client"},
		{"wrong secret", ClientService, "nope", oauth2.AuthStyleInHeader, "invalid_client"},
		{"web client", ClientWeb, WebSecret, oauth2.AuthStyleInHeader, "unauthorized_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			cc := clientcredentials.Config{ClientID: tc.id, ClientSecret: tc.secret, TokenURL: s.TokenURL,
				Scopes: []string{ScopeAPIRead}, AuthStyle: tc.style}
			tok, err := cc.Token(ctxFor(t, s))
			if got := s.TokenRequests("client_credentials"); got != 1 {
				t.Errorf("client_credentials requests = %d, want 1", got)
			}
			if tc.wantErr != "" {
				if !isOAuthError(err, tc.wantErr) {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken != "" {
				t.Fatal("client_credentials returned a refresh token")
			}
			if m := introspect(t, s, tok.AccessToken); m["active"] != true || m["client_id"] != tc.id {
				t.Fatalf("introspection: %v", m)
			}
		})
	}
}

// assertion signs a private_key_jwt client assertion.
func assertion(t *testing.T, s *Server, kid string, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.ClientKey},
		(&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func postToken(t *testing.T, s *Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.HTTPClient().PostForm(s.TokenURL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestPrivateKeyJWT(t *testing.T) {
	s := start(t, Options{})
	now := time.Now()
	good := func() jwt.Claims {
		return jwt.Claims{Issuer: ClientPrivateKeyJWT, Subject: ClientPrivateKeyJWT, Audience: jwt.Audience{s.Issuer},
			ID: uuid.NewString(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "scope": {ScopeAPIRead},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	a := assertion(t, s, s.ClientKeyID, good())
	st, m := postToken(t, s, form(a))
	if st != 200 || m["access_token"] == nil {
		t.Fatalf("status %d: %v", st, m)
	}
	if st, m := postToken(t, s, form(a)); st != 401 || m["error"] != "invalid_client" {
		t.Fatalf("replayed assertion: status %d %v", st, m)
	}
	wrongAud := good()
	wrongAud.Audience = jwt.Audience{"https://other.example"}
	expired := good()
	expired.Expiry = jwt.NewNumericDate(now.Add(-time.Minute))
	noJTI := good()
	noJTI.ID = ""
	for name, a := range map[string]string{
		"wrong aud":   assertion(t, s, s.ClientKeyID, wrongAud),
		"expired":     assertion(t, s, s.ClientKeyID, expired),
		"no jti":      assertion(t, s, s.ClientKeyID, noJTI),
		"unknown kid": assertion(t, s, "other", good()),
	} {
		if st, m := postToken(t, s, form(a)); st != 401 || m["error"] != "invalid_client" {
			t.Errorf("%s: status %d %v", name, st, m)
		}
	}
	// A secret is not accepted for this client.
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {ClientPrivateKeyJWT}, "client_secret": {"x"}}
	if st, m := postToken(t, s, f); st != 401 || m["error"] != "invalid_client" {
		t.Errorf("secret for a private_key_jwt client: status %d %v", st, m)
	}
}

func pkcePair() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func TestAuthorizeRequiresPKCE(t *testing.T) {
	s := start(t, Options{})
	_, challenge := pkcePair()
	base := url.Values{"client_id": {ClientWeb}, "redirect_uri": {WebRedirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	cases := []struct {
		name     string
		q        url.Values
		wantCode string // error parameter in the redirect; "" = no redirect at all
	}{
		{"no challenge", with("code_challenge", ""), "invalid_request"},
		{"no method", with("code_challenge_method", ""), "invalid_request"},
		{"plain", with("code_challenge_method", "plain"), "invalid_request"},
		{"short challenge", with("code_challenge", "abc"), "invalid_request"},
		{"implicit", with("response_type", "token"), "unauthorized_client"},
		{"fragment mode", with("response_mode", "fragment"), "invalid_request"},
		{"form_post mode", with("response_mode", "form_post"), "invalid_request"},
		{"unregistered redirect", with("redirect_uri", "https://evil.example/cb"), ""},
		{"unknown client", with("client_id", "nobody"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			cb, err := s.Login(ctxFor(t, s), s.AuthURL+"?"+tc.q.Encode(), UserAlice)
			var ae *AuthorizeError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *AuthorizeError", err)
			}
			if ae.Code != tc.wantCode {
				t.Fatalf("code = %q (%v), want %q", ae.Code, ae, tc.wantCode)
			}
			if s.Count(loginPath) != 0 {
				t.Fatal("the login page was reached")
			}
			if tc.wantCode == "" {
				if cb != "" {
					t.Fatalf("redirected to %q", cb)
				}
				return
			}
			u, _ := url.Parse(cb)
			if u.Fragment != "" || !strings.HasPrefix(cb, WebRedirectURI+"?") {
				t.Fatalf("error redirect %q", cb)
			}
			if u.Query().Get("iss") != s.Issuer || u.Query().Get("state") != "st" || u.Query().Has("code") {
				t.Fatalf("error redirect %q", cb)
			}
		})
	}
	// The same request with PKCE succeeds.
	cb, err := s.Login(ctxFor(t, s), s.AuthURL+"?"+base.Encode(), UserAlice)
	if err != nil || !strings.Contains(cb, "code=") {
		t.Fatalf("valid request: %q, %v", cb, err)
	}
}

func TestWrongPasswordIssuesNoCode(t *testing.T) {
	s := start(t, Options{})
	_, challenge := pkcePair()
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, "openid")
	u := cfg.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	var ae *AuthorizeError
	if _, err := s.LoginWithPassword(ctxFor(t, s), u, UserAlice, "wrong"); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want 401 AuthorizeError", err)
	}
	if _, err := s.Login(ctxFor(t, s), u, "mallory"); err == nil {
		t.Fatal("unknown user logged in")
	}
	if s.Count(authorizeCallback) != 0 {
		t.Fatal("callback reached without a login")
	}
}

func TestDeviceGrant(t *testing.T) {
	s := start(t, Options{})
	ctx := ctxFor(t, s)
	cfg := oauthConfig(s, ClientDevice, "", oauth2.AuthStyleInParams, "", userScopes...)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.VerificationURI != s.DeviceVerificationURL || da.Interval != 1 {
		t.Fatalf("device auth response: %+v", da)
	}
	if err := s.ApproveDevice(ctx, "WRONG-CODE", UserAlice); err == nil {
		t.Fatal("unknown user code approved")
	}
	if err := s.ApproveDevice(ctx, da.UserCode, UserAlice); err != nil {
		t.Fatalf("ApproveDevice: %v", err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatal("device grant without refresh or ID token")
	}
	if m := introspect(t, s, tok.AccessToken); m["sub"] != Subject(UserAlice) {
		t.Fatalf("introspection: %v", m)
	}
	// The device code yields tokens once.
	st, m := postToken(t, s, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da.DeviceCode}, "client_id": {ClientDevice}})
	if st != 400 || m["access_token"] != nil {
		t.Fatalf("second poll: %d %v", st, m)
	}
}

func TestDeviceGrantDenied(t *testing.T) {
	s := start(t, Options{})
	ctx := ctxFor(t, s)
	cfg := oauthConfig(s, ClientDevice, "", oauth2.AuthStyleInParams, "", "openid")
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DenyDevice(ctx, da.UserCode, UserBob); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.DeviceAccessToken(ctx, da); !isOAuthError(err, "access_denied") {
		t.Fatalf("err = %v, want access_denied", err)
	}
}

func TestCodeBurnedByFailedExchange(t *testing.T) {
	s := start(t, Options{})
	ctx := ctxFor(t, s)
	cfg := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, "openid")
	verifier := oauth2.GenerateVerifier()
	cb, err := s.Login(ctx, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), UserAlice)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cb)
	code := u.Query().Get("code")
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("wrong verifier: err = %v, want invalid_grant", err)
	}
	if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("code reused after a failed exchange: err = %v, want invalid_grant", err)
	}
}

func TestIntrospectionVisibility(t *testing.T) {
	s := start(t, Options{})
	ctx := ctxFor(t, s)
	cc := clientcredentials.Config{ClientID: ClientService, ClientSecret: ServiceSecret, TokenURL: s.TokenURL,
		AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(id, secret string) any {
		req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL, strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m["active"]
	}
	if got := ask(ClientService, ServiceSecret); got != true {
		t.Fatalf("own token: active = %v", got)
	}
	if got := ask(ClientResource, ResourceSecret); got != true {
		t.Fatalf("resource server: active = %v", got)
	}
	if got := ask(ClientWeb, WebSecret); got != false {
		t.Fatalf("another client sees the token: active = %v", got)
	}
}
