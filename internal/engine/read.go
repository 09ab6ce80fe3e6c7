package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

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
