package oauthclient

import (
	"context"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"golang.org/x/oauth2"
)

// handle is the engine's source inside a TokenSource; embedding it lets
// the API transport (package apiclient) find the engine behind a
// TokenSource (engine.SourceOf) without an exported method.
type handle = engine.Handle

// TokenSource is the token lifecycle engine behind one login or one
// service identity, as [Client.TokenSource], [Client.ClientCredentials],
// [Client.JWTBearer], [Client.TokenExchange] and [UserPool.Source] return
// it. The access token lives only in its memory: served without a lock
// while valid, refreshed ahead of expiry by a single flight, and, for a
// user's login, each refresh is one transaction on the Store, so a refresh
// token is sent once across every goroutine, process and replica sharing
// it. It implements oauth2.TokenSource and is safe for concurrent use.
// Printing it shows no token.
type TokenSource struct {
	handle
	s *engine.Source
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

func newTokenSource(s *engine.Source) *TokenSource {
	if s == nil {
		return nil
	}
	return s.Public(func() any { return &TokenSource{engine.NewHandle(s), s} }).(*TokenSource)
}

// Token implements oauth2.TokenSource; it is TokenContext with
// context.Background.
func (s *TokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid access token. A cached token is returned
// without locking; inside the refresh margin it is still returned at once
// while one background refresh runs. An expired token makes callers wait on
// a single refresh; ctx bounds this caller's wait (the refresh itself keeps
// ctx's values, not its cancellation). After a failure every caller gets
// the same error, without a request, until the backoff ends. Errors:
// tokenstore.ErrLoginRequired (errors.Is) when a new login is needed,
// including a refresh interrupted before its outcome was stored that
// cannot be resolved; *tokenstore.TemporaryError when refreshing failed
// for a reason that may go away by itself (network, 5xx, 429, the store
// unreachable); the token endpoint's own typed error (*AuthError,
// ErrMalformedResponse, ErrIDToken, strictnet.ErrPolicy…) for a permanent
// failure; an error after Close; ctx's error.
func (s *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	return s.engine().TokenContext(ctx)
}

// Invalidate drops the cached access token if it is still t (compared in
// constant time), so the next call refreshes; a stale t that was already
// replaced changes nothing. For a token an API refused, use Rejected.
func (s *TokenSource) Invalidate(t *oauth2.Token) { s.engine().Invalidate(t) }

// Scopes returns the scopes granted as of the last record the source read
// or wrote (nil before the first refresh of a source resumed from a Store),
// or as of the last token of a service identity.
func (s *TokenSource) Scopes() []string { return s.engine().Scopes() }

// Close ends the source for a graceful shutdown or a process exit: new
// refreshes are refused (a valid cached token is still served), an
// in-flight refresh is awaited until ctx ends, and a rotation this process
// holds unsaved is written in one more transaction. It returns ctx's error
// if the wait was cut short, or the error of that last write. Close is
// idempotent.
func (s *TokenSource) Close(ctx context.Context) error { return s.engine().Close(ctx) }

func (s *TokenSource) engine() *engine.Source {
	if s == nil {
		return nil
	}
	return s.s
}

// UserPool keeps one TokenSource per user for a server with many users,
// bounded by TokenSourceConfig.MaxUsers, so memory stays flat however many
// users come and go: access tokens live only in the pooled sources'
// memory, refresh tokens only in the Store behind them. Make one with
// [Client.UserPool]. It is safe for concurrent use; for a pooled user with
// a valid access token, Source and then TokenSource.TokenContext take a
// read lock, send nothing and allocate nothing (each engine's TokenSource
// is made once).
// Printing it shows no token.
type UserPool struct {
	p *engine.Pool
}

// Source returns the pooled source for key, creating it if needed (no
// token request: the first refresh happens when a token is needed). Pass
// it to apiclient.New for one request or a few, or ask its TokenContext
// for the token; do not keep it, since the pool may drop it. A key with
// no session ("", or nothing stored) is tokenstore.ErrLoginRequired, and
// every call after Drain fails. The source's own errors are
// TokenSource's (tokenstore.ErrLoginRequired when the user must log in
// again, *tokenstore.TemporaryError).
func (p *UserPool) Source(ctx context.Context, key string) (*TokenSource, error) {
	s, err := p.pool().Source(ctx, key)
	if err != nil {
		return nil, err
	}
	return newTokenSource(s), nil
}

// Add pools src as the source of the user with store key key, replacing
// any source pooled for key: use it after a login with the source that
// Client.TokenSource returned for the login (same Store and key), so the
// login's access token is served without a refresh. A nil src does
// nothing.
func (p *UserPool) Add(key string, src *TokenSource) {
	if src == nil {
		return
	}
	p.pool().Add(key, src.engine())
}

// End ends the session of the user with store key key: it drops the
// user's source (and with it the access token), revokes (when the server
// has a revocation endpoint) and deletes the stored record, then drops any source a
// concurrent call created meanwhile.
func (p *UserPool) End(ctx context.Context, key string) error { return p.pool().End(ctx, key) }

// Drain shuts the pool down for a deploy or a graceful exit: new calls
// fail, and every pooled source is closed (refreshes in flight finish,
// unsaved rotations are flushed, leases released). It waits until ctx ends
// and returns the joined errors of the sources that could not finish. A
// second Drain waits again.
func (p *UserPool) Drain(ctx context.Context) error { return p.pool().Drain(ctx) }

// Len returns how many sources the pool holds.
func (p *UserPool) Len() int { return p.pool().Len() }

func (p *UserPool) pool() *engine.Pool {
	if p == nil {
		return nil
	}
	return p.p
}
