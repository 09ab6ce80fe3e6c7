package oauthclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// assertionType is the typ header of client assertions
// (draft-ietf-oauth-rfc7523bis: explicit typing prevents cross-JWT confusion).
const assertionType = "client-authentication+jwt"

// authenticate adds the client's credentials to a request to a server
// endpoint, using exactly the one configured method (S17).
func (c *Client) authenticate(ctx context.Context, form url.Values, h http.Header) error {
	switch c.method {
	case authNone, authTLSClientAuth:
		form.Set("client_id", c.cfg.ClientID)
	case authClientSecretBasic:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		req := http.Request{Header: h}
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret.Reveal()))
	case authClientSecretPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret.Reveal())
	case authPrivateKeyJWT:
		a, err := c.clientAssertion(ctx)
		if err != nil {
			return err
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a.Reveal())
	default:
		return cfgerr.New("oauthclient", "unknown client authentication method %q", safetext.Clean(string(c.method), 64))
	}
	return nil
}

// clientAssertion is the private_key_jwt assertion of one request: from
// Config.ClientAssertion, or signed with Config.PrivateKey (S16: aud the
// issuer as a single string, a uuid jti, 60 s, typ
// client-authentication+jwt). An assertion whose exp has passed is
// refused here, before anything is sent (S31): what the source returns is
// parsed at once (an empty or malformed one matches assertion.ErrSource)
// and kept only as a JWT, which redacts itself.
func (c *Client) clientAssertion(ctx context.Context) (jwtassert.JWT, error) {
	src := c.cfg.ClientAssertion
	if src == nil {
		src = signedAssertion{
			Key: c.cfg.PrivateKey, KeyID: c.cfg.KeyID,
			Issuer: c.cfg.ClientID, Subject: c.cfg.ClientID,
			Type: assertionType, Now: c.cfg.Now,
		}
	}
	raw, err := src.Assertion(ctx, c.cfg.Issuer)
	if err != nil {
		return jwtassert.JWT{}, fmt.Errorf("oauthclient: client assertion: %w", err)
	}
	a, err := jwtassert.Parse(raw, c.cfg.Now())
	if err != nil {
		return jwtassert.JWT{}, fmt.Errorf("oauthclient: client assertion: %w", err)
	}
	return a, nil
}
