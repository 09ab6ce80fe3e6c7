package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

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
