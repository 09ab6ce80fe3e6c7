package oauthclient

import (
	"context"
	"slices"
	"sync"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func init() {
	hook.ClientCredentials = func(c any, scopes, resource []string) *tokenstore.Source {
		return c.(*Client).serviceSource(scopes, resource)
	}
}

// serviceSource is clientcredentials.NewSource: the lifecycle engine with
// no Store over the client credentials grant, proven with one DPoP key for
// the source's lifetime when DPoP is on.
func (c *Client) serviceSource(scopes, resource []string) *tokenstore.Source {
	if c == nil {
		c = new(Client) // fails every Token call with ErrConfig, as a zero Client does
	}
	scopes, resource = slices.Clone(scopes), slices.Clone(resource)
	timeout := strictnet.DefaultTimeout
	if c.http != nil && c.http.Timeout > 0 {
		timeout = c.http.Timeout
	}
	if timeout <= 0 {
		timeout = strictnet.DefaultTimeout
	}
	key := sync.OnceValues(dpop.NewKey) // one key for the source's lifetime
	// NewSource fails only without Fetch or with a negative duration.
	s, _ := tokenstore.NewSource(tokenstore.SourceConfig{
		Fetch: func(ctx context.Context, _ *tokenstore.Refresh) (*tokenstore.Result, error) {
			var k *dpop.Key
			if c.dpopOn() {
				var err error
				if k, err = key(); err != nil {
					return nil, err
				}
			}
			res, err := c.clientCredentials(ctx, scopes, resource, k, key)
			return res, fetchError(err)
		},
		Now:            c.cfg.Now,
		RefreshTimeout: timeout,
	}, nil)
	return s
}
