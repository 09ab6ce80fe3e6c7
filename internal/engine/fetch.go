package engine

import (
	"context"
	"fmt"
	"sync"

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
