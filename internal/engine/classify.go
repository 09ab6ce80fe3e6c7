package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

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
