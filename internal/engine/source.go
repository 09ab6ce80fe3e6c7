package engine

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// ErrClosed is returned by a Source after Close (and by a Pool after
// Drain).
var ErrClosed = errors.New("tokenstore: closed")

// ErrPanic is matched by the error a Source returns when a function it
// calls (the FetchFunc, a transport wrapper or log handler under it,
// OnRecordChange) panicked during a refresh. The panic is recovered, a
// rotated refresh token handed over before it is still written, and the
// failure is permanent (a bug to fix), backing off like any other. It
// matches oauthsafe.ErrConfig (internal/cfgerr): the bug is the caller's
// code, and retrying does not help.
var ErrPanic = fmt.Errorf("tokenstore: a function called during the refresh panicked (%w)", cfgerr.ErrConfig)

// SourceConfig configures a Source. Each field documents its zero value.
// NewSource copies it; the functions it holds are called concurrently
// only as their docs say.
type SourceConfig struct {
	// Store holds the record for Key. Every refresh is one Store.Update:
	// the record is read inside it, the token endpoint called, and the
	// outcome (a rotated refresh token, the granted scopes, or a deletion
	// after invalid_grant) written before it ends. nil means the record
	// lives only in the Source's memory (and OnRecordChange).
	Store tokenstore.Store
	// Key is the store key (see Key, ProfileKey). Required when Store is
	// set.
	Key string
	// Record is the starting record when Store is nil (a login's refresh
	// token); nil means none. Ignored when Store is set: save the record
	// with SaveRecord first.
	Record *Record
	// Fetch makes the token request. Required.
	Fetch FetchFunc
	// Margin is how long before expiry a background refresh starts while
	// the current token is still served. Zero means 60 s. It is capped at
	// half the token's lifetime.
	Margin time.Duration
	// OnRecordChange, if not nil, is called inside the transaction after
	// every change of the record (a rotated refresh token, including one
	// from a response refused afterwards; new granted scopes; a new DPoP
	// key), once the record is in Store. An error is reported to the callers as a
	// *TemporaryError and the new access token is withheld; the record
	// is kept.
	OnRecordChange func(ctx context.Context, rec *Record) error
	// Now returns the current time. nil means time.Now. Expiry is
	// compared on the wall clock.
	Now func() time.Time
	// DefaultLifetime is the lifetime assumed for a token without an
	// expiry (never "forever"). Zero means 5 minutes.
	DefaultLifetime time.Duration
	// RefreshTimeout bounds one refresh (waiting for the store's lock,
	// the store and the token endpoint). Zero means 60 s. Writing the
	// outcome of the token request has its own bound (10 s), so a rotated
	// refresh token is stored even when the timeout ends during the request.
	RefreshTimeout time.Duration
	// MaxBackoff caps the wait after repeated failures; the wait starts
	// near 1 s and doubles, with jitter. Zero means 1 minute.
	MaxBackoff time.Duration
	// ReuseGrace is the provider's refresh-token reuse grace period (some
	// providers accept a spent refresh token again for a short while after
	// rotating it). A record left with an interrupted refresh that began
	// less than ReuseGrace ago is refreshed again with its stored token,
	// and the outcome of that refresh clears the mark; older, or with zero
	// (the default, for providers without a grace period), the Source
	// reports ErrRotationLost instead of sending it.
	ReuseGrace time.Duration
	// ResolveMarkersByIntrospection, if not nil, resolves a record left
	// marked by an interrupted refresh instead of reporting it: once the
	// marked request has surely ended (its deadline, which a lease store
	// keeps within the writer's lease, or its failure, plus 5 s for the
	// provider to finish a request its client gave up on), the Source
	// asks the provider whether the stored refresh token is still active
	// (RFC 7662 introspection by this client). Active: the request never
	// reached the provider (a holder killed before sending, a connection
	// that failed on the way); the marker is cleared and the token
	// refreshed as usual, so the user keeps working. Inactive: the
	// rotation happened; ErrRotationLost (or ReuseGrace). A refusal: as
	// without it. No answer (an error marked Transient: a timeout, a
	// 5xx): asked again with backoff for a minute, then as without it.
	// While the marked request is more recent than that, refreshes fail
	// with a *TemporaryError whose RetryAfter is when it may be asked
	// about. nil (the default) never asks.
	//
	// WARNING: set it only for a provider known to report a spent
	// (rotated) refresh token as inactive to its client, and not to count
	// an introspection as a use. A provider that reported a spent token as
	// active would have it sent again, which its reuse detection answers by
	// revoking the whole grant. Known to answer correctly: this project's
	// test provider (package oauthtest), checked by the tests
	// TestMarkerResolvedByIntrospection and
	// TestFleetKillBeforeSendLosesNoUser. Check your provider the same way
	// before turning it on. Two assumptions remain: the provider finishes
	// a request within 5 s of its client giving up on it, and the wall
	// clocks of the processes sharing the Store agree within a second or
	// so (the marker's times are written by one and read by another).
	ResolveMarkersByIntrospection ActiveCheck
	// Logger, if not nil, gets one event per refresh (debug on success,
	// warn on failure) naming the store key's first 8 characters, the
	// outcome and the record generation; never a token or a key.
	Logger *slog.Logger
	// InvalidationCooldown is the least time between two Invalidate calls
	// that drop the token, whatever the number of API clients built on
	// the Source: an API that answers invalid_token to everything must not
	// turn every call into a refresh. Zero means 10 s.
	InvalidationCooldown time.Duration
}

// Source is the token lifecycle engine, for user tokens (a refresh token in
// a Store) and client-credentials tokens alike. It implements
// oauth2.TokenSource. The access token lives in memory only; it is
// refreshed ahead of expiry by one flight per Source, and each refresh is a
// Store transaction, so one refresh token is sent once across every
// goroutine, process and replica that shares the Store.
//
// Tokens returned never carry the refresh token. As with x/oauth2's
// ReuseTokenSource, callers share one *oauth2.Token while it is current and
// must not modify it.
//
// A Source is safe for concurrent use; Token on a valid cached token takes
// no lock and does not allocate. The zero value (and a nil *Source)
// returns errors matching ErrConfig; use NewSource.
type Source struct {
	cfg   SourceConfig
	store tokenstore.Store // cfg.Store, or a private Memory

	cur  atomic.Pointer[entry]
	fail atomic.Pointer[failure] // the last temporary failure, while backing off
	bg   atomic.Bool             // a background refresh was requested

	lastInvalidation atomic.Int64 // UnixNano of the last Rejected that dropped a token

	public atomic.Pointer[any] // the public value wrapping this Source (Public)

	mu       sync.Mutex
	flight   *flight
	failures int
	scopes   []string
	closed   bool
}

type entry struct {
	tok       oauth2.Token // private copy, RefreshToken cleared
	refreshAt time.Time    // from here, refresh in the background
	blockAt   time.Time    // from here, callers wait for a refresh
}

type failure struct {
	until time.Time
	err   error
}

type flight struct {
	done chan struct{}
	tok  *entry
	err  error
}

var _ oauth2.TokenSource = (*Source)(nil)

// NewSource returns a Source for cfg. initial may be nil (the first call
// then fetches) or a token from a login; its access token is served while
// valid, and its refresh token is ignored (see SourceConfig.Record and
// SaveRecord). NewSource does no I/O; errors match ErrConfig.
func NewSource(cfg SourceConfig, initial *oauth2.Token) (*Source, error) {
	if cfg.Fetch == nil {
		return nil, cfgerr.New("tokenstore", "SourceConfig.Fetch is required")
	}
	if cfg.Store != nil && cfg.Key == "" {
		return nil, cfgerr.New("tokenstore", "SourceConfig.Key is required with a Store")
	}
	if cfg.Margin < 0 || cfg.DefaultLifetime < 0 || cfg.RefreshTimeout < 0 || cfg.MaxBackoff < 0 ||
		cfg.ReuseGrace < 0 || cfg.InvalidationCooldown < 0 {
		return nil, cfgerr.New("oauthclient", "negative duration in TokenSourceConfig")
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
	if cfg.InvalidationCooldown == 0 {
		cfg.InvalidationCooldown = 10 * time.Second
	}
	s := &Source{cfg: cfg, store: cfg.Store}
	if s.store == nil {
		mem := &tokenstore.Memory{}
		if cfg.Record != nil {
			b, err := encodeRecord(cfg.Record)
			if err != nil {
				return nil, err
			}
			if err := mem.Update(context.Background(), "", func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) }); err != nil {
				return nil, err
			}
			s.scopes = slices.Clone(cfg.Record.Scopes)
		}
		s.store, s.cfg.Key = mem, ""
	}
	s.cfg.Record = nil
	if initial != nil && initial.AccessToken != "" {
		s.cur.Store(s.newEntry(initial, cfg.Now()))
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

// Token implements oauth2.TokenSource; it is TokenContext with
// context.Background.
func (s *Source) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext returns a valid access token. A cached token is returned
// without locking; inside the refresh margin it is still returned at once
// while one background refresh runs. An expired token makes callers wait on
// a single refresh; ctx bounds this caller's wait (the refresh itself keeps
// ctx's values, not its cancellation, and is bounded by RefreshTimeout).
// After a failure every caller gets the same error, without a request,
// until the backoff ends. Errors: ErrLoginRequired (errors.Is; also
// ErrRotationLost) when a new login is needed; *TemporaryError when
// refreshing failed for a reason that may go away by itself (network, 5xx,
// 429, the store unreachable, an interrupted refresh too recent to resolve
// by introspection); the FetchFunc's own typed error, unwrapped,
// for a permanent failure (see Transient); ErrClosed after Close; ctx's
// error; ErrConfig for the zero Source.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if s == nil {
		return nil, cfgerr.New("oauthclient", "TokenSource not made by a Client")
	}
	if e := s.cur.Load(); e != nil {
		now := s.cfg.Now().Round(0)
		if now.Before(e.refreshAt) {
			return &e.tok, nil
		}
		if now.Before(e.blockAt) {
			s.refreshAhead(ctx, now)
			return &e.tok, nil
		}
	}
	if s.cfg.Fetch == nil {
		return nil, cfgerr.New("tokenstore", "Source not made by NewSource")
	}
	return s.wait(ctx)
}

// backingOff returns the failure in force, if any.
func (s *Source) backingOff(now time.Time) *failure {
	if f := s.fail.Load(); f != nil && now.Before(f.until) {
		return f
	}
	return nil
}

// refreshAhead starts one background refresh unless one runs or a backoff
// is in force.
func (s *Source) refreshAhead(ctx context.Context, now time.Time) {
	if s.backingOff(now) != nil || !s.bg.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.flight == nil {
		s.startFlight(ctx)
	}
	s.mu.Unlock()
}

func (s *Source) wait(ctx context.Context) (*oauth2.Token, error) {
	now := s.cfg.Now().Round(0)
	if f := s.backingOff(now); f != nil {
		return nil, f.err
	}
	s.mu.Lock()
	if e := s.cur.Load(); e != nil && now.Before(e.blockAt) {
		s.mu.Unlock()
		return &e.tok, nil
	}
	if f := s.backingOff(now); f != nil {
		s.mu.Unlock()
		return nil, f.err
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
		return &f.tok.tok, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokenstore: waiting for a token refresh: %w", context.Cause(ctx))
	}
}

// startFlight starts the one refresh; called with s.mu held. The refresh
// keeps ctx's values but not its cancellation, so one caller giving up does
// not fail the others; RefreshTimeout bounds it. A closed Source starts
// none: the flight fails with ErrClosed.
func (s *Source) startFlight(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	if s.closed {
		f.err = ErrClosed
		s.flight = nil
		close(f.done)
		return f
	}
	// The whole transaction: waiting for the store, the token request
	// (RefreshTimeout), then writing its outcome (outcomeWriteTimeout).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RefreshTimeout+outcomeWriteTimeout)
	go func() {
		defer cancel()
		e, err := s.refresh(fctx)
		s.log(e, err)
		s.mu.Lock()
		f.tok, f.err = e, err
		var le *loginErr
		switch {
		case err == nil:
			s.failures = 0
			s.fail.Store(nil)
			s.cur.Store(e)
		case errors.As(err, &le):
			f.err = le.err
			s.failures = 0
			s.fail.Store(nil)
		default: // temporary or permanent: both back off
			var te *tokenstore.TemporaryError
			until := time.Time{}
			if errors.As(err, &te) {
				until = te.RetryAfter
			} else {
				until = s.backoffLocked()
			}
			s.fail.Store(&failure{until: until, err: err})
		}
		s.flight = nil
		s.mu.Unlock()
		s.bg.Store(false)
		close(f.done)
	}()
	return f
}

func (s *Source) setScopes(scopes []string) {
	s.mu.Lock()
	if !slices.Equal(s.scopes, scopes) {
		s.scopes = slices.Clone(scopes)
	}
	s.mu.Unlock()
}

// forget drops the access token held in memory.
func (s *Source) forget() { s.cur.Store(nil) }

func (s *Source) log(e *entry, err error) {
	l := s.cfg.Logger
	if l == nil {
		return
	}
	key := s.cfg.Key
	if len(key) > 8 {
		key = key[:8]
	}
	switch {
	case err == nil:
		l.Debug("oauthsafe refresh", "key", key, "outcome", "ok", "expiry", e.tok.Expiry)
	case errors.Is(err, tokenstore.ErrLoginRequired):
		l.Warn("oauthsafe refresh", "key", key, "outcome", "login_required", "error", err.Error())
	case isTemporary(err):
		l.Warn("oauthsafe refresh", "key", key, "outcome", "temporary", "error", err.Error())
	default:
		l.Warn("oauthsafe refresh", "key", key, "outcome", "failed", "error", err.Error())
	}
}

// Public returns the public value that wraps s (oauthclient's
// TokenSource): made by mk on the first call, the same value afterwards,
// so that a Pool hands out its sources without allocating per call.
func (s *Source) Public(mk func() any) any {
	if p := s.public.Load(); p != nil {
		return *p
	}
	v := mk()
	if s.public.CompareAndSwap(nil, &v) {
		return v
	}
	return *s.public.Load()
}

// Close ends the Source for a graceful shutdown, an eviction or a process
// exit: new refreshes are refused (ErrClosed; a valid cached token is still
// served), an in-flight refresh is awaited until ctx ends, and a rotation
// this process holds unsaved for the Source's key (a write that failed) is
// written in one more transaction. It returns ctx's error if the wait was
// cut short, or the error of that last write (the rotation then stays in
// this process's memory for any other Source on the same key). Close is
// idempotent and safe for concurrent use.
func (s *Source) Close(ctx context.Context) error {
	if s == nil || s.cfg.Fetch == nil {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.settle(ctx)
}

// Scopes returns the scopes granted as of the last record this Source read
// or wrote (nil before the first refresh of a Source resumed from a Store,
// and for a client-credentials source). Safe for concurrent use.
func (s *Source) Scopes() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.scopes)
}

// Invalidate drops the cached access token if it is still t (compared in
// constant time), so the next call refreshes; a stale t that was already
// replaced changes nothing. It is safe for concurrent use. For a token an
// API refused, use Rejected.
func (s *Source) Invalidate(t *oauth2.Token) {
	if s == nil || t == nil {
		return
	}
	if e := s.current(t); e != nil {
		s.cur.CompareAndSwap(e, nil)
	}
}

func (s *Source) current(t *oauth2.Token) *entry {
	e := s.cur.Load()
	if e == nil || subtle.ConstantTimeCompare([]byte(e.tok.AccessToken), []byte(t.AccessToken)) != 1 {
		return nil
	}
	return e
}

// Rejected tells the Source that an API refused t (401 invalid_token). Like
// Invalidate it drops t if it is still current, but at most once per
// SourceConfig.InvalidationCooldown for the Source, however many API
// clients share it, so an API that refuses every token cannot turn each
// call into a refresh (a rotation of the user's refresh token). It reports
// whether t was dropped. The API transport calls it. Safe for concurrent
// use.
func (s *Source) Rejected(t *oauth2.Token) bool {
	if s == nil || t == nil || s.cfg.Fetch == nil {
		return false
	}
	e := s.current(t)
	if e == nil {
		return false
	}
	now := s.cfg.Now().UnixNano()
	last := s.lastInvalidation.Load()
	if last != 0 && now-last < int64(s.cfg.InvalidationCooldown) {
		return false
	}
	if !s.lastInvalidation.CompareAndSwap(last, now) {
		return false
	}
	return s.cur.CompareAndSwap(e, nil)
}

// Format implements fmt.Formatter; no verb shows a token.
func (s *Source) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Source") }
