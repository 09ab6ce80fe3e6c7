package oauthclient

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
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
		c = new(Client) // a zero Client: every Token call fails with ErrConfig
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

// clientCredentials runs the grant, proven with key when not nil; with no
// key, a server that answers use_dpop_nonce gets a proof of newKey's key.
func (c *Client) clientCredentials(ctx context.Context, scopes, resource []string, key *dpop.Key, newKey func() (*dpop.Key, error)) (*tokenstore.Result, error) {
	if c.http == nil {
		return nil, cfgerr.New("oauthclient", "the Client was not made by New")
	}
	if c.method == AuthNone {
		return nil, policyf("client credentials need client authentication")
	}
	if scopes == nil {
		scopes = c.cfg.Scopes
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	for _, r := range resource {
		if err := checkResource(r); err != nil {
			return nil, err
		}
		form.Add("resource", r)
	}
	tr, key, err := c.tokenCall(ctx, form, key, newKey, nil)
	if err != nil {
		return nil, err
	}
	granted, err := c.checkScope(scopes, tr)
	if err != nil {
		return nil, err
	}
	if err := checkAudience(tr.token.AccessToken, resource); err != nil {
		return nil, err
	}
	tr.token.RefreshToken = "" // RFC 6749 §4.4.3: a refresh token should not be issued; never keep one
	tr.token = dpop.WithKey(tr.token, key)
	return &tokenstore.Result{Token: tr.token, Scopes: granted}, nil
}
