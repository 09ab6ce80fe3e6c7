package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/storekey"
	"github.com/oauthsafe/oauthsafe/internal/storelimit"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"

	"github.com/oauthsafe/oauthsafe/internal/filelock"
)

var (
	// ErrNotFound is returned by Store.Get when the key has no value.
	ErrNotFound = errors.New("tokenstore: not found")
	// ErrUnavailable means the backing store (the OS keyring) could not be
	// reached or did not answer in time. It is never followed by a fallback.
	ErrUnavailable = errors.New("tokenstore: store unavailable")
	// ErrTooLarge means a value is larger than the store accepts: every
	// Store of this module refuses a value over 1 MiB with it, before
	// anything is written.
	ErrTooLarge = errors.New("tokenstore: value too large")
	// ErrCorrupt means stored data failed to parse or failed its integrity
	// check.
	ErrCorrupt = errors.New("tokenstore: stored data corrupt")
	// ErrInsecurePermissions means a file or directory is accessible to
	// other users (or is not what it should be, such as a symlink).
	ErrInsecurePermissions = filelock.ErrInsecure
	// ErrWrongPassphrase means an EncryptedFile was opened with the wrong
	// passphrase.
	ErrWrongPassphrase = errors.New("tokenstore: wrong passphrase")
	// ErrLoginRequired means the refresh token is no longer valid
	// (invalid_grant) or there is none: the user must log in again. A
	// FetchFunc reports invalid_grant with an error that satisfies
	// errors.Is(err, ErrLoginRequired).
	ErrLoginRequired = errors.New("tokenstore: login required")
	// ErrRevocationFailed is returned by Logout, joined with the cause,
	// when the server did not confirm revocation. The local copy is
	// deleted anyway.
	ErrRevocationFailed = errors.New("tokenstore: revocation failed")
)

var (
	_ Store = (*Memory)(nil)
	_ Store = (*EncryptedFile)(nil)
)

// Key returns the store key for the refresh token of one account: a hex
// SHA-256 over a length-prefixed encoding of issuer, client id and subject.
// It reveals none of them, and distinct triples never share a key. It is a
// pure function, safe for concurrent use.
func Key(issuer, clientID, subject string) string {
	return storekey.Derive("oauthsafe/tokenstore/key/v1", issuer, clientID, subject)
}

// ProfileKey is like Key for a named profile, for use before the subject is
// known (before the first login). It is domain-separated from Key, so a
// profile name can never collide with a subject. It is safe for concurrent
// use.
func ProfileKey(issuer, clientID, profile string) string {
	return storekey.Derive("oauthsafe/tokenstore/profile/v1", issuer, clientID, profile)
}

// LogoutConfig says what Logout removes. The zero value of an optional
// field is documented on the field. Logout only reads it.
type LogoutConfig struct {
	// Store holds the record. Required.
	Store Store
	// Key is the store key (see Key and ProfileKey). Required.
	Key string
	// Revoke, if not nil, revokes the refresh token at the server
	// (RFC 7009). nil means the server offers no revocation.
	Revoke func(ctx context.Context, refreshToken string) error
}

// Logout revokes the stored refresh token at the server when cfg.Revoke is
// set, then deletes the record even if revocation failed. It runs as one
// Store.Update, so no concurrent refresh can write the token back. A
// revocation failure is reported as an error that satisfies
// errors.Is(err, ErrRevocationFailed) and wraps the cause. Nothing stored is
// not an error; a value that is not a record of this module is deleted
// without revocation. It is
// safe for concurrent use.
func Logout(ctx context.Context, cfg LogoutConfig) error {
	if cfg.Store == nil || cfg.Key == "" {
		return cfgerr.New("tokenstore", "Logout needs a Store and a Key")
	}
	return cfg.Store.Update(ctx, cfg.Key, func(ctx context.Context, tx Tx) error {
		b, err := tx.Get(ctx)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var revokeErr error
		if rt := storedRefreshToken(b); rt != "" && cfg.Revoke != nil {
			if rerr := cfg.Revoke(ctx, rt); rerr != nil {
				revokeErr = fmt.Errorf("%w (deleted locally): %w", ErrRevocationFailed, rerr)
			}
		}
		if err := tx.Delete(ctx); err != nil {
			return errors.Join(revokeErr, err)
		}
		return revokeErr
	})
}

// redacted writes name{redacted} for every fmt verb, so %v, %+v, %#v, %q
// and %s never show what a type holds.
func redacted(f fmt.State, name string) {
	io.WriteString(f, name+"{"+safetext.Redacted+"}")
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

// storedRefreshToken returns the refresh token of a stored record, as the
// engine writes it (internal/engine: versioned JSON, {"v":2,
// "refresh_token":...}), or "" for a value that is not such a record: an
// unreadable record is deleted without revocation. The token must be RFC
// 6749 VSCHAR, as the engine's own decoder demands.
func storedRefreshToken(b []byte) string {
	var r struct {
		V            int    `json:"v"`
		RefreshToken string `json:"refresh_token"`
	}
	if len(b) > storelimit.MaxValueSize || json.Unmarshal(b, &r) != nil || r.V != 2 {
		return ""
	}
	for i := 0; i < len(r.RefreshToken); i++ {
		if c := r.RefreshToken[i]; c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return r.RefreshToken
}
