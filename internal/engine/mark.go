package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// This file is the pending marker: written into the record before a token
// request, cleared with its outcome, and resolved by the next holder when
// the outcome never came (S29).

// ActiveCheck asks the provider whether refreshToken is still active: RFC
// 7662 token introspection by the client the token was issued to. It
// returns (true, nil) only when the provider answered active:true,
// (false, nil) only when it answered active:false, and an error for
// anything else (no answer, a refusal, an answer it could not read),
// marked with Transient when it may go away by itself (a network failure,
// a timeout, a 5xx or 429): the Source asks again later, for a minute. It
// must present the token to the introspection endpoint only, never to the
// token endpoint. oauthclient wires one to the provider's
// introspection_endpoint (TokenSourceConfig.ResolveMarkersByIntrospection);
// tests pass their own.
type ActiveCheck func(ctx context.Context, refreshToken string) (active bool, err error)

// markerSettle is how long after a marked request surely ended at the
// client (its deadline passed, or it failed) the Source waits before it
// asks the provider about the token: the time a provider may still take
// to process a request whose client gave up.
const markerSettle = 5 * time.Second

// introspectTimeout bounds one ActiveCheck.
const introspectTimeout = 10 * time.Second

// markerAskWindow is how long after a marker could first be resolved an
// unanswered introspection (a timeout, a 5xx: temporary) is retried, with
// backoff, before the Source gives up as without the check.
const markerAskWindow = time.Minute

// errMarkerYoung is the cause of the *TemporaryError returned while an
// interrupted refresh is too recent to be resolved.
var errMarkerYoung = errors.New("tokenstore: a refresh of this record was interrupted moments ago; its outcome is settled once the request has surely ended")

// markerEnded is when the marked request surely ended at the client: the
// writer's deadline, or for a marker of an earlier version its start plus
// this Source's RefreshTimeout.
func (s *Source) markerEnded(rec *Record) time.Time {
	if rec.pendingUntil != 0 {
		return time.UnixMilli(rec.pendingUntil)
	}
	return time.UnixMilli(rec.pending).Add(s.cfg.RefreshTimeout)
}

// resolveMarker decides a record left marked by a refresh whose outcome
// was never written (its holder was killed, lost the store, or lost the
// answer). nil means the stored token may be sent: the provider says it
// is still active (the request never arrived or was never processed), or
// it is within ReuseGrace. Otherwise ErrRotationLost, or a
// *TemporaryError while the marked request is too recent to ask about.
func (s *Source) resolveMarker(ctx context.Context, rec *Record) error {
	now := s.cfg.Now()
	age := now.Sub(time.UnixMilli(rec.pending))
	inGrace := s.cfg.ReuseGrace > 0 && age >= 0 && age < s.cfg.ReuseGrace
	if check := s.cfg.ResolveMarkersByIntrospection; check != nil {
		settled := s.markerEnded(rec).Add(markerSettle)
		if now.Before(settled) {
			if inGrace {
				return nil
			}
			return &tokenstore.TemporaryError{Err: errMarkerYoung, RetryAfter: settled}
		}
		active, err := s.introspect(ctx, check, rec.RefreshToken)
		switch {
		case err == nil && active:
			return nil // the request never reached the provider
		case err == nil && !inGrace:
			s.forget()
			return ErrRotationLost
		case err != nil && !inGrace && isTemporary(err) && now.Before(settled.Add(markerAskWindow)):
			// No answer yet (a timeout, a 5xx): ask again later rather
			// than give the user up to a passing outage.
			return err
		}
		// Refused, or no answer for too long: as without the check.
	}
	if inGrace {
		return nil
	}
	s.forget()
	return ErrRotationLost
}

// introspect runs check within introspectTimeout (and ctx, which a lease
// store cancels when its lease is surely lost), recovering a panic as an
// error. Nothing it does can spend the token, so it need not end before
// the lease could lapse: the request that follows is bounded afresh.
func (s *Source) introspect(ctx context.Context, check ActiveCheck, rt string) (active bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, introspectTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			active, err = false, fmt.Errorf("%w (in the introspection): %T", ErrPanic, p)
		}
	}()
	return check(cctx, rt)
}

// mark writes the pending marker before the token request: m is the
// record with the marker. A write whose outcome is unknown (it committed
// and its acknowledgement was lost) is settled by reading the record back
// under the same exclusive access: a marker that landed lets the request
// go; one that did not, or cannot be read, stops it, and nothing is sent.
func (s *Source) mark(ctx context.Context, tx tokenstore.Tx, m *Record) error {
	err := s.put(ctx, tx, m)
	if err == nil {
		return nil
	}
	b, rerr := tx.Get(ctx)
	var back *Record
	if rerr == nil {
		back, rerr = decodeRecord(b)
	}
	switch {
	case rerr == nil && back.pending == m.pending && back.pendingUntil == m.pendingUntil && back.RefreshToken == m.RefreshToken:
		return nil // it landed: only the acknowledgement was lost
	case rerr == nil:
		return fmt.Errorf("tokenstore: marking the refresh in the store failed; the token request was not sent: %w", err)
	}
	// A marker may be left, for a request that was never sent: this
	// process's next refresh on the key writes the record without it
	// (Flush too); another process resolves it (resolveMarker).
	clear := m.clone()
	clear.pending, clear.pendingUntil = 0, 0
	rotations.put(s.cfg.Key, m.RefreshToken, clear, m)
	return fmt.Errorf("tokenstore: marking the refresh failed and could not be read back, so a marker may be left; the token request was not sent (this process clears the marker on its next refresh): %w", errors.Join(err, rerr))
}
