package oauthclient

import (
	"context"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
)

func init() {
	hook.ClientCredentials = func(c any, scopes, resource []string, noDPoP bool) *engine.Source {
		return c.(*Client).clientCredentialsSource(scopes, resource, noDPoP)
	}
}

// serviceSource is clientcredentials.NewSource with its default options.
func (c *Client) serviceSource(scopes, resource []string) *engine.Source {
	return c.clientCredentialsSource(scopes, resource, false)
}

// clientCredentialsSource is clientcredentials.NewSource: the lifecycle
// engine with no Store over the client credentials grant (machine.go),
// proven with one DPoP key for the source's lifetime when DPoP is on.
func (c *Client) clientCredentialsSource(scopes, resource []string, noDPoP bool) *engine.Source {
	if c == nil {
		c = new(Client) // a zero Client: every Token call fails with ErrConfig
	}
	if scopes == nil {
		scopes = c.cfg.Scopes
	}
	return c.grantSource(grant{
		Grant: hook.Grant{
			Params: func(context.Context, string) (url.Values, error) {
				return url.Values{"grant_type": {"client_credentials"}}, nil
			},
			Scopes: scopes, Resource: resource, NoDPoP: noDPoP,
		},
		needsAuth: true,
	})
}
