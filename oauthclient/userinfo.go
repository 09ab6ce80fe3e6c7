package oauthclient

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/claims"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/validate"
)

// UserInfo fetches the OpenID Connect userinfo of a login with its access
// token and checks that its sub equals the verified ID token's sub (a
// mismatch is a *validate.ClaimError for "sub"). Only JSON userinfo responses are
// accepted. A DPoP-bound login sends "Authorization: DPoP" with a fresh
// proof of its key (RFC 9449 §7), and a 401 use_dpop_nonce with a valid
// DPoP-Nonce is retried exactly once with it; a bad DPoP-Nonce matches
// ErrDPoP. Safe for concurrent use.
func (c *Client) UserInfo(ctx context.Context, toks *Tokens) (validate.StandardClaims, error) {
	if c.md.UserinfoEndpoint == "" {
		return validate.StandardClaims{}, fmt.Errorf("%w: userinfo", ErrNoEndpoint)
	}
	if toks == nil || toks.IDToken() == nil {
		return validate.StandardClaims{}, fmt.Errorf("%w: userinfo needs a login with a verified ID token", ErrIDToken)
	}
	u := c.endpointURL("userinfo_endpoint", c.md.UserinfoEndpoint)
	pu, err := url.Parse(u)
	if err != nil {
		return validate.StandardClaims{}, policyf("userinfo endpoint is not a URL")
	}
	key := toks.dpop
	if toks.OAuth2Token().TokenType != "DPoP" {
		key = nil
	}
	resp, body, err := c.getUserInfo(ctx, u, pu, toks.OAuth2Token().AccessToken, key)
	if err != nil {
		return validate.StandardClaims{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return validate.StandardClaims{}, &AuthError{Endpoint: "userinfo", StatusCode: resp.StatusCode, Problem: "unexpected status"}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return validate.StandardClaims{}, &AuthError{Endpoint: "userinfo", StatusCode: resp.StatusCode, Problem: "not a JSON response"}
	}
	std, err := claims.ParseStandard(body)
	if err != nil {
		return validate.StandardClaims{}, &AuthError{Endpoint: "userinfo", StatusCode: resp.StatusCode, Problem: "body is not a JSON object"}
	}
	if err := checkUserInfoSubject(toks.IDToken(), std.Subject); err != nil {
		return validate.StandardClaims{}, err
	}
	return validate.StandardClaims(std), nil
}

// getUserInfo GETs the userinfo endpoint u (parsed: pu) with the access
// token at, as Bearer, or with key as DPoP: then a 401 use_dpop_nonce with
// a DPoP-Nonce is retried once with that nonce.
func (c *Client) getUserInfo(ctx context.Context, u string, pu *url.URL, at string, key *dpop.Key) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := c.userInfoRequest(ctx, u, pu, at, key)
		if err != nil {
			return nil, nil, err
		}
		resp, body, err := do(ctx, c.http, req, "userinfo")
		if err != nil {
			return nil, nil, err
		}
		if key == nil {
			return resp, body, nil
		}
		nerr := c.nonces.Update(pu, resp.Header)
		if code, _ := dpop.Challenge(resp.Header); attempt > 0 || resp.StatusCode != http.StatusUnauthorized || code != "use_dpop_nonce" {
			return resp, body, nil
		}
		if nerr != nil {
			return nil, nil, nerr
		}
		if resp.Header.Get("Dpop-Nonce") == "" {
			return resp, body, nil
		}
	}
}

// userInfoRequest is one userinfo request: the access token as Bearer, or
// as DPoP with a fresh proof of key (and the server's last nonce).
func (c *Client) userInfoRequest(ctx context.Context, u string, pu *url.URL, at string, key *dpop.Key) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if key == nil {
		req.Header.Set("Authorization", "Bearer "+at)
		return req, nil
	}
	p, err := key.Proof(http.MethodGet, pu, dpop.AccessTokenHash(at), c.nonces.Get(pu), c.cfg.Now())
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "DPoP "+at)
	req.Header.Set("DPoP", p)
	return req, nil
}

// checkUserInfoSubject checks that a UserInfo response's "sub" equals the
// verified ID token's (OIDC Core §5.3.2). A nil token or an empty sub is
// refused. The error is a *validate.ClaimError for "sub".
func checkUserInfoSubject(idToken *validate.IDToken, userinfoSub string) error {
	switch {
	case idToken == nil || idToken.Subject == "":
		return &validate.ClaimError{Claim: "sub", Reason: "no verified ID token subject"}
	case userinfoSub == "":
		return &validate.ClaimError{Claim: "sub", Missing: true, Reason: "userinfo has no sub"}
	case userinfoSub != idToken.Subject:
		return &validate.ClaimError{Claim: "sub", Reason: "userinfo sub differs from the ID token's"}
	}
	return nil
}

// Introspector returns an access token verifier for opaque access tokens
// (validate.NewIntrospector, RFC 7662), authenticated as this client with
// its one method, over the strict HTTP client, checking iss against the
// issuer. cfg may set Audience, ClientID, caching and Leeway; its Endpoint,
// HTTPClient, Authenticate, Issuer and Now are filled in. Safe for
// concurrent use.
func (c *Client) Introspector(cfg validate.IntrospectionConfig) (*validate.AccessTokenVerifier, error) {
	if c.md.IntrospectionEndpoint == "" {
		return nil, fmt.Errorf("%w: introspection", ErrNoEndpoint)
	}
	cfg.Endpoint = c.endpointURL("introspection_endpoint", c.md.IntrospectionEndpoint)
	cfg.HTTPClient = c.http
	cfg.Authenticate = func(req *http.Request, form url.Values) error { return c.authenticate(req.Context(), form, req.Header) }
	cfg.Issuer = c.cfg.Issuer
	cfg.Now = c.cfg.Now
	return validate.NewIntrospector(cfg)
}
