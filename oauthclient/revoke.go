package oauthclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// This file is token revocation (RFC 7009).

// Revoke revokes a token at the server (RFC 7009) with the given
// token_type_hint (RFC 7009 §2.1): "access_token", "refresh_token", or ""
// for none. Per RFC 7009 §2.2, an unknown or already
// invalid token is success. Safe for concurrent use.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	if c.md.RevocationEndpoint == "" {
		return fmt.Errorf("%w: revocation", ErrNoEndpoint)
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
