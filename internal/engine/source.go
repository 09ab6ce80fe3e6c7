package engine

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// FetchFunc makes one token request for a Source: a refresh with
// r.Record's refresh token, or, when r.Record is nil, a grant that needs no
// record (client credentials) or ErrLoginRequired. It must report
// invalid_grant with an error that satisfies errors.Is(err,
// ErrLoginRequired), must hand a rotated refresh token to r.Rotated the
// moment a 200 response yields one (before any other check of the
// response), must hand a DPoP key the record does not hold to
// r.SetDPoPKey before proving a request with it, must tell the Source
// before it returns an error whether the request may have reached the
// server (r.Sent) and whether the server's answer was read whole
// (r.Answered), and must not put any token or key in an error string.
// oauthclient provides the FetchFuncs. A Source calls it from one refresh
// at a time, inside the Store transaction for its key.
type FetchFunc func(ctx context.Context, r *Refresh) (*Result, error)

// Refresh is one token request a Source asks of its FetchFunc. It is valid
// only while the FetchFunc runs.
type Refresh struct {
	// Record is a copy of the record to refresh, read inside the Store
	// transaction; nil when the Source has none (a client-credentials
	// source, or a memory-only source without a refresh token).
	Record *Record

	mu       sync.Mutex
	rotated  string
	key      PrivateKey
	sent     bool
	answered bool
}

// Sent tells the Source that the request may have reached the server: a
// connection was made for it, or it is not known that none was. A
// FetchFunc that fails without calling Sent, Answered or Rotated is taken
// to have sent nothing (a refusal before the request, a failed dial): the
// stored refresh token is unspent and the record's marker is cleared.
// After Sent, a failure without Answered (a network failure or a timeout
// after the request left) leaves the outcome unknown: the marker stays,
// and the stored token is not sent again until the marker is resolved
// (see SourceConfig.ResolveMarkersByIntrospection and ErrRotationLost).
// Safe for concurrent use while the FetchFunc runs.
func (r *Refresh) Sent() {
	r.mu.Lock()
	r.sent = true
	r.mu.Unlock()
}

// Answered tells the Source that the server's answer to the request was
// read whole, whatever its status (a 503, an OAuth error, a 200 the
// checks refused): without a Rotated call, the server kept the refresh
// token, and the Source clears the record's marker. It implies Sent.
// Safe for concurrent use while the FetchFunc runs.
func (r *Refresh) Answered() {
	r.mu.Lock()
	r.sent, r.answered = true, true
	r.mu.Unlock()
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

// delivery reports what the FetchFunc said of the request: whether it may
// have reached the server, and whether the answer was read whole.
func (r *Refresh) delivery() (sent, answered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent, r.answered
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

// Transient marks err as a failure that may go away by itself: a network
// failure, a timeout, a 5xx or 429 answer. A FetchFunc returns it for
// those, and only those; the Source then keeps the record and returns a
// *TemporaryError, backing off. Every other FetchFunc error is permanent
// (a refused client, a malformed answer, a refused scope, a policy
// refusal): the Source returns it as it is (still backing off, so a
// broken configuration does not hammer the server) and never calls it
// temporary. Store failures matching ErrUnavailable or ErrLocked are
// temporary without the mark. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// isTemporary is the one classification of refresh failures: network,
// 5xx and 429 (marked by the FetchFunc with Transient), a refresh that ran
// out of time, and a store that could not be reached or stayed locked.
func isTemporary(err error) bool {
	var t *transientError
	return errors.As(err, &t) || errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokenstore.ErrLocked) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ErrRotationLost means the record shows a refresh whose outcome was
// never written and whose request may have reached the server (which then
// rotated, spending the stored refresh token): its holder was killed, lost
// the store for longer than its lease, or lost the connection after the
// request left. Sending the stored token again would trip the provider's
// reuse detection, which revokes the whole grant, so the Source reports
// this instead; it matches ErrLoginRequired. The record is left in place:
// the process that holds the rotation in memory (if it still runs) writes
// it on its next refresh, and a new login replaces it. With
// SourceConfig.ResolveMarkersByIntrospection the provider is asked first:
// a token it reports active is refreshed (the request never arrived), and
// only one it reports inactive, or could not be asked about, gives
// ErrRotationLost. With SourceConfig.ReuseGrace the stored token is sent
// again within the provider's grace period instead.
var ErrRotationLost = fmt.Errorf("%w: a refresh was interrupted after the token request and before its outcome was stored; the stored refresh token may be spent", tokenstore.ErrLoginRequired)

// ErrClosed is returned by a Source after Close (and by a Pool after
// Drain).
var ErrClosed = errors.New("tokenstore: closed")

// ErrPanic is matched by the error a Source returns when a function it
// calls (the FetchFunc, a transport wrapper or log handler under it,
// OnRecordChange) panicked during a refresh. The panic is recovered, a
// rotated refresh token handed over before it is still written, and the
// failure is permanent (a bug to fix), backing off like any other.
var ErrPanic = errors.New("tokenstore: a function called during the refresh panicked")

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
		return nil, cfgerr.New("tokenstore", "negative duration in SourceConfig")
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
		return nil, cfgerr.New("tokenstore", "nil Source")
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

// loginErr carries an error that needs a new login out of the flight
// without a backoff.
type loginErr struct{ err error }

func (e *loginErr) Error() string { return e.err.Error() }
func (e *loginErr) Unwrap() error { return e.err }

// backoffLocked counts a failure and returns when the next attempt may
// start: the wait doubles from 1 s up to MaxBackoff, and is then drawn
// uniformly from its upper half, so that many clients do not retry in step.
// Called with s.mu held.
func (s *Source) backoffLocked() time.Time {
	s.failures++
	d := min(time.Second<<min(s.failures-1, 20), s.cfg.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return s.cfg.Now().Round(0).Add(d)
}

// temporary records a failure and returns the *TemporaryError for it.
func (s *Source) temporary(cause error) error {
	s.mu.Lock()
	until := s.backoffLocked()
	s.mu.Unlock()
	return &tokenstore.TemporaryError{Err: cause, RetryAfter: until}
}

// failed classifies a refresh failure once: ErrLoginRequired as it is,
// network/5xx/429/store unavailability as a *TemporaryError, anything else
// as it is (permanent; the flight still backs off).
func (s *Source) failed(err error) error {
	var te *tokenstore.TemporaryError
	switch {
	case errors.As(err, &te):
		return err
	case errors.Is(err, tokenstore.ErrLoginRequired):
		return &loginErr{err}
	case isTemporary(err):
		return s.temporary(err)
	}
	return err
}

func loginRequired(cause error) error {
	if cause == nil {
		return tokenstore.ErrLoginRequired
	}
	if errors.Is(cause, tokenstore.ErrLoginRequired) {
		return cause
	}
	return fmt.Errorf("%w: %w", tokenstore.ErrLoginRequired, cause)
}

// outcomeWriteTimeout bounds the writes (and OnRecordChange) after a token
// request, which run even when the request used all of RefreshTimeout. A
// lease store (LeaseTx) cancels them earlier once its lease is surely lost.
const outcomeWriteTimeout = 30 * time.Second

// LeaseTx is implemented by a Tx whose exclusive access is a lease that
// lapses unless renewed (sqlstore). The Source ends its token request
// before the lease could lapse, so that no other holder can read the
// record while the request is in flight.
type LeaseTx interface {
	tokenstore.Tx
	// LeaseDeadline is the time by which the lease surely lapses unless
	// renewed meanwhile.
	LeaseDeadline() time.Time
}

// refresh runs in the flight goroutine: one Store transaction that reads
// the record, fetches, and writes the outcome.
func (s *Source) refresh(ctx context.Context) (*entry, error) {
	var out *entry
	var outErr error
	err := s.store.Update(ctx, s.cfg.Key, func(ctx context.Context, tx tokenstore.Tx) error {
		out, outErr = s.refreshTx(ctx, tx)
		return nil
	})
	if err != nil { // locked, or the store failed to release
		if outErr == nil && out != nil && !errors.Is(err, tokenstore.ErrLocked) {
			return out, nil // the outcome is written; only the release failed
		}
		return nil, s.failed(errors.Join(outErr, err))
	}
	if outErr != nil {
		return nil, s.failed(outErr)
	}
	return out, nil
}

// refreshTx is one refresh inside the Store transaction, in five steps:
// read the record (writing a rotation this process holds, resolving a
// marker an interrupted refresh left), mark it, fetch, write the outcome,
// classify it.
func (s *Source) refreshTx(ctx context.Context, tx tokenstore.Tx) (*entry, error) {
	rec, err := s.readRecord(ctx, tx)
	if err != nil {
		return nil, err
	}

	// The token request must end before the lease could lapse: no other
	// holder may read the record while it is in flight.
	fetchDeadline := time.Now().Add(s.cfg.RefreshTimeout)
	if lt, ok := tx.(LeaseTx); ok {
		left := time.Until(lt.LeaseDeadline())
		if left < 100*time.Millisecond {
			return nil, fmt.Errorf("tokenstore: the store's lease is about to lapse; the token request was not sent: %w", tokenstore.ErrLocked)
		}
		fetchDeadline = minTime(fetchDeadline, time.Now().Add(left*2/3))
	}

	// Mark the record before the request: if this process dies, or loses
	// the store for longer than its lease, before the outcome is written,
	// the next holder knows the stored token may be spent, and from when
	// it may ask the provider (S29).
	var marked *Record
	if rec != nil && s.cfg.Store != nil {
		now := s.cfg.Now()
		marked = rec.clone()
		marked.pending = max(now.UnixMilli(), 1)
		marked.pendingUntil = max(now.Add(time.Until(fetchDeadline)).UnixMilli(), marked.pending)
		if err := s.mark(ctx, tx, marked); err != nil {
			return nil, err
		}
	}

	r := &Refresh{Record: rec.clone()}
	issued := s.cfg.Now() // the token's issue time as this client sees it
	fctx, cancel := context.WithDeadline(ctx, fetchDeadline)
	res, ferr := s.fetch(fctx, r)
	cancel()

	// Write the outcome before anything else: a rotated refresh token is
	// kept whatever the checks of the response decided, also when the
	// request used all its time (the writes have their own bound).
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer wcancel()
	wctx = mergeCancel(wctx, ctx)
	saveErr, err := s.writeOutcome(wctx, tx, rec, marked, r, res, ferr)
	if err != nil {
		return nil, err
	}
	return s.classify(wctx, tx, rec, res, ferr, saveErr, issued)
}

// readRecord reads the record for a refresh (nil: none, for a Source
// without a Store). A rotation this process holds for the stored token is
// written first; a marker left by an interrupted refresh is resolved
// (resolveMarker) or reported. The record returned carries no marker.
func (s *Source) readRecord(ctx context.Context, tx tokenstore.Tx) (*Record, error) {
	var rec *Record
	b, err := tx.Get(ctx)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		if s.cfg.Store != nil {
			s.forget()
			return nil, tokenstore.ErrLoginRequired
		}
		return nil, nil
	case err != nil:
		return nil, err
	}
	if rec, err = decodeRecord(b); err != nil {
		s.forget()
		return nil, loginRequired(err)
	}
	// A rotation of the stored token that this process holds (its write
	// failed earlier, in this Source or another): write it now.
	if next := rotations.heldFor(s.cfg.Key, rec); next != nil {
		if err := s.putRetry(ctx, tx, next); err != nil {
			return nil, fmt.Errorf("tokenstore: the refresh's outcome could not be saved (kept in memory, written next): %w", err)
		}
		rotations.drop(s.cfg.Key, rec.RefreshToken)
		changed := next.Generation != rec.Generation // else only the marker was cleared
		rec = next
		if changed {
			if err := s.recordChanged(ctx, rec); err != nil {
				s.setScopes(rec.Scopes)
				return nil, err
			}
		}
	} else if rec.pending != 0 && s.cfg.Store != nil {
		if err := s.resolveMarker(ctx, rec); err != nil {
			return nil, err
		}
		rec.pending, rec.pendingUntil = 0, 0 // cleared with this refresh's outcome
	}
	s.setScopes(rec.Scopes)
	return rec, nil
}

// writeOutcome writes what the token request changed (a rotated refresh
// token, a new DPoP key, new granted scopes) and clears the marker when
// the outcome is known: the server answered, rotated, or never saw the
// request. When the request may have reached the server and no answer was
// read, the server may have rotated unseen: the marker stays (with the
// time the request ended) for the next holder to resolve, and the stored
// token is not sent again blindly. saveErr is an outcome that could not be
// saved; err is an unusable rotation (the record is then deleted).
func (s *Source) writeOutcome(ctx context.Context, tx tokenstore.Tx, rec, marked *Record, r *Refresh, res *Result, ferr error) (saveErr, err error) {
	if rec == nil {
		return nil, nil
	}
	rt, key := r.rotation()
	sent, answered := r.delivery()
	if errors.Is(ferr, ErrPanic) {
		sent = true // a panic may have come after the request left
	}
	known := ferr == nil || rt != "" || answered || !sent
	next, newer, err := outcomeRecord(rec, rt, key, res, ferr)
	if err != nil {
		// Unstorable: the spent token must not be sent again.
		return nil, s.deleteRecord(ctx, tx, fmt.Errorf("tokenstore: the server rotated to an unusable refresh token: %w", err))
	}
	if !known && marked != nil {
		return s.keepMarker(ctx, tx, next, marked, newer), nil
	}
	if marked != nil || newer {
		saveErr = s.saveOutcome(ctx, tx, rec, next, marked, newer)
	}
	return saveErr, nil
}

// outcomeRecord is rec (which carries no marker) with what the token
// request changed: the DPoP key, the rotated refresh token rt (an error if
// it cannot be stored), the granted scopes. newer reports a change of the
// record itself, not only of the marker; the generation then counts it.
func outcomeRecord(rec *Record, rt string, key PrivateKey, res *Result, ferr error) (next *Record, newer bool, err error) {
	next = rec.clone()
	if !key.IsZero() && !key.Equal(rec.DPoPKey) {
		next.DPoPKey, newer = key, true
	}
	if rt != "" && rt != rec.RefreshToken {
		if err := checkRefreshToken(rt); err != nil {
			return nil, false, err
		}
		next.RefreshToken, newer = rt, true
	}
	if ferr == nil && res != nil && res.Scopes != nil && !slices.Equal(res.Scopes, rec.Scopes) {
		next.Scopes, newer = slices.Clone(res.Scopes), true
	}
	if newer {
		next.Generation++
	}
	return next, newer, nil
}

// keepMarker writes next of a refresh whose outcome is unknown: the
// marker stays, now saying when the request ended, so that the next
// holder may resolve it soon (markerSettle). One attempt: if it fails, the
// marker written before the request stays. It returns the outcome that
// could not be saved (a new DPoP key) or a failure of OnRecordChange.
func (s *Source) keepMarker(ctx context.Context, tx tokenstore.Tx, next, marked *Record, newer bool) (saveErr error) {
	next.pending = marked.pending
	next.pendingUntil = min(max(s.cfg.Now().UnixMilli(), marked.pending), marked.pendingUntil)
	if err := s.put(ctx, tx, next); err != nil {
		if newer {
			return fmt.Errorf("tokenstore: the refresh's outcome is unknown and its new DPoP key could not be saved: %w", err)
		}
		return nil
	}
	if newer {
		saveErr = s.recordChanged(ctx, next)
	}
	s.setScopes(next.Scopes)
	return saveErr
}

// saveOutcome writes next of a refresh whose outcome is known, clearing
// the marker. If the write fails, the outcome is kept for the process,
// and written (clearing the marker) by the next refresh of any Source on
// the key in this process, instead of reading its own marker as a lost
// rotation. Another process finds the marker and resolves it
// (resolveMarker).
func (s *Source) saveOutcome(ctx context.Context, tx tokenstore.Tx, rec, next, marked *Record, newer bool) (saveErr error) {
	if err := s.putRetry(ctx, tx, next); err != nil {
		rotations.put(s.cfg.Key, rec.RefreshToken, next, marked)
		saveErr = fmt.Errorf("tokenstore: the refresh's outcome could not be saved (kept in memory, written next): %w", err)
	} else if newer {
		saveErr = s.recordChanged(ctx, next)
	}
	s.setScopes(next.Scopes)
	return saveErr
}

// classify turns the request's outcome into the token to serve or the
// error to return. The token's expiry and margins count from issued, the
// time before the request was sent, so a slow answer or a slow save never
// makes a token look longer-lived than the server made it.
func (s *Source) classify(ctx context.Context, tx tokenstore.Tx, rec *Record, res *Result, ferr, saveErr error, issued time.Time) (*entry, error) {
	switch {
	case ferr != nil && errors.Is(ferr, tokenstore.ErrLoginRequired):
		if rec == nil {
			s.forget()
			return nil, loginRequired(ferr)
		}
		return nil, s.deleteRecord(ctx, tx, ferr)
	case ferr != nil && saveErr != nil:
		return nil, errors.Join(ferr, saveErr)
	case ferr != nil:
		return nil, ferr
	case saveErr != nil:
		return nil, saveErr
	case res == nil || res.Token == nil || res.Token.AccessToken == "":
		return nil, errors.New("tokenstore: the token response has no access token")
	}
	tok := *res.Token
	if tok.ExpiresIn > 0 {
		if exp := issued.Add(time.Duration(tok.ExpiresIn) * time.Second); tok.Expiry.IsZero() || exp.Before(tok.Expiry) {
			tok.Expiry = exp
		}
	}
	e := s.newEntry(&tok, issued)
	if !s.cfg.Now().Round(0).Before(e.blockAt) {
		return nil, errors.New("tokenstore: the token response holds an expired access token")
	}
	return e, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// mergeCancel returns a context with a's deadline and values that is
// also cancelled, with its cause, when b is cancelled for a reason other
// than its own deadline (a store that ended the transaction because its
// lease is surely lost).
func mergeCancel(a, b context.Context) context.Context {
	c, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() {
		if cause := context.Cause(b); !errors.Is(cause, context.DeadlineExceeded) {
			cancel(cause)
		}
	})
	context.AfterFunc(c, func() { stop() })
	return c
}

// fetch calls the FetchFunc and turns a panic into an error matching
// ErrPanic; whatever the FetchFunc handed over before it is kept in r.
func (s *Source) fetch(ctx context.Context, r *Refresh) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w (in the token request): %T", ErrPanic, p)
		}
	}()
	return s.cfg.Fetch(ctx, r)
}

// recordChanged calls OnRecordChange, if set, recovering a panic.
func (s *Source) recordChanged(ctx context.Context, rec *Record) (err error) {
	if s.cfg.OnRecordChange == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w (in OnRecordChange): %T", ErrPanic, p)
		}
	}()
	if err := s.cfg.OnRecordChange(ctx, rec.clone()); err != nil {
		return Transient(fmt.Errorf("tokenstore: OnRecordChange: %w", err))
	}
	return nil
}

// putRetry writes rec, retrying a store that is unavailable with backoff
// (50 ms doubling to 1 s) until it lands, ctx ends, or the store says the
// transaction is over (ErrLocked: a lease surely lost).
func (s *Source) putRetry(ctx context.Context, tx tokenstore.Tx, rec *Record) error {
	wait := 50 * time.Millisecond
	for {
		err := s.put(ctx, tx, rec)
		if err == nil || !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokenstore.ErrLocked) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// deleteRecord deletes the record after invalid_grant (or an unusable
// rotation) and returns the login-required error for cause.
func (s *Source) deleteRecord(ctx context.Context, tx tokenstore.Tx, cause error) error {
	s.forget()
	if err := tx.Delete(ctx); err != nil {
		return errors.Join(loginRequired(cause), fmt.Errorf("tokenstore: deleting the invalid refresh token: %w", err))
	}
	return loginRequired(cause)
}

// put writes rec; a store that fails to take it is a temporary failure
// (store unavailability), whatever its error says.
func (s *Source) put(ctx context.Context, tx tokenstore.Tx, rec *Record) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if err := tx.Put(ctx, b); err != nil {
		if isTemporary(err) {
			return err
		}
		return Transient(err)
	}
	return nil
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

// settle waits for the refresh in flight, if any, until ctx ends, then
// flushes (see Flush). The Source stays usable: a Pool settles the Sources
// it lets go of (eviction, replacement), which a request may still hold.
func (s *Source) settle(ctx context.Context) error {
	s.mu.Lock()
	f := s.flight
	s.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("tokenstore: waiting for the refresh in flight: %w", context.Cause(ctx))
		}
	}
	return s.Flush(ctx)
}

// Flush writes a rotation this process holds unsaved for the Source's key,
// if any, in one Store transaction (retrying an unavailable store until ctx
// ends). Nothing unsaved is not an error. Safe for concurrent use.
func (s *Source) Flush(ctx context.Context) error {
	if s == nil || s.cfg.Fetch == nil || s.cfg.Store == nil || !rotations.has(s.cfg.Key) {
		return nil
	}
	return s.store.Update(ctx, s.cfg.Key, func(ctx context.Context, tx tokenstore.Tx) error {
		b, err := tx.Get(ctx)
		if err != nil {
			if errors.Is(err, tokenstore.ErrNotFound) {
				rotations.dropKey(s.cfg.Key) // logged out meanwhile
				return nil
			}
			return err
		}
		rec, err := decodeRecord(b)
		if err != nil {
			return err
		}
		next := rotations.heldFor(s.cfg.Key, rec)
		if next == nil {
			rotations.dropKey(s.cfg.Key) // the store moved on (another holder, a new login)
			return nil
		}
		if err := s.putRetry(ctx, tx, next); err != nil {
			return err
		}
		rotations.drop(s.cfg.Key, rec.RefreshToken)
		if next.Generation == rec.Generation {
			return nil // only the marker was cleared
		}
		return s.recordChanged(ctx, next)
	})
}

// rotations holds, for the whole process, the records whose write failed
// after the server rotated: for a store key and the refresh token the store
// still holds (spent at the server), the record to write instead. Any
// Source on that key (the one that fetched, another one, one created after
// an eviction) writes it on its next transaction, and never sends the
// spent token. Tokens are compared by SHA-256. It also holds outcomes that
// keep the stored token (only this process's marker is to be cleared).
var rotations = &rotationSet{m: map[string]map[[32]byte]*heldOutcome{}}

type rotationSet struct {
	mu sync.Mutex
	m  map[string]map[[32]byte]*heldOutcome
}

// heldOutcome is a refresh's outcome this process could not write: next,
// the record to write, and the marker this process wrote for that refresh
// (pending, pendingUntil; zero when it wrote none).
type heldOutcome struct {
	next                  *Record
	pending, pendingUntil int64
}

// put holds next for the record whose refresh token is base; marked is the
// record with the marker this process wrote for the refresh (nil: none).
func (r *rotationSet) put(key, base string, next, marked *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[key] == nil {
		r.m[key] = map[[32]byte]*heldOutcome{}
	}
	h := &heldOutcome{next: next.clone()}
	if marked != nil {
		h.pending, h.pendingUntil = marked.pending, marked.pendingUntil
	}
	r.m[key][sha256.Sum256([]byte(base))] = h
}

// heldFor returns the record to write over stored, the record in the
// store, or nil. A held outcome for stored's refresh token is written when
// it rotated (the stored token is spent, whatever marked the record
// since), or when the record carries no marker or this process's own. One
// that keeps the token while the record carries another holder's marker
// is dropped: that holder's request, whose outcome is unknown, may have
// spent the token, and its marker is resolved as any other
// (resolveMarker); clearing it would send the token again.
func (r *rotationSet) heldFor(key string, stored *Record) *Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := sha256.Sum256([]byte(stored.RefreshToken))
	h := r.m[key][base]
	switch {
	case h == nil:
		return nil
	case h.next.RefreshToken != stored.RefreshToken, stored.pending == 0,
		stored.pending == h.pending && stored.pendingUntil == h.pendingUntil:
		return h.next.clone()
	}
	delete(r.m[key], base)
	if len(r.m[key]) == 0 {
		delete(r.m, key)
	}
	return nil
}

func (r *rotationSet) has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m[key]) > 0
}

func (r *rotationSet) drop(key, base string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[key], sha256.Sum256([]byte(base)))
	if len(r.m[key]) == 0 {
		delete(r.m, key)
	}
}

func (r *rotationSet) dropKey(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, key)
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

// String implements fmt.Stringer; it never shows a token.
func (s *Source) String() string { return "tokenstore.Source{" + safetext.Redacted + "}" }

// GoString implements fmt.GoStringer; it never shows a token.
func (s *Source) GoString() string { return s.String() }

// Format implements fmt.Formatter; no verb shows a token.
func (s *Source) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Source") }

// LogValue implements slog.LogValuer; it never shows a token.
func (s *Source) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Handle is embedded (unexported, through an alias) in the public type
// that wraps a Source, so that SourceOf finds the Source behind it without
// an exported method on that type.
type Handle struct{ s *Source }

// NewHandle returns the Handle of s.
func NewHandle(s *Source) Handle { return Handle{s} }

func (h Handle) engineSource() *Source { return h.s }

// SourceOf returns the Source behind v: v itself, or the Source of a type
// that embeds a Handle; nil for any other token source.
func SourceOf(v any) *Source {
	switch v := v.(type) {
	case *Source:
		return v
	case interface{ engineSource() *Source }:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil // a nil wrapper: nothing behind it
		}
		return v.engineSource()
	}
	return nil
}
