package oauthtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func ctxFor(t *testing.T, s *Server) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return context.WithValue(ctx, oauth2.HTTPClient, s.HTTPClient())
}

func oauthConfig(s *Server, id, secret string, style oauth2.AuthStyle, redirect string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     id,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{AuthURL: s.AuthURL, TokenURL: s.TokenURL, DeviceAuthURL: s.DeviceURL, AuthStyle: style},
		RedirectURL:  redirect,
		Scopes:       scopes,
	}
}

func getJSON(t *testing.T, c *http.Client, u string) map[string]any {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", u, err)
	}
	return m
}

func TestDiscoveryOverTLS(t *testing.T) {
	s := start(t, Options{})
	if !strings.HasPrefix(s.Issuer, "https://127.0.0.1:") || strings.HasSuffix(s.Issuer, "/") {
		t.Fatalf("issuer %q", s.Issuer)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		doc := getJSON(t, s.HTTPClient(), s.Issuer+path)
		want := map[string]any{
			"issuer":                        s.Issuer,
			"authorization_endpoint":        s.AuthURL,
			"token_endpoint":                s.TokenURL,
			"jwks_uri":                      s.JWKSURL,
			"userinfo_endpoint":             s.UserinfoURL,
			"revocation_endpoint":           s.RevocationURL,
			"introspection_endpoint":        s.IntrospectionURL,
			"device_authorization_endpoint": s.DeviceURL,
			"authorization_response_iss_parameter_supported": true,
		}
		for k, v := range want {
			if doc[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, doc[k], v)
			}
		}
		for k, v := range map[string]string{
			"code_challenge_methods_supported": "[S256]",
			"response_types_supported":         "[code]",
		} {
			got, _ := json.Marshal(doc[k])
			if strings.ReplaceAll(strings.Trim(string(got), "[]"), `"`, "") != strings.Trim(v, "[]") {
				t.Errorf("%s: %s = %s, want %s", path, k, got, v)
			}
		}
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "revocation_endpoint", "introspection_endpoint", "device_authorization_endpoint"} {
			if v, _ := doc[k].(string); !strings.HasPrefix(v, "https://") {
				t.Errorf("%s is not https: %q", k, v)
			}
		}
	}
}

func TestUntrustedClientRefused(t *testing.T) {
	s := start(t, Options{})
	cases := map[string]*http.Client{
		"system roots": {Transport: &http.Transport{}},
		"other CA": func() *http.Client {
			other := start(t, Options{})
			return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.RootCAs()}}}
		}(),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.Get(s.Issuer + "/.well-known/openid-configuration")
			var uerr x509.UnknownAuthorityError
			if err == nil || !errors.As(err, &uerr) {
				t.Fatalf("err = %v, want unknown authority", err)
			}
		})
	}
	// And the right CA works, including for "localhost".
	u := strings.Replace(s.Issuer, "127.0.0.1", "localhost", 1)
	getJSON(t, s.HTTPClient(), u+"/.well-known/openid-configuration")
}

// codeFlow runs authorize -> Login -> checks -> exchange and returns the
// token plus the callback parameters.
func codeFlow(t *testing.T, s *Server, cfg *oauth2.Config, user string, scopes ...string) *oauth2.Token {
	t.Helper()
	ctx := ctxFor(t, s)
	verifier := oauth2.GenerateVerifier()
	state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	cb, err := s.Login(ctx, authURL, user)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; !strings.HasPrefix(cfg.RedirectURL, "http://127.0.0.1/") && got != cfg.RedirectURL {
		t.Fatalf("callback %q does not go to %q", got, cfg.RedirectURL)
	}
	if q.Get("state") != state {
		t.Fatalf("state not echoed")
	}
	if q.Get("iss") != s.Issuer {
		t.Fatalf("iss = %q, want %q", q.Get("iss"), s.Issuer)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in callback")
	}
	before := s.TokenRequests("authorization_code")
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if got := s.TokenRequests("authorization_code") - before; got != 1 {
		t.Fatalf("authorization_code requests = %d, want 1", got)
	}
	// The ID token is valid for this client, with the nonce.
	provider, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce mismatch")
	}
	if idt.Subject != Subject(user) {
		t.Fatalf("sub = %q, want %q", idt.Subject, Subject(user))
	}
	// A code works once.
	if _, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("second exchange: err = %v, want invalid_grant", err)
	}
	return tok
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestCodeFlow(t *testing.T) {
	s := start(t, Options{RedirectURIs: []string{"http://127.0.0.1:5555/cb"}})
	scopes := []string{"openid", "profile", "email", "offline_access", ScopeAPIRead}
	cases := []struct {
		name string
		cfg  *oauth2.Config
		user string
	}{
		{"web basic", oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, "http://127.0.0.1:5555/cb", scopes...), UserAlice},
		{"web post", oauthConfig(s, ClientWebPost, WebPostSecret, oauth2.AuthStyleInParams, WebRedirectURI, scopes...), UserBob},
		{"native any port", oauthConfig(s, ClientNative, "", oauth2.AuthStyleInParams, "http://127.0.0.1:49152/callback", scopes...), UserAlice},
		{"web jwt access", oauthConfig(s, ClientWebJWTAccess, WebJWTAccessSecret, oauth2.AuthStyleInHeader, WebRedirectURI, scopes...), UserBob},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := codeFlow(t, s, tc.cfg, tc.user)
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token for offline_access")
			}
			if tok.TokenType != "Bearer" {
				t.Fatalf("token_type %q", tok.TokenType)
			}
			// Userinfo accepts the access token.
			req, _ := http.NewRequest(http.MethodGet, s.UserinfoURL, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := s.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var ui map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&ui)
			resp.Body.Close()
			if resp.StatusCode != 200 || ui["sub"] != Subject(tc.user) || ui["email"] == nil {
				t.Fatalf("userinfo: status %d, %v", resp.StatusCode, ui)
			}
		})
	}
}
