package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/seal"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = seal.KeySize

// Key is one sealing key: an id stored in clear beside each value it seals,
// and 32 secret bytes. A Key redacts its secret under every fmt verb, slog
// and JSON.
type Key struct {
	// ID names the key in the key_id column: 1 to 64 characters from
	// [A-Za-z0-9._-]. Never reuse an id for another secret.
	ID string
	// Secret is the AES-256 key (KeySize bytes from crypto/rand).
	Secret []byte
}

// String implements fmt.Stringer; it shows the id only.
func (k Key) String() string { return "sqlstore.Key{ID:" + k.ID + ", Secret:redacted}" }

// GoString implements fmt.GoStringer; it shows the id only.
func (k Key) GoString() string { return k.String() }

// Format implements fmt.Formatter; no verb shows the secret.
func (k Key) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer; it shows the id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON shows the id only.
func (k Key) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":` + fmt.Sprintf("%q", k.ID) + `,"secret":"redacted"}`), nil
}

// KeySource supplies the sealing keys, for example from a KMS that unwraps
// data keys: the first key seals, every key opens. New calls Keys once; to
// rotate, restart with the new key first and run Reseal. Implementations
// are called from one goroutine at a time.
type KeySource interface {
	Keys(ctx context.Context) ([]Key, error)
}

// EnvKeys is a KeySource reading the named environment variable, which
// holds keys as "id:base64" items separated by commas or white space, the
// sealing key first (standard or URL-safe base64 of 32 bytes, padding
// optional).
type EnvKeys string

// Keys implements KeySource.
func (e EnvKeys) Keys(context.Context) ([]Key, error) {
	v, ok := os.LookupEnv(string(e))
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("sqlstore: environment variable %s holds no keys", string(e))
	}
	return ParseKeys(v)
}

// FileKeys is a KeySource reading a file in the format of EnvKeys (one key
// a line is customary). The file must be a regular file, not a symlink, with
// no permission for group or others (0600 or 0400); otherwise Keys returns
// an error matching tokenstore.ErrInsecurePermissions.
type FileKeys string

// Keys implements KeySource.
func (p FileKeys) Keys(context.Context) ([]Key, error) {
	fi, err := os.Lstat(string(p))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: key file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s must be a regular file of mode 0600",
			tokenstore.ErrInsecurePermissions, string(p))
	}
	b, err := os.ReadFile(string(p))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: key file: %w", err)
	}
	if len(b) > 64<<10 {
		return nil, errors.New("sqlstore: key file too large")
	}
	return ParseKeys(string(b))
}

// ParseKeys parses "id:base64" items separated by commas or white space,
// the sealing key first. The error never contains key material.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, item := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		// Errors name the item's position, never its text: an item
		// written the wrong way round ("<base64>:id") has the key
		// material where the id should be.
		id, b64, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("sqlstore: key item %d is not id:base64", len(keys)+1)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("sqlstore: key item %d: the id before the colon must be 1-64 characters from [A-Za-z0-9._-] (is the item written id:base64?)", len(keys)+1)
		}
		secret, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: key item %d: %w (is the item written id:base64?)", len(keys)+1, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if _, err := newSealer(keys); err != nil {
		return nil, err
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("key must be %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("key is not base64")
}

// NewKey returns a Key with the given id and a fresh secret from
// crypto/rand, and its "id:base64" text for EnvKeys or FileKeys.
func NewKey(id string) (Key, string, error) {
	if !validKeyID(id) {
		return Key{}, "", errors.New("sqlstore: NewKey: the id must be 1-64 characters from [A-Za-z0-9._-]")
	}
	secret, err := seal.NewKey()
	if err != nil {
		return Key{}, "", fmt.Errorf("sqlstore: %w", err)
	}
	return Key{ID: id, Secret: secret}, id + ":" + base64.StdEncoding.EncodeToString(secret), nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// cleanID makes an id read from the database or a key source safe to put in
// an error string.
func cleanID(id string) string {
	if len(id) > 64 {
		id = id[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return '?'
		}
		return r
	}, id)
}

// OpenError means a stored value did not open. Missing is true when its key
// id is not in the key list (restore the key, or log the user in again);
// false when the value failed authentication under that key: it was moved
// from another row, tampered with, or sealed under another secret that
// reused the id. The record is left as it is; it is never deleted for this.
// Match with errors.As.
type OpenError struct {
	// KeyID is the id stored with the value (cleaned for printing).
	KeyID   string
	Missing bool
}

func (e *OpenError) Error() string {
	if e.Missing {
		return fmt.Sprintf("sqlstore: record sealed under key %q, which is not in the key list", e.KeyID)
	}
	return fmt.Sprintf("sqlstore: record does not open under key %q (moved from another row or tampered with)", e.KeyID)
}

// sealer seals vault rows with the module's one AES-256-GCM sealer
// (internal/seal): the sealed column is a format byte, the 12-byte GCM
// nonce, then the ciphertext and its 16-byte tag. The key id column names
// the key that opens a row.
type sealer struct {
	ids []string       // in list order: ids[0] seals
	idx map[string]int // key id -> position in the list
	s   *seal.Sealer
}

func newSealer(keys []Key) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("sqlstore: no sealing keys")
	}
	s := &sealer{idx: make(map[string]int, len(keys))}
	secrets := make([][]byte, 0, len(keys))
	// Errors name the key's position in the list, never its id or secret
	// (a key source that swapped them would print key material).
	for i, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("sqlstore: key %d of the list: the id must be 1-64 characters from [A-Za-z0-9._-]", i+1)
		}
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("sqlstore: key %d of the list: the secret must be %d bytes, not %d", i+1, KeySize, len(k.Secret))
		}
		if _, dup := s.idx[k.ID]; dup {
			return nil, fmt.Errorf("sqlstore: key %d of the list: its id is listed twice", i+1)
		}
		s.ids = append(s.ids, k.ID)
		s.idx[k.ID] = i
		secrets = append(secrets, k.Secret)
	}
	var err error
	if s.s, err = seal.New(secrets); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return s, nil
}

// additionalData binds a sealed value to its row: the table, the row's key
// hash, its version and the key id, each length-prefixed.
func additionalData(table, keyHash string, version int64, keyID string) []byte {
	ad := make([]byte, 0, 64+len(table)+len(keyHash)+len(keyID))
	ad = append(ad, "oauthsafe/sqlstore/v1"...)
	for _, p := range []string{table, keyHash, keyID} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(p)))
		ad = append(ad, p...)
	}
	return binary.BigEndian.AppendUint64(ad, uint64(version))
}

// seal seals plaintext under the first key for the row (table, keyHash) at
// version.
func (s *sealer) seal(table, keyHash string, version int64, plaintext []byte) (keyID string, sealed []byte) {
	keyID = s.ids[0]
	return keyID, s.s.Seal(plaintext, additionalData(table, keyHash, version, keyID))
}

// open opens a value read from the row (table, keyHash) at version. Any
// defect is an *OpenError, or tokenstore.ErrCorrupt for a malformed value.
func (s *sealer) open(table, keyHash string, version int64, keyID string, sealed []byte) ([]byte, error) {
	i, ok := s.idx[keyID]
	if !ok {
		return nil, &OpenError{KeyID: cleanID(keyID), Missing: true}
	}
	if len(sealed) < seal.Overhead || sealed[0] != 1 {
		return nil, fmt.Errorf("%w: sealed value of %d bytes is malformed", tokenstore.ErrCorrupt, len(sealed))
	}
	pt, err := s.s.Open(i, sealed, additionalData(table, keyHash, version, keyID))
	if err != nil {
		return nil, &OpenError{KeyID: keyID}
	}
	return pt, nil
}
