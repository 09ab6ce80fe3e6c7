package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

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
