package tokenstore

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// RefreshFunc calls the token endpoint with a refresh token. It must report
// invalid_grant with an error that satisfies errors.Is(err, ErrLoginRequired)
// and must not put any token in an error string. oauthclient provides one.
// A Source calls it from one refresh at a time; a RefreshFunc shared by
// several Sources must be safe for concurrent use.
type RefreshFunc func(ctx context.Context, refreshToken string) (*oauth2.Token, error)

// TemporaryError is returned by a Source when a refresh failed for a reason
// other than invalid_grant (5xx, timeout, network, store unavailable while
// re-reading). The stored refresh token is kept. Until RetryAfter, callers
// get the same error again without a new request. Its fields are not
// modified after it is returned, so it is safe to read concurrently.
type TemporaryError struct {
	// Err is the cause.
	Err error
	// RetryAfter is when the next refresh may be attempted.
	RetryAfter time.Time
}

// Error implements error.
func (e *TemporaryError) Error() string {
	return "tokenstore: temporary refresh failure: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TemporaryError) Unwrap() error { return e.Err }

// RotatedError is returned by a RefreshFunc when the server answered with a
// new refresh token but the response was refused afterwards (an ID token or
// scope check failed). The old refresh token is spent at the server, so the
// Source stores RefreshToken and reports Err as a *TemporaryError; it never
// sends the spent token again. Printing a RotatedError shows only Err.
type RotatedError struct {
	RefreshToken string
	Err          error
}

func (e *RotatedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RotatedError) Unwrap() error { return e.Err }

// Format prints only the cause under every verb, never the refresh token.
func (e *RotatedError) Format(f fmt.State, verb rune) { io.WriteString(f, e.Err.Error()) }

// SourceConfig configures a Source. Each field documents its zero value.
// NewSource copies it; the functions it holds are called concurrently
// only as their docs say.
type SourceConfig struct {
	// Store holds the refresh token record for Key and is re-read under
	// the cross-process lock before every refresh. nil means the refresh
	// token lives only in the Source's memory (and OnTokenChange); then no
	// cross-process lock is taken.
	Store Store
	// Key is the store key (see Key, ProfileKey). Required when Store is
	// set; also names the cross-process lock.
	Key string
	// Refresh calls the token endpoint. Required.
	Refresh RefreshFunc
	// Margin is how long before expiry a background refresh starts while
	// the current token is still served. Zero means 60 s. It is capped at
	// half the token's lifetime.
	Margin time.Duration
	// LockDir is the cross-process lock directory. "" means
	// DefaultLockDir().
	LockDir string
	// OnTokenChange, if not nil, is called after a refresh, once the
	// rotated refresh token is in Store and before the new token is
	// released; the token passed includes the refresh token. An error
	// withholds the new token (it is retried on the next call without a
	// new request).
	OnTokenChange func(ctx context.Context, t *oauth2.Token) error
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
	// DefaultLifetime is the lifetime assumed for a token without an
	// expiry (never "forever"). Zero means 5 minutes.
	DefaultLifetime time.Duration
	// RefreshTimeout bounds one refresh (lock wait, store and token
	// endpoint). Zero means 60 s.
	RefreshTimeout time.Duration
	// MaxBackoff caps the wait after repeated temporary failures; the
	// wait starts at 1 s and doubles. Zero means 1 minute.
	MaxBackoff time.Duration
}

// Source is an oauth2.TokenSource that keeps the access token in memory only
// and the refresh token in a Store, refreshing ahead of expiry with one
// refresh per key at a time, within the process and across processes.
//
// Tokens returned never carry the refresh token. As with x/oauth2's
// ReuseTokenSource, callers share one *oauth2.Token while it is current and
// must not modify it.
// A Source is safe for concurrent use; Token on a valid cached token takes
// no lock.
type Source struct {
	cfg SourceConfig

	cur       atomic.Pointer[entry]
	bg        atomic.Bool  // a background refresh was requested
	failUntil atomic.Int64 // UnixNano until which refreshes are not retried

	mu       sync.Mutex
	flight   *flight
	rt       string   // the refresh token we hold
	pending  *pending // a refreshed token not yet released
	failures int
	lastErr  error
}

type entry struct {
	tok       oauth2.Token // private copy, RefreshToken cleared
	refreshAt time.Time    // from here, refresh in the background
	blockAt   time.Time    // from here, callers wait for a refresh
}

type flight struct {
	done chan struct{}
	tok  *entry
	err  error
}

// pending is a token from a completed refresh whose rotated refresh token
// could not be saved (persisted false) or whose OnTokenChange failed.
type pending struct {
	tok       oauth2.Token
	rt        string
	spent     string // the refresh token that was sent
	persisted bool
}

var _ oauth2.TokenSource = (*Source)(nil)

// NewSource returns a Source for cfg. initial may be nil (the first call
// then refreshes with the stored refresh token) or a token from a login; its
// access token is served while valid. A refresh token in initial is only a
// hint: when Store is set, the stored one wins, so save it first with
// SaveRefreshToken. NewSource does no I/O and is safe for concurrent use.
func NewSource(cfg SourceConfig, initial *oauth2.Token) (*Source, error) {
	if cfg.Refresh == nil {
		return nil, errors.New("tokenstore: SourceConfig.Refresh is required")
	}
	if cfg.Store != nil && cfg.Key == "" {
		return nil, errors.New("tokenstore: SourceConfig.Key is required with a Store")
	}
	if cfg.Margin < 0 || cfg.DefaultLifetime < 0 || cfg.RefreshTimeout < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("tokenstore: negative duration in SourceConfig")
	}
	if cfg.Margin == 0 {
		cfg.Margin = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = 5 * time.Minute
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = 60 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Minute
	}
	s := &Source{cfg: cfg}
	if initial != nil {
		s.rt = initial.RefreshToken
		if initial.AccessToken != "" {
			s.cur.Store(s.newEntry(initial, cfg.Now()))
		}
	}
	return s, nil
}

// newEntry computes the refresh and blocking times. A token without expiry
// gets DefaultLifetime.
func (s *Source) newEntry(t *oauth2.Token, now time.Time) *entry {
	e := &entry{tok: *t}
	e.tok.RefreshToken = ""
	if e.tok.Expiry.IsZero() {
		e.tok.Expiry = now.Add(s.cfg.DefaultLifetime)
	}
	// Compare wall clocks, as x/oauth2 does: a monotonic reading stops
	// while the machine is suspended, and would keep an expired token.
	e.tok.Expiry = e.tok.Expiry.Round(0)
	life := max(e.tok.Expiry.Sub(now), 0)
	e.blockAt = e.tok.Expiry.Add(-min(10*time.Second, life/4))
	e.refreshAt = e.tok.Expiry.Add(-min(s.cfg.Margin, life/2))
	if e.refreshAt.After(e.blockAt) {
		e.refreshAt = e.blockAt
	}
	return e
}

// shared returns the entry's token. Like x/oauth2's ReuseTokenSource, every
// caller gets the same *oauth2.Token while it is current: handing out copies
// costs an allocation per call on the hot path. The token must be treated as
// read-only; it never carries the refresh token.
func (e *entry) shared() *oauth2.Token { return &e.tok }

// Token implements oauth2.TokenSource; it is TokenContext with
// context.Background.
func (s *Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid access token. A cached token is returned
// without locking; inside the refresh margin it is still returned at once
// while one background refresh runs. An expired token makes callers wait on
// a single refresh; ctx bounds only this caller's wait. Errors:
// ErrLoginRequired (errors.Is) when a new login is needed, *TemporaryError
// when refreshing failed and may work later, or the store's error when a
// rotated refresh token could not be saved.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if e := s.cur.Load(); e != nil {
		now := s.cfg.Now()
		if now.Before(e.refreshAt) {
			return e.shared(), nil
		}
		if now.Before(e.blockAt) {
			s.refreshAhead(ctx, now)
			return e.shared(), nil
		}
	}
	return s.wait(ctx)
}

// refreshAhead starts one background refresh unless one runs or a backoff
// is in force.
func (s *Source) refreshAhead(ctx context.Context, now time.Time) {
	if now.UnixNano() < s.failUntil.Load() || !s.bg.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.flight == nil {
		s.startFlight(ctx)
	}
	s.mu.Unlock()
}

func (s *Source) wait(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	if e := s.cur.Load(); e != nil && now.Before(e.blockAt) {
		s.mu.Unlock()
		return e.shared(), nil
	}
	if s.lastErr != nil && now.UnixNano() < s.failUntil.Load() {
		err := s.lastErr
		s.mu.Unlock()
		return nil, err
	}
	f := s.flight
	if f == nil {
		f = s.startFlight(ctx)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.tok.shared(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokenstore: waiting for a token refresh: %w", ctx.Err())
	}
}

// startFlight starts the one refresh; called with s.mu held. The refresh
// keeps ctx's values but not its cancellation, so one caller giving up does
// not fail the others; RefreshTimeout bounds it.
func (s *Source) startFlight(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RefreshTimeout)
	go func() {
		defer cancel()
		e, err := s.refresh(fctx)
		s.mu.Lock()
		f.tok, f.err = e, err
		var te *TemporaryError
		switch {
		case err == nil:
			s.failures, s.lastErr = 0, nil
			s.failUntil.Store(0)
		case errors.As(err, &te):
			s.lastErr = err
			s.failUntil.Store(te.RetryAfter.UnixNano())
		}
		s.flight = nil
		s.mu.Unlock()
		s.bg.Store(false)
		close(f.done)
	}()
	return f
}

// temporary records a failure and returns the *TemporaryError for it.
func (s *Source) temporary(cause error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	d := min(time.Second<<min(s.failures-1, 20), s.cfg.MaxBackoff)
	return &TemporaryError{Err: cause, RetryAfter: s.cfg.Now().Add(d)}
}

func loginRequired(cause error) error {
	if cause == nil || errors.Is(cause, ErrLoginRequired) {
		if cause == nil {
			return ErrLoginRequired
		}
		return cause
	}
	return fmt.Errorf("%w: %w", ErrLoginRequired, cause)
}

// refresh runs in the flight goroutine: lock, re-read, refresh, persist,
// publish, unlock.
func (s *Source) refresh(ctx context.Context) (*entry, error) {
	st := s.cfg.Store
	if st != nil {
		unlock, err := Lock(ctx, s.cfg.LockDir, s.cfg.Key)
		if err != nil {
			return nil, s.temporary(err)
		}
		defer unlock()
	}
	s.mu.Lock()
	rt, p := s.rt, s.pending
	s.mu.Unlock()

	if st != nil {
		stored, err := LoadRefreshToken(ctx, st, s.cfg.Key)
		switch {
		case errors.Is(err, ErrNotFound):
			s.forget()
			return nil, ErrLoginRequired
		case errors.Is(err, ErrCorrupt):
			s.forget()
			return nil, loginRequired(err)
		case err != nil:
			return nil, s.temporary(err)
		}
		if p != nil && !p.persisted && stored != p.spent {
			p = nil // the store moved on without us: drop the withheld token
		}
		if p != nil && p.persisted && stored != p.rt {
			p = nil
		}
		if p == nil {
			s.setPending(nil)
		}
		if p == nil && stored != rt {
			rt = stored // rotated by another process: use the new one
		}
	}

	if p != nil {
		if e, err, done := s.release(ctx, p, false); done {
			return e, err
		}
		rt = p.rt
	}
	if rt == "" {
		s.forget()
		return nil, ErrLoginRequired
	}

	tok, err := s.cfg.Refresh(ctx, rt)
	if err != nil {
		var rot *RotatedError
		if errors.As(err, &rot) && rot.RefreshToken != "" && rot.RefreshToken != rt {
			// The server spent rt and issued a new one, but the response was
			// refused afterwards: keep the new one, never resend rt.
			if st != nil {
				if serr := SaveRefreshToken(ctx, st, s.cfg.Key, rot.RefreshToken); serr != nil {
					return nil, s.temporary(errors.Join(err, serr))
				}
			}
			s.mu.Lock()
			s.rt = rot.RefreshToken
			s.mu.Unlock()
			return nil, s.temporary(err)
		}
		if errors.Is(err, ErrLoginRequired) {
			s.forget()
			if st != nil {
				if derr := st.Delete(ctx, s.cfg.Key); derr != nil {
					return nil, errors.Join(loginRequired(err),
						fmt.Errorf("tokenstore: deleting the invalid refresh token: %w", derr))
				}
			}
			return nil, loginRequired(err)
		}
		return nil, s.temporary(err)
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, s.temporary(errors.New("tokenstore: refresh returned no access token"))
	}
	p = &pending{tok: *tok, rt: tok.RefreshToken, spent: rt}
	if p.rt == "" {
		p.rt = rt // not rotated (RFC 6749 §6 allows keeping the old one)
	}
	p.persisted = p.rt == rt || st == nil
	e, err, _ := s.release(ctx, p, true)
	return e, err
}

// release persists p's refresh token if needed, calls OnTokenChange, and
// publishes the access token. On failure p is kept for the next call. done
// is false when p's access token has expired meanwhile and the caller
// should refresh with p.rt instead.
func (s *Source) release(ctx context.Context, p *pending, fresh bool) (e *entry, err error, done bool) {
	if !p.persisted {
		if err := SaveRefreshToken(ctx, s.cfg.Store, s.cfg.Key, p.rt); err != nil {
			s.setPending(p)
			return nil, fmt.Errorf("tokenstore: the rotated refresh token could not be saved, so the new access token is withheld: %w", err), true
		}
		p.persisted = true
	}
	s.mu.Lock()
	s.rt = p.rt
	s.mu.Unlock()
	now := s.cfg.Now()
	e = s.newEntry(&p.tok, now)
	if !now.Before(e.blockAt) {
		s.setPending(nil)
		if !fresh {
			return nil, nil, false
		}
		return nil, s.temporary(errors.New("tokenstore: refresh returned an expired access token")), true
	}
	if s.cfg.OnTokenChange != nil {
		t := p.tok
		t.RefreshToken = p.rt
		t.Expiry = e.tok.Expiry
		if err := s.cfg.OnTokenChange(ctx, &t); err != nil {
			s.setPending(p)
			return nil, fmt.Errorf("tokenstore: OnTokenChange: %w", err), true
		}
	}
	s.setPending(nil)
	s.cur.Store(e)
	return e, nil, true
}

func (s *Source) setPending(p *pending) {
	s.mu.Lock()
	s.pending = p
	s.mu.Unlock()
}

// forget drops the refresh token and the access token held in memory.
func (s *Source) forget() {
	s.mu.Lock()
	s.rt, s.pending = "", nil
	s.mu.Unlock()
	s.cur.Store(nil)
}

// Invalidate drops the cached access token if it is still t (compared in
// constant time), so the next call refreshes. The API transport calls it on
// 401 invalid_token; a stale t that was already replaced changes nothing.
// It is safe for concurrent use.
func (s *Source) Invalidate(t *oauth2.Token) {
	if t == nil {
		return
	}
	e := s.cur.Load()
	if e != nil && subtle.ConstantTimeCompare([]byte(e.tok.AccessToken), []byte(t.AccessToken)) == 1 {
		s.cur.CompareAndSwap(e, nil)
	}
}

// String implements fmt.Stringer; it never shows a token.
func (s *Source) String() string { return "tokenstore.Source{redacted}" }

// GoString implements fmt.GoStringer; it never shows a token.
func (s *Source) GoString() string { return s.String() }

// Format implements fmt.Formatter; no verb shows a token.
func (s *Source) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Source") }

// LogValue implements slog.LogValuer; it never shows a token.
func (s *Source) LogValue() slog.Value { return slog.StringValue(s.String()) }
