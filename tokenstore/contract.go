package tokenstore

import (
	"context"
	"errors"
)

// Store keeps one record (opaque bytes, at most 1 MiB) per key and
// grants exclusive access to one key's record for the length of a
// transaction, across every goroutine, process and replica that shares the
// store. Implementations must be safe for concurrent use and document how
// they exclude (mutex, file lock, database lease) and their bounds.
type Store interface {
	// Get returns key's record, or an error matching ErrNotFound. It takes
	// no lock and may return a record that a running transaction is about
	// to replace; use it for status displays, never to decide a refresh.
	Get(ctx context.Context, key string) ([]byte, error)
	// Update runs fn with exclusive access to key's record. It waits for
	// access until ctx ends or the store's own bound passes; then it
	// returns an error matching ErrLocked and fn does not run. A holder
	// that dies (a process killed inside fn) releases access: at once for
	// a file lock or a database connection, or when its lease lapses.
	// Writes made through tx are kept when fn returns an error: Update
	// returns fn's error (joined with any failure to release).
	Update(ctx context.Context, key string, fn func(ctx context.Context, tx Tx) error) error
}

// Tx is one key's record inside Store.Update. It is valid only while fn
// runs and is not safe for concurrent use.
type Tx interface {
	// Get returns the record as last written in this transaction, or as it
	// was when the transaction began; ErrNotFound if there is none.
	Get(ctx context.Context) ([]byte, error)
	// Put replaces the record. When Put returns nil the value is durable:
	// a process killed right after keeps it. An error means the record is
	// unchanged as far as the store can tell. A store whose write may
	// commit with its acknowledgement lost (a database) settles that
	// before the transaction goes on: the next Get or Put reads the record
	// back first, and fails while it cannot, so Get never returns less
	// than what is stored. The engine reads the record back after a failed
	// Put of its pending marker.
	Put(ctx context.Context, value []byte) error
	// Delete removes the record (nil if there is none), durably as Put.
	Delete(ctx context.Context) error
}

// A Tx whose exclusive access is a lease that lapses unless renewed (a
// database lease, as tokenstore/sqlstore holds) must also have the method
//
//	LeaseDeadline() time.Time
//
// returning the time by which the lease surely lapses unless a renewal
// lands. The token engine reads it and ends its token request before
// then, so that no other holder can read the record while a request with
// its refresh token is in flight (S29). A lock held until release (a
// mutex, a file lock) needs no such method.

// ErrLocked means Update could not get exclusive access to a record within
// the store's bound (another holder kept it). The record is unchanged; the
// engine treats it as a temporary failure.
var ErrLocked = errors.New("tokenstore: record is locked by another holder")
