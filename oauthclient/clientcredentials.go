package oauthclient

import (
	"context"
	"net/url"
)

// serviceSource is ClientCredentials with its default options.
func (c *Client) serviceSource(scopes, resource []string) *TokenSource {
	return c.clientCredentialsSource(scopes, resource, false)
}

// clientCredentialsSource is ClientCredentials: the lifecycle
// engine with no Store over the client credentials grant (machine.go),
// proven with one DPoP key for the source's lifetime when DPoP is on.
func (c *Client) clientCredentialsSource(scopes, resource []string, noDPoP bool) *TokenSource {
	if c == nil {
		c = new(Client) // a zero Client: every Token call fails with ErrConfig
	}
	if scopes == nil {
		scopes = c.cfg.Scopes
	}
	return c.grantSource(grant{
		grantSpec: grantSpec{
			Params: func(context.Context, string) (url.Values, error) {
				return url.Values{"grant_type": {"client_credentials"}}, nil
			},
			Scopes: scopes, Resource: resource, NoDPoP: noDPoP,
		},
		needsAuth: true,
	})
}
