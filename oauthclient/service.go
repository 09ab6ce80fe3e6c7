package oauthclient

import (
	"context"
	"slices"

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
func (c *Client) ServiceTokenSource(opts ClientCredentialsOptions) *tokenstore.Source {
	opts.Scopes = slices.Clone(opts.Scopes)
	opts.Resource = slices.Clone(opts.Resource)
	timeout := DefaultTimeout
	if c.http != nil && c.http.Timeout > 0 {
		timeout = c.http.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// NewSource fails only without Fetch or with a negative duration.
	s, _ := tokenstore.NewSource(tokenstore.SourceConfig{
		Fetch: func(ctx context.Context, _ *tokenstore.Refresh) (*tokenstore.Result, error) {
			return c.clientCredentials(ctx, opts)
		},
		Now:            c.cfg.Now,
		RefreshTimeout: timeout,
	}, nil)
	return s
}
