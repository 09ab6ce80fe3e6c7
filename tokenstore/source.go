package tokenstore

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// FetchFunc makes one token request for a Source: a refresh with
// r.Record's refresh token, or, when r.Record is nil, a grant that needs no
// record (client credentials) or ErrLoginRequired. It must report
// invalid_grant with an error that satisfies errors.Is(err,
// ErrLoginRequired), must hand a rotated refresh token to r.Rotated the
// moment a 200 response yields one (before any other check of the
// response), must hand a DPoP key the record does not hold to
// r.SetDPoPKey before proving a request with it, and must not put any
// token or key in an error string. oauthclient
// provides the FetchFuncs. A Source calls it from one refresh at a time,
// inside the Store transaction for its key.
type FetchFunc func(ctx context.Context, r *Refresh) (*Result, error)

// Refresh is one token request a Source asks of its FetchFunc. It is valid
// only while the FetchFunc runs.
type Refresh struct {
	// Record is a copy of the record to refresh, read inside the Store
	// transaction; nil when the Source has none (a client-credentials
	// source, or a memory-only source without a refresh token).
	Record *Record

	mu      sync.Mutex
	rotated string
	key     PrivateKey
}

// Rotated hands the Source a new refresh token from a 200 token response,
// before the response is checked. The Source stores it (and reports it to
// OnRecordChange) whatever the FetchFunc returns, and never sends the
// spent one again. It is safe for concurrent use while the FetchFunc runs.
func (r *Refresh) Rotated(refreshToken string) {
	r.mu.Lock()
	r.rotated = refreshToken
	r.mu.Unlock()
}

// SetDPoPKey hands the Source the DPoP key this request is proven with,
// when it is not the record's (a record without a key, a server that
// started to require DPoP). Call it before the request is sent: the Source
// writes the key into the record with the outcome, in the same Put as a
// rotated refresh token (which the server may have bound to it), whatever
// the FetchFunc returns. It is safe for concurrent use while the FetchFunc
// runs; the zero PrivateKey is ignored.
func (r *Refresh) SetDPoPKey(k PrivateKey) {
	if k.IsZero() {
		return
	}
	r.mu.Lock()
	r.key = k
	r.mu.Unlock()
}

func (r *Refresh) rotation() (string, PrivateKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotated, r.key
}

// Result is a checked token response.
type Result struct {
	// Token is the access token with its type and expiry. Its
	// RefreshToken is ignored: rotation goes through Refresh.Rotated.
	Token *oauth2.Token
	// Scopes are the granted scopes (RFC 6749 §5.1: the requested ones
	// when the response omits scope). nil keeps the record's.
	Scopes []string
}

// TemporaryError is returned by a Source when a refresh failed for a reason
// other than invalid_grant (5xx, timeout, network, a store that failed or
// stayed locked). The stored refresh token is kept. Until RetryAfter,
// callers get the same error again without a new request. Its fields are not
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

// SourceConfig configures a Source. Each field documents its zero value.
// NewSource copies it; the functions it holds are called concurrently
// only as their docs say.
type SourceConfig struct {
	// Store holds the record for Key. Every refresh is one Store.Update:
	// the record is read inside it, the token endpoint called, and the
	// outcome (a rotated refresh token, the granted scopes, or a deletion
	// after invalid_grant) written before it ends. nil means the record
	// lives only in the Source's memory (and OnRecordChange).
	Store Store
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
	// MaxBackoff caps the wait after repeated temporary failures; the
	// wait starts near 1 s and doubles, with jitter. Zero means 1 minute.
	MaxBackoff time.Duration
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
	store Store // cfg.Store, or a private Memory

	cur  atomic.Pointer[entry]
	fail atomic.Pointer[failure] // the last temporary failure, while backing off
	bg   atomic.Bool             // a background refresh was requested

	mu       sync.Mutex
	flight   *flight
	failures int
	scopes   []string
	unsaved  *unsaved // a record newer than the Store's, whose Put failed
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

// unsaved is a record the Store could not take: base is the refresh token
// the Store still holds (spent at the server), rec the newer record.
type unsaved struct {
	rec  *Record
	base string
}

var _ oauth2.TokenSource = (*Source)(nil)

// NewSource returns a Source for cfg. initial may be nil (the first call
// then fetches) or a token from a login; its access token is served while
// valid, and its refresh token is ignored (see SourceConfig.Record and
// SaveRecord). NewSource does no I/O; errors match ErrConfig.
func NewSource(cfg SourceConfig, initial *oauth2.Token) (*Source, error) {
	if cfg.Fetch == nil {
		return nil, fmt.Errorf("%w: SourceConfig.Fetch is required", ErrConfig)
	}
	if cfg.Store != nil && cfg.Key == "" {
		return nil, fmt.Errorf("%w: SourceConfig.Key is required with a Store", ErrConfig)
	}
	if cfg.Margin < 0 || cfg.DefaultLifetime < 0 || cfg.RefreshTimeout < 0 || cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("%w: negative duration in SourceConfig", ErrConfig)
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
	s := &Source{cfg: cfg, store: cfg.Store}
	if s.store == nil {
		mem := &Memory{}
		if cfg.Record != nil {
			b, err := encodeRecord(cfg.Record)
			if err != nil {
				return nil, err
			}
			mem.m = map[string][]byte{"": b}
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
// After a temporary failure every caller gets the same *TemporaryError,
// without a request, until its RetryAfter. Errors: ErrLoginRequired
// (errors.Is) when a new login is needed, *TemporaryError when refreshing
// failed and may work later, ctx's error, ErrConfig for the zero Source.
func (s *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil Source", ErrConfig)
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
		return nil, fmt.Errorf("%w: Source not made by NewSource", ErrConfig)
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
			s.failures = 0
			s.fail.Store(nil)
			s.cur.Store(e)
		case errors.As(err, &te):
			s.fail.Store(&failure{until: te.RetryAfter, err: err})
		default:
			s.failures = 0
			s.fail.Store(nil)
		}
		s.flight = nil
		s.mu.Unlock()
		s.bg.Store(false)
		close(f.done)
	}()
	return f
}

// temporary records a failure and returns the *TemporaryError for it: the
// wait doubles from 1 s up to MaxBackoff, and is then drawn uniformly from
// its upper half, so that many clients do not retry in step.
func (s *Source) temporary(cause error) error {
	s.mu.Lock()
	s.failures++
	n := s.failures
	s.mu.Unlock()
	d := min(time.Second<<min(n-1, 20), s.cfg.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return &TemporaryError{Err: cause, RetryAfter: s.cfg.Now().Round(0).Add(d)}
}

func loginRequired(cause error) error {
	if cause == nil {
		return ErrLoginRequired
	}
	if errors.Is(cause, ErrLoginRequired) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrLoginRequired, cause)
}

// outcomeWriteTimeout bounds the writes (and OnRecordChange) after a token
// request, which run even when the refresh's own timeout has passed.
const outcomeWriteTimeout = 10 * time.Second

// refresh runs in the flight goroutine: one Store transaction that reads
// the record, fetches, and writes the outcome.
func (s *Source) refresh(ctx context.Context) (*entry, error) {
	var out *entry
	var outErr error
	err := s.store.Update(ctx, s.cfg.Key, func(ctx context.Context, tx Tx) error {
		out, outErr = s.refreshTx(ctx, tx)
		return nil
	})
	if err != nil { // locked, or the store failed to release
		if outErr == nil && out != nil && !errors.Is(err, ErrLocked) {
			return out, nil // the outcome is written; only the release failed
		}
		return nil, s.temporary(errors.Join(outErr, err))
	}
	return out, outErr
}

func (s *Source) refreshTx(ctx context.Context, tx Tx) (*entry, error) {
	var rec *Record
	b, err := tx.Get(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		if s.cfg.Store != nil {
			s.forget()
			return nil, ErrLoginRequired
		}
	case err != nil:
		return nil, s.temporary(err)
	default:
		if rec, err = decodeRecord(b); err != nil {
			s.forget()
			return nil, loginRequired(err)
		}
	}

	// A rotation whose Put failed earlier: the Store still holds the spent
	// token (base). Write ours now, or at least use it, never the base.
	s.mu.Lock()
	u := s.unsaved
	s.mu.Unlock()
	if u != nil {
		if rec != nil && subtle.ConstantTimeCompare([]byte(rec.RefreshToken), []byte(u.base)) == 1 {
			rec = u.rec.clone()
			if err := s.put(ctx, tx, rec); err == nil {
				u = nil
				s.mu.Lock()
				s.unsaved = nil
				s.mu.Unlock()
				if s.cfg.OnRecordChange != nil {
					if err := s.cfg.OnRecordChange(ctx, rec.clone()); err != nil {
						s.setScopes(rec.Scopes)
						return nil, s.temporary(fmt.Errorf("tokenstore: OnRecordChange: %w", err))
					}
				}
			}
		} else {
			u = nil // the Store moved on (another process, a new login)
		}
		s.mu.Lock()
		s.unsaved = u
		s.mu.Unlock()
	}
	if rec != nil {
		s.setScopes(rec.Scopes)
	}

	r := &Refresh{Record: rec.clone()}
	res, ferr := s.cfg.Fetch(ctx, r)

	// Write the outcome before anything else: a rotated refresh token is
	// kept whatever the checks of the response decided, also when the
	// refresh's time ran out meanwhile (the writes get their own bound).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	var saveErr error
	if rec != nil {
		next := rec.clone()
		changed := false
		rt, key := r.rotation()
		if !key.IsZero() && !key.Equal(rec.DPoPKey) {
			next.DPoPKey, changed = key, true
		}
		if rt != "" && rt != rec.RefreshToken {
			if err := checkRefreshToken(rt); err != nil {
				// Unstorable: the spent token must not be sent again.
				return nil, s.deleteRecord(ctx, tx, fmt.Errorf("tokenstore: the server rotated to an unusable refresh token: %w", err))
			}
			next.RefreshToken, changed = rt, true
		}
		if ferr == nil && res != nil && res.Scopes != nil && !slices.Equal(res.Scopes, rec.Scopes) {
			next.Scopes, changed = slices.Clone(res.Scopes), true
		}
		if changed {
			next.Generation++
			if err := s.put(ctx, tx, next); err != nil {
				base := rec.RefreshToken
				if u != nil {
					base = u.base
				}
				s.mu.Lock()
				s.unsaved = &unsaved{rec: next.clone(), base: base}
				s.mu.Unlock()
				saveErr = fmt.Errorf("tokenstore: the rotated refresh token could not be saved (kept in memory, used next): %w", err)
			} else {
				s.mu.Lock()
				s.unsaved = nil
				s.mu.Unlock()
			}
			s.setScopes(next.Scopes)
			if saveErr == nil && s.cfg.OnRecordChange != nil {
				if err := s.cfg.OnRecordChange(ctx, next.clone()); err != nil {
					saveErr = fmt.Errorf("tokenstore: OnRecordChange: %w", err)
				}
			}
		}
	}

	switch {
	case ferr != nil && errors.Is(ferr, ErrLoginRequired):
		if rec == nil {
			s.forget()
			return nil, loginRequired(ferr)
		}
		return nil, s.deleteRecord(ctx, tx, ferr)
	case ferr != nil:
		return nil, s.temporary(errors.Join(ferr, saveErr))
	case saveErr != nil:
		return nil, s.temporary(saveErr)
	case res == nil || res.Token == nil || res.Token.AccessToken == "":
		return nil, s.temporary(errors.New("tokenstore: the token response has no access token"))
	}
	now := s.cfg.Now().Round(0)
	e := s.newEntry(res.Token, now)
	if !now.Before(e.blockAt) {
		return nil, s.temporary(errors.New("tokenstore: the token response holds an expired access token"))
	}
	return e, nil
}

// deleteRecord deletes the record after invalid_grant (or an unusable
// rotation) and returns the login-required error for cause.
func (s *Source) deleteRecord(ctx context.Context, tx Tx, cause error) error {
	s.forget()
	if err := tx.Delete(ctx); err != nil {
		return errors.Join(loginRequired(cause), fmt.Errorf("tokenstore: deleting the invalid refresh token: %w", err))
	}
	return loginRequired(cause)
}

func (s *Source) put(ctx context.Context, tx Tx, rec *Record) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	return tx.Put(ctx, b)
}

func (s *Source) setScopes(scopes []string) {
	s.mu.Lock()
	if !slices.Equal(s.scopes, scopes) {
		s.scopes = slices.Clone(scopes)
	}
	s.mu.Unlock()
}

// forget drops the access token and anything unsaved held in memory.
func (s *Source) forget() {
	s.mu.Lock()
	s.unsaved = nil
	s.mu.Unlock()
	s.cur.Store(nil)
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
// constant time), so the next call refreshes. The API transport calls it on
// 401 invalid_token; a stale t that was already replaced changes nothing.
// It is safe for concurrent use.
func (s *Source) Invalidate(t *oauth2.Token) {
	if s == nil || t == nil {
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
