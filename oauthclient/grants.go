package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// Refresh redeems a refresh token at the token endpoint and returns the new
// token (with the rotated refresh token when the server rotates, otherwise
// the one given). A new ID token, when returned, is validated. An
// invalid_grant answer is an *AuthError that matches ErrLoginRequired.
//
// When the server rotated the refresh token but a check then refuses the
// response, the error is a *tokenstore.RotatedError carrying the new refresh
// token: the one given is spent and must not be used again.
//
// Refresh does not store anything: use a tokenstore-backed token source
// (see [Client.TokenSource]) so that a rotated refresh token is persisted
// before the new access token is used. Safe for concurrent use.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return c.refresh(ctx, refreshToken, "")
}

// refresh is Refresh; when subject is set, a returned ID token must name the
// same subject (OpenID Connect Core §12.2).
func (c *Client) refresh(ctx context.Context, refreshToken, subject string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: no refresh token", ErrLoginRequired)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if len(c.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(c.cfg.Scopes, " "))
	}
	tr, err := c.tokenRequest(ctx, form)
	if err != nil {
		return nil, err
	}
	// From here on the server has spent refreshToken: if a check refuses
	// the response, the rotated token must still reach the caller's store.
	refuse := func(err error) error {
		if rt := tr.token.RefreshToken; rt != "" && rt != refreshToken {
			return &tokenstore.RotatedError{RefreshToken: rt, Err: err}
		}
		return err
	}
	if _, err := c.checkScope(c.cfg.Scopes, tr); err != nil {
		return nil, refuse(err)
	}
	if tr.idToken != "" {
		id, err := c.verifyIDToken(ctx, tr.idToken, validate.IDTokenCheck{AccessToken: tr.token.AccessToken})
		if err != nil {
			return nil, refuse(err)
		}
		if subject != "" && id.Subject != subject {
			return nil, refuse(fmt.Errorf("%w: %w: the refreshed ID token names another subject", ErrIDToken, validate.ErrSubject))
		}
	}
	if tr.token.RefreshToken == "" {
		tr.token.RefreshToken = refreshToken
	}
	return tr.token, nil
}

// ClientCredentialsOptions are per-call settings of the client credentials grant.
type ClientCredentialsOptions struct {
	// Scopes requested; nil means Config.Scopes.
	Scopes []string
	// Resource lists RFC 8707 resource indicators; nil means none.
	Resource []string
}

// ClientCredentials runs the client credentials grant once (no caching; see
// the cached token source for services). Safe for concurrent use.
func (c *Client) ClientCredentials(ctx context.Context, opts ClientCredentialsOptions) (*oauth2.Token, error) {
	if c.method == AuthNone {
		return nil, policyf("client credentials need client authentication")
	}
	scopes := opts.Scopes
	if scopes == nil {
		scopes = c.cfg.Scopes
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	for _, r := range opts.Resource {
		form.Add("resource", r)
	}
	tr, err := c.tokenRequest(ctx, form)
	if err != nil {
		return nil, err
	}
	if _, err := c.checkScope(scopes, tr); err != nil {
		return nil, err
	}
	tr.token.RefreshToken = "" // RFC 6749 §4.4.3: a refresh token should not be issued; never keep one
	return tr.token, nil
}

// TokenTypeHint values for [Client.Revoke] (RFC 7009 §2.1).
const (
	HintAccessToken  = "access_token"
	HintRefreshToken = "refresh_token"
)

// ErrNoRevocation is returned by Revoke when the server has no revocation endpoint.
var ErrNoRevocation = errors.New("oauthclient: server offers no revocation endpoint")

// Revoke revokes a token at the server (RFC 7009) with the given
// token_type_hint ("" for none). Per RFC 7009 §2.2, an unknown or already
// invalid token is success. Safe for concurrent use.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	if c.md.RevocationEndpoint == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	u := c.endpointURL("revocation_endpoint", c.md.RevocationEndpoint)
	resp, body, err := c.postForm(ctx, "revocation", u, form)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		return nil // RFC 7009 §2.2: the body carries nothing of interest
	}
	_, err = successObject("revocation", resp.StatusCode, body)
	return c.withResponse(err, form, resp, body)
}
