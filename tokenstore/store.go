package tokenstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Store holds opaque values under string keys. Implementations must be safe
// for concurrent use. Get returns [ErrNotFound] for a missing key; Delete of
// a missing key returns nil. Every method honours ctx.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

var (
	// ErrNotFound is returned by Store.Get when the key has no value.
	ErrNotFound = errors.New("tokenstore: not found")
	// ErrUnavailable means the backing store (the OS keyring) could not be
	// reached or did not answer in time. It is never followed by a fallback.
	ErrUnavailable = errors.New("tokenstore: store unavailable")
	// ErrTooLarge means a value is larger than the store accepts.
	ErrTooLarge = errors.New("tokenstore: value too large")
	// ErrCorrupt means stored data failed to parse or failed its integrity
	// check.
	ErrCorrupt = errors.New("tokenstore: stored data corrupt")
	// ErrInsecurePermissions means a file or directory is accessible to
	// other users (or is not what it should be, such as a symlink).
	ErrInsecurePermissions = errors.New("tokenstore: insecure file permissions")
	// ErrWrongPassphrase means an EncryptedFile was opened with the wrong
	// passphrase.
	ErrWrongPassphrase = errors.New("tokenstore: wrong passphrase")
	// ErrLoginRequired means the refresh token is no longer valid
	// (invalid_grant) or there is none: the user must log in again. A
	// RefreshFunc reports invalid_grant with an error that satisfies
	// errors.Is(err, ErrLoginRequired).
	ErrLoginRequired = errors.New("tokenstore: login required")
	// ErrRevocationFailed is returned by Logout, joined with the cause,
	// when the server did not confirm revocation. The local copy is
	// deleted anyway.
	ErrRevocationFailed = errors.New("tokenstore: revocation failed")
)

// MaxValueSize is the largest value any Store in this package accepts
// (1 MiB); larger values give ErrTooLarge. Absurd sizes are refused before
// anything is written.
const MaxValueSize = 1 << 20

// Memory is a Store in process memory. The zero value is ready to use and it
// is safe for concurrent use. Values are copied in and out.
type Memory struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string][]byte)
	}
	m.m[key] = bytes.Clone(value)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Keyring)(nil)
	_ Store = (*EncryptedFile)(nil)
)

// Key returns the store key for the refresh token of one account: a hex
// SHA-256 over a length-prefixed encoding of issuer, client id and subject.
// It reveals none of them, and distinct triples never share a key. It is a
// pure function, safe for concurrent use.
func Key(issuer, clientID, subject string) string {
	return deriveKey("oauthsafe/tokenstore/key/v1", issuer, clientID, subject)
}

// ProfileKey is like Key for a named profile, for use before the subject is
// known (before the first login). It is domain-separated from Key, so a
// profile name can never collide with a subject. It is safe for concurrent
// use.
func ProfileKey(issuer, clientID, profile string) string {
	return deriveKey("oauthsafe/tokenstore/profile/v1", issuer, clientID, profile)
}

func deriveKey(domain string, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range append([]string{domain}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// record is what a Source writes to a Store: the refresh token only.
type record struct {
	V            int    `json:"v"`
	RefreshToken string `json:"refresh_token"`
}

const maxRecordSize = 64 << 10

func encodeRecord(refreshToken string) ([]byte, error) {
	if err := checkRefreshToken(refreshToken); err != nil {
		return nil, err
	}
	return json.Marshal(record{V: 1, RefreshToken: refreshToken})
}

// decodeRecord parses a stored record; any defect is ErrCorrupt.
func decodeRecord(b []byte) (string, error) {
	if len(b) > maxRecordSize {
		return "", fmt.Errorf("%w: record too large", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		return "", fmt.Errorf("%w: record is not valid JSON", ErrCorrupt)
	}
	if dec.More() {
		return "", fmt.Errorf("%w: trailing data after record", ErrCorrupt)
	}
	if r.V != 1 {
		return "", fmt.Errorf("%w: unknown record version", ErrCorrupt)
	}
	if err := checkRefreshToken(r.RefreshToken); err != nil {
		return "", fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return r.RefreshToken, nil
}

// checkRefreshToken accepts RFC 6749 VSCHAR strings (%x20-7E) of bounded
// length. The error never contains the token.
func checkRefreshToken(rt string) error {
	if rt == "" || len(rt) > maxRecordSize/2 {
		return errors.New("tokenstore: refresh token is empty or too long")
	}
	for i := 0; i < len(rt); i++ {
		if rt[i] < 0x20 || rt[i] > 0x7e {
			return errors.New("tokenstore: refresh token has characters outside RFC 6749 VSCHAR")
		}
	}
	return nil
}

// SaveRefreshToken writes the refresh token record for key to store. Use it
// after a login, before creating a Source for the same key. It is safe for
// concurrent use if store is.
func SaveRefreshToken(ctx context.Context, store Store, key, refreshToken string) error {
	b, err := encodeRecord(refreshToken)
	if err != nil {
		return err
	}
	return store.Put(ctx, key, b)
}

// LoadRefreshToken reads the refresh token record for key. A missing record
// is ErrNotFound; a malformed one is ErrCorrupt. It is safe for concurrent
// use if store is.
func LoadRefreshToken(ctx context.Context, store Store, key string) (string, error) {
	b, err := store.Get(ctx, key)
	if err != nil {
		return "", err
	}
	return decodeRecord(b)
}

// LogoutConfig says what Logout removes. The zero value of an optional
// field is documented on the field. Logout only reads it.
type LogoutConfig struct {
	// Store holds the refresh token. Required.
	Store Store
	// Key is the store key (see Key and ProfileKey). Required.
	Key string
	// Revoke, if not nil, revokes the refresh token at the server
	// (RFC 7009). nil means the server offers no revocation.
	Revoke func(ctx context.Context, refreshToken string) error
	// LockDir is the cross-process lock directory, as in SourceConfig.
	// "" means the default (see Lock).
	LockDir string
}

// Logout revokes the stored refresh token at the server when cfg.Revoke is
// set, then deletes it from the store even if revocation failed. It holds
// the cross-process refresh lock meanwhile, so no concurrent refresh can
// write the token back. A revocation failure is reported as an error that
// satisfies errors.Is(err, ErrRevocationFailed) and wraps the cause. Nothing
// stored is not an error. It is safe for concurrent use.
func Logout(ctx context.Context, cfg LogoutConfig) error {
	if cfg.Store == nil || cfg.Key == "" {
		return errors.New("tokenstore: Logout needs a Store and a Key")
	}
	unlock, err := Lock(ctx, cfg.LockDir, cfg.Key)
	if err != nil {
		return err
	}
	defer unlock()
	rt, err := LoadRefreshToken(ctx, cfg.Store, cfg.Key)
	var revokeErr error
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil && !errors.Is(err, ErrCorrupt):
		return err
	case err == nil && cfg.Revoke != nil:
		if rerr := cfg.Revoke(ctx, rt); rerr != nil {
			revokeErr = fmt.Errorf("%w (deleted locally): %w", ErrRevocationFailed, rerr)
		}
	}
	if err := cfg.Store.Delete(ctx, cfg.Key); err != nil {
		return errors.Join(revokeErr, err)
	}
	return revokeErr
}

// redacted writes name{redacted} for every fmt verb, so %v, %+v, %#v, %q
// and %s never show what a type holds.
func redacted(f fmt.State, name string) {
	io.WriteString(f, name+"{redacted}")
}

// String implements fmt.Stringer without revealing stored values.
func (m *Memory) String() string { return "tokenstore.Memory{redacted}" }

// GoString implements fmt.GoStringer without revealing stored values.
func (m *Memory) GoString() string { return m.String() }

// Format implements fmt.Formatter without revealing stored values.
func (m *Memory) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Memory") }

// LogValue implements slog.LogValuer without revealing stored values.
func (m *Memory) LogValue() slog.Value { return slog.StringValue(m.String()) }
