package oauthclient

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/validate"
)

// Exchange completes an authorization-code flow with the parameters of the
// redirect (the query, or the form of a form_post response). It checks, in
// this order, and stops at the first failure without calling the token
// endpoint:
//
//  1. the state, in constant time, and that the flow has not expired
//     (ErrStateMismatch, ErrFlowExpired);
//  2. an error parameter, returned as *AuthError with its code;
//  3. iss per RFC 9207: when present it must equal the issuer exactly, and
//     it is required when the server advertises it (ErrIssuerMismatch).
//
// Only then does it redeem the code with the PKCE verifier, using the one
// configured client authentication method, refuse an unknown token_type,
// check the granted scope against the requested one, and (for OpenID
// Connect) validate the ID token, nonce included. Exchange is safe for
// concurrent use; the caller must make a Pending single-use (the callback
// package deletes its cookie).
//
// A flow started with DPoP redeems the code with a proof of its key; the
// answer must then be token_type DPoP (or Bearer with
// Config.AllowBearerDowngrade), and the Tokens carry the key. A flow
// started with resource indicators sends them again, and a JWT access
// token (typ at+jwt) whose aud names none of them is refused (strictnet.ErrPolicy).
func (c *Client) Exchange(ctx context.Context, p *Pending, params url.Values) (*Tokens, error) {
	code, err := c.checkRedirectParams(p, params)
	if err != nil {
		return nil, err
	}
	tr, key, err := c.redeemCode(ctx, p, code)
	if err != nil {
		return nil, err
	}
	scopes, err := c.checkScope(p.p.Scopes, tr)
	if err != nil {
		return nil, err
	}
	if err := checkAudience(tr.token.AccessToken, p.p.Resource); err != nil {
		return nil, err
	}
	out := &Tokens{tok: tr.token, rawID: tr.idToken, scopes: scopes, resources: slices.Clone(p.p.Resource)}
	out.tok, out.dpop = dpop.WithKey(tr.token, key), key
	if p.p.Nonce != "" { // an OpenID Connect flow: an ID token is required (S5, S8)
		if out.idToken, err = c.checkLoginIDToken(ctx, p, tr, code); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkRedirectParams runs Exchange's checks of the redirect, in order
// (state and expiry, error parameter, iss), and returns the code.
func (c *Client) checkRedirectParams(p *Pending, params url.Values) (string, error) {
	if p == nil {
		return "", ErrStateMismatch
	}
	states := params["state"]
	if len(states) != 1 || subtle.ConstantTimeCompare([]byte(states[0]), []byte(p.p.State)) != 1 {
		return "", ErrStateMismatch
	}
	if !c.cfg.Now().Before(p.p.Expires) {
		return "", ErrFlowExpired
	}
	if p.p.Issuer != c.cfg.Issuer || p.p.ClientID != c.cfg.ClientID {
		return "", fmt.Errorf("%w: flow was started for another issuer or client", ErrIssuerMismatch)
	}
	if errs, ok := params["error"]; ok {
		return "", c.redirectError(p, errs, params)
	}
	if err := c.checkRedirectIss(params); err != nil {
		return "", err
	}
	codes := params["code"]
	if len(codes) != 1 || codes[0] == "" {
		return "", fmt.Errorf("%w: %w", ErrMalformedResponse, errMissingCode)
	}
	return codes[0], nil
}

// redirectError is the *AuthError of a redirect carrying an error
// parameter, scrubbed of the flow's secrets.
func (c *Client) redirectError(p *Pending, errs []string, params url.Values) *AuthError {
	ae := &AuthError{Endpoint: "authorization"}
	if len(errs) > 0 {
		ae.Code = errs[0]
	}
	ae.Description = params.Get("error_description")
	ae.URI = params.Get("error_uri")
	// The authorization request carried the state and the nonce.
	ae.scrub(nil, c.cfg.ClientSecret, p.p.State, p.p.Nonce, p.p.Verifier)
	return ae
}

// checkRedirectIss checks the redirect's iss (RFC 9207): when present it
// must equal the issuer, and it is required when the server advertises it.
func (c *Client) checkRedirectIss(params url.Values) error {
	if isses, ok := params["iss"]; ok {
		if len(isses) != 1 || isses[0] != c.cfg.Issuer {
			named := ""
			if len(isses) == 1 {
				named = isses[0]
			}
			return newIssuerMismatch("callback", named, c.cfg.Issuer)
		}
	} else if c.md.AuthorizationResponseIssParameter {
		return fmt.Errorf("%w: authorization response has no iss although the server advertises it", ErrIssuerMismatch)
	}
	return nil
}

// redeemCode calls the token endpoint with the code, the PKCE verifier and
// the flow's resource indicators, proving the flow's DPoP key if any.
func (c *Client) redeemCode(ctx context.Context, p *Pending, code string) (*tokenResponse, *dpop.Key, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.p.Redirect},
		"code_verifier": {p.p.Verifier},
	}
	for _, r := range p.p.Resource {
		form.Add("resource", r)
	}
	return c.tokenCall(ctx, form, p.dpop, dpop.NewKey, nil)
}

// checkLoginIDToken requires and verifies the ID token of an OpenID Connect
// flow (nonce, at_hash, c_hash), and its auth_time when max_age was sent.
func (c *Client) checkLoginIDToken(ctx context.Context, p *Pending, tr *tokenResponse, code string) (*validate.IDToken, error) {
	if tr.idToken == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrIDToken)
	}
	id, err := c.verifyIDToken(ctx, tr.idToken, validate.IDTokenCheck{
		Nonce: p.p.Nonce, AccessToken: tr.token.AccessToken, Code: code,
	})
	if err != nil {
		return nil, err
	}
	if p.p.MaxAge != nil {
		if err := c.checkAuthTime(id, *p.p.MaxAge); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// checkAuthTime enforces max_age (OIDC Core 3.1.3.7 item 13): auth_time is
// required and no older than max_age seconds plus the leeway.
func (c *Client) checkAuthTime(id *validate.IDToken, maxAge int64) error {
	if id.AuthTime.IsZero() {
		return fmt.Errorf("%w: %w: max_age was sent but the ID token has no auth_time", ErrIDToken, errAuthTime)
	}
	limit := time.Duration(maxAge)*time.Second + c.cfg.Leeway
	if c.cfg.Now().Round(0).Sub(id.AuthTime) > limit {
		return fmt.Errorf("%w: %w: the login is older than max_age", ErrIDToken, errAuthTime)
	}
	return nil
}

func (c *Client) verifyIDToken(ctx context.Context, raw string, chk validate.IDTokenCheck) (*validate.IDToken, error) {
	if c.verifier == nil {
		return nil, fmt.Errorf("%w: server metadata has no jwks_uri", ErrIDToken)
	}
	t, err := c.verifier.Verify(ctx, raw, chk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIDToken, err)
	}
	return t, nil
}
