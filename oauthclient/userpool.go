package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// UserPoolConfig configures [Client.UserPool]. Zero values are documented
// per field.
type UserPoolConfig struct {
	// Store is the vault holding every user's record (refresh token,
	// subject, granted scopes): a *sqlstore.Store (package
	// tokenstore/sqlstore) for a web backend. Required.
	Store tokenstore.Store
	// MaxUsers bounds how many users' engines, and so access tokens, the
	// pool keeps in memory; past it the least recently used is dropped
	// and resumes from Store on its next use. Zero means 10,000.
	MaxUsers int
	// Margin is each engine's refresh-ahead margin. 0 means 60 s.
	Margin time.Duration
	// Resource lists the RFC 8707 resource indicators every user's
	// refresh is sent for. nil means the resources each user's login was
	// started with, as kept in the record.
	Resource []string
	// Scopes narrows every refresh to a subset of the user's granted
	// scopes (see TokenSourceConfig.Scopes). nil sends none: as granted.
	Scopes []string
	// OnRecordChange is called with each changed record of any user,
	// inside its refresh transaction: see TokenSourceConfig. nil means
	// none.
	OnRecordChange func(ctx context.Context, rec *tokenstore.Record) error
	// ReuseGrace is the provider's refresh-token reuse grace period:
	// see TokenSourceConfig.ReuseGrace. Zero means none.
	ReuseGrace time.Duration
	// ResolveMarkersByIntrospection resolves a refresh interrupted before
	// its outcome was stored (a process killed between marking the record
	// and sending the request, a connection that failed on the way) by
	// asking the provider whether the stored refresh token is still active,
	// through its introspection endpoint (RFC 7662, authenticated as this
	// client), instead of reporting an error matching
	// tokenstore.ErrLoginRequired: active, the user keeps working;
	// inactive, that error. See
	// TokenSourceConfig.ResolveMarkersByIntrospection. Ignored when
	// the provider's metadata names no introspection endpoint. False (the
	// default) never asks.
	//
	// WARNING: turn it on only for a provider known to report a spent
	// (rotated) refresh token as inactive to the client it was issued to,
	// without counting the introspection as a use. A provider that
	// reported a spent token as active would have it sent again, and its
	// reuse detection would revoke the whole grant. Known to answer
	// correctly: this project's test provider (package oauthtest).
	ResolveMarkersByIntrospection bool
	// Logger, if not nil, gets one redacted event per refresh of any
	// user (see TokenSourceConfig.Logger).
	Logger *slog.Logger
}

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
// nil or a number is negative. The pool is safe
// for concurrent use.
func (c *Client) UserPool(cfg UserPoolConfig) (*UserPool, error) {
	if cfg.Store == nil {
		return nil, cfgerr.New("oauthclient", "UserPoolConfig.Store is required")
	}
	if cfg.MaxUsers < 0 || cfg.Margin < 0 || cfg.ReuseGrace < 0 {
		return nil, cfgerr.New("oauthclient", "negative UserPoolConfig.MaxUsers or Margin")
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
			src, err := c.TokenSource(ctx, TokenSourceConfig{Store: st, Key: key, Margin: cfg.Margin,
				Resource: cfg.Resource, Scopes: cfg.Scopes, OnRecordChange: cfg.OnRecordChange,
				ReuseGrace: cfg.ReuseGrace, ResolveMarkersByIntrospection: cfg.ResolveMarkersByIntrospection,
				Logger: cfg.Logger}, nil)
			return src.engine(), err
		},
		End: func(ctx context.Context, key string) error {
			lc := tokenstore.LogoutConfig{Store: st, Key: key}
			if c.md.RevocationEndpoint != "" {
				lc.Revoke = func(ctx context.Context, rt string) error { return c.Revoke(ctx, rt, HintRefreshToken) }
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
