package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

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

// refreshTx is one refresh inside the Store transaction, in five steps,
// each in the file named for it: read the record (read.go: writing a
// rotation this process holds, resolving a marker an interrupted refresh
// left), mark it (mark.go), fetch (fetch.go), write the outcome
// (outcome.go), classify it (classify.go). A rotation that could not be
// written is held for the process in rotations.go.
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
