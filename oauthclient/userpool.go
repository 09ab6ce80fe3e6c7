package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// UserPool returns a bounded pool of per-user lifecycle engines for a web
// backend that calls an API on behalf of many users.
// Records live in cfg.Store, keyed by store key (usually
// tokenstore.Key(issuer, client id, subject)); access tokens live only in
// the pool's memory.
//
//   - After a login: src, err := c.TokenSource(ctx,
//     TokenSourceConfig{Store: cfg.Store, Key: key}, tokens) writes the
//     record, then pool.Add(key, src) serves the login's access token.
//   - On a request: pool.Source(ctx, key) gets the user's engine, or
//     creates it resumed from the store (as TokenSource with a nil login:
//     one read of the record, no token request until a token is needed,
//     refreshed ID tokens must name the stored subject); pass it to
//     apiclient (Transport.Client). An empty key (a visitor with no
//     session) or a key with no record in the store (never signed in,
//     logged out, or deleted after invalid_grant) is an error matching
//     tokenstore.ErrLoginRequired: send the visitor to your login.
//   - On logout: pool.End(ctx, key) drops the engine, revokes the refresh
//     token at the server (RFC 7009; skipped when the server has no
//     revocation endpoint) and deletes the record, in one store
//     transaction; a failed revocation still deletes the record and
//     returns an error matching tokenstore.ErrRevocationFailed.
//
// Every refresh of a user is one transaction on cfg.Store, so a refresh
// token is sent once across every replica sharing it. On shutdown call the
// pool's Drain: refreshes in flight finish and rotations whose write failed
// are flushed before the process exits. UserPool does no
// I/O; it returns an error matching oauthsafe.ErrConfig when cfg.Store is
// nil, cfg.Key is set (each user's key is given to the pool's methods) or
// a number is negative. Every other field of cfg applies to each user's
// engine as it does to [Client.TokenSource]'s; MaxUsers bounds the pool.
// The pool is safe for concurrent use.
func (c *Client) UserPool(cfg TokenSourceConfig) (*UserPool, error) {
	if cfg.Store == nil {
		return nil, cfgerr.New("oauthclient", "UserPool needs TokenSourceConfig.Store")
	}
	if cfg.Key != "" {
		return nil, cfgerr.New("oauthclient", "UserPool takes each user's key in its methods, not TokenSourceConfig.Key")
	}
	if cfg.MaxUsers < 0 || cfg.Margin < 0 || cfg.ReuseGrace < 0 {
		return nil, cfgerr.New("oauthclient", "negative TokenSourceConfig.MaxUsers, Margin or ReuseGrace for UserPool")
	}
	st := cfg.Store
	cfg.Resource, cfg.Scopes = slices.Clone(cfg.Resource), slices.Clone(cfg.Scopes)
	for _, r := range cfg.Resource {
		if err := checkResource(r); err != nil {
			return nil, err
		}
	}
	p, err := engine.NewPool(engine.PoolConfig{
		New: func(ctx context.Context, key string) (*engine.Source, error) {
			if err := knownUser(ctx, st, key); err != nil {
				return nil, err
			}
			user := cfg
			user.Key = key
			src, err := c.TokenSource(ctx, user, nil)
			return src.engine(), err
		},
		End: func(ctx context.Context, key string) error {
			lc := tokenstore.LogoutConfig{Store: st, Key: key}
			if c.md.RevocationEndpoint != "" {
				lc.Revoke = func(ctx context.Context, rt string) error { return c.Revoke(ctx, rt, "refresh_token") }
			}
			return tokenstore.Logout(ctx, lc)
		},
		MaxSources: cfg.MaxUsers,
	})
	if err != nil {
		return nil, err
	}
	return &UserPool{p}, nil
}

var (
	errNoUserKey   = fmt.Errorf("oauthclient: UserPool: no store key (nobody is signed in in this session): %w", tokenstore.ErrLoginRequired)
	errUnknownUser = fmt.Errorf("oauthclient: UserPool: no record for this store key (never signed in, or signed out): %w", tokenstore.ErrLoginRequired)
)

// knownUser refuses a key that cannot name a signed-in user: an empty one,
// or one the store has no record for. Any other failure to read is left to
// the engine, which reports a store outage as a *tokenstore.TemporaryError
// when a token is needed.
func knownUser(ctx context.Context, st tokenstore.Store, key string) error {
	if key == "" {
		return errNoUserKey
	}
	if _, err := st.Get(ctx, key); errors.Is(err, tokenstore.ErrNotFound) {
		return errUnknownUser
	}
	return nil
}
