package oauthclient

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// ServiceRefreshAhead is how long before expiry a [ServiceSource] starts
// fetching the next token in the background (at most half the token's
// lifetime, for short-lived tokens).
const ServiceRefreshAhead = 60 * time.Second

// serviceRetryAfter spaces background refresh attempts after a failure, so
// that a server outage does not turn every Token call into a request.
const serviceRetryAfter = 2 * time.Second

// ServiceSource is a client-credentials token source for services (no user,
// tokens in memory only). It implements oauth2.TokenSource and [Invalidator].
//
//   - The token is cached in memory; reading it is one atomic load and one
//     clock read, with no lock.
//   - From ServiceRefreshAhead before expiry, callers still get the cached
//     token at once while one background request fetches the next one, so
//     no caller waits on a refresh while the token is valid.
//   - When there is no usable token (first call, expired, invalidated), all
//     callers wait on a single shared request: N concurrent callers cause
//     one token request.
//   - A failed request is reported to the callers waiting on it; it is not
//     cached, and a later call tries again.
//
// The shared request runs with its own context, bounded by the client's
// HTTP timeout, so one caller giving up does not fail the others. The
// returned *oauth2.Token is shared by all callers: do not modify it.
//
// ServiceSource is safe for concurrent use.
type ServiceSource struct {
	c       *Client
	opts    ClientCredentialsOptions
	timeout time.Duration

	cur atomic.Pointer[serviceToken]

	mu         sync.Mutex
	flight     *serviceFlight // nil when no request is running
	retryAfter time.Time      // no background attempt before this
}

type serviceToken struct {
	tok       *oauth2.Token
	refreshAt time.Time // start a background refresh from here
	staleAt   time.Time // stop handing the token out from here
}

type serviceFlight struct {
	done chan struct{}
	tok  *serviceToken // set before done is closed, on success
	err  error         // set before done is closed, on failure
}

var (
	_ oauth2.TokenSource = (*ServiceSource)(nil)
	_ Invalidator        = (*ServiceSource)(nil)
)

// ServiceTokenSource returns a cached client-credentials token source with
// the given scopes (nil means Config.Scopes) and RFC 8707 resource
// indicators, authenticating with the client's one method (S17). Nothing is
// fetched until the first Token call. Safe for concurrent use.
func (c *Client) ServiceTokenSource(opts ClientCredentialsOptions) *ServiceSource {
	opts.Scopes = slices.Clone(opts.Scopes)
	opts.Resource = slices.Clone(opts.Resource)
	timeout := c.http.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &ServiceSource{c: c, opts: opts, timeout: timeout}
}

// Token returns a valid access token, fetching one if needed. It implements
// oauth2.TokenSource; the wait is bounded by the client's HTTP timeout.
func (s *ServiceSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext is Token with a context that bounds this caller's wait (the
// shared request itself is not cancelled by ctx).
func (s *ServiceSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if s == nil || s.c == nil {
		return nil, errors.New("oauthclient: a ServiceSource must come from Client.ServiceSource")
	}
	now := s.c.cfg.Now()
	if e := s.cur.Load(); e != nil && now.Before(e.staleAt) {
		if !now.Before(e.refreshAt) {
			s.refreshInBackground(now)
		}
		return e.tok, nil
	}
	f, tok := s.join(now)
	if tok != nil {
		return tok, nil
	}
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.tok.tok, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Invalidate drops t if it is still the cached token (an API answered 401
// invalid_token), so that the next Token call fetches a new one. It does
// nothing for any other token.
func (s *ServiceSource) Invalidate(t *oauth2.Token) {
	if t == nil {
		return
	}
	if e := s.cur.Load(); e != nil && e.tok.AccessToken == t.AccessToken {
		s.cur.CompareAndSwap(e, nil)
	}
}

// refreshInBackground starts a request unless one runs or a recent one failed.
func (s *ServiceSource) refreshInBackground(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight != nil || now.Before(s.retryAfter) {
		return
	}
	s.start(true)
}

// join returns the running request, starting one if needed, or a token if
// one became usable meanwhile.
func (s *ServiceSource) join(now time.Time) (*serviceFlight, *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur.Load(); e != nil && now.Before(e.staleAt) {
		return nil, e.tok
	}
	if s.flight == nil {
		s.start(false)
	}
	return s.flight, nil
}

// start launches the shared request; s.mu must be held.
func (s *ServiceSource) start(background bool) {
	f := &serviceFlight{done: make(chan struct{})}
	s.flight = f
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		tok, err := s.c.ClientCredentials(ctx, s.opts)
		var e *serviceToken
		if err == nil {
			e = newServiceToken(tok, s.c.cfg.Now())
		}
		s.mu.Lock()
		if err == nil {
			s.cur.Store(e)
			f.tok = e
		} else {
			f.err = err
			if background {
				s.retryAfter = s.c.cfg.Now().Add(serviceRetryAfter)
			}
		}
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
	}()
}

func newServiceToken(tok *oauth2.Token, now time.Time) *serviceToken {
	exp := tok.Expiry
	if exp.IsZero() {
		exp = now.Add(MissingExpiry)
	}
	life := exp.Sub(now)
	if life < 0 {
		life = 0
	}
	ahead := min(ServiceRefreshAhead, life/2)
	stale := min(expiryDelta, life/4)
	return &serviceToken{tok: tok, refreshAt: exp.Add(-ahead), staleAt: exp.Add(-stale)}
}
