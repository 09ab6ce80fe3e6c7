package oauthclient

import (
	"context"
	"slices"
	"sync"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// ServiceTokenSource returns a cached client-credentials token source for
// services (no user, tokens in memory only), with the given scopes (nil
// means Config.Scopes) and RFC 8707 resource indicators, authenticating
// with the client's one method (S17). It is the lifecycle engine
// ([tokenstore.Source]) that user tokens use, with no Store: the token is
// read lock-free, refreshed ahead of expiry by one background request,
// callers without a usable token wait on one shared request (bounded by
// their context with TokenContext), and failures back off exponentially
// with jitter, also for waiting callers. Each request is bounded by the
// client's HTTP timeout. Nothing is fetched until the first Token call.
// The returned *oauth2.Token is shared by all callers: do not modify it.
// Safe for concurrent use.
//
// With DPoP (Config.DPoP, metadata asking for it, or a token endpoint that
// answers use_dpop_nonce) the source makes one key on its first request
// and proves every token request with it for its whole lifetime; each
// token carries it, so the API transport proves possession by itself. The
// key lives in memory only, as the tokens do.
func (c *Client) ServiceTokenSource(opts ClientCredentialsOptions) *tokenstore.Source {
	opts.Scopes = slices.Clone(opts.Scopes)
	opts.Resource = slices.Clone(opts.Resource)
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
			res, err := c.clientCredentials(ctx, opts, k, key)
			return res, fetchError(err)
		},
		Now:            c.cfg.Now,
		RefreshTimeout: timeout,
	}, nil)
	return s
}
