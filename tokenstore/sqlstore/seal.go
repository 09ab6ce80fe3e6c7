package sqlstore

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/seal"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// keySize is the size of a sealing key: AES-256.
const keySize = seal.KeySize

// sealingKey is one key of Config.Keys: an id stored in clear beside each
// value it seals, and keySize secret bytes.
type sealingKey struct {
	id     string
	secret []byte
}

// parseKeys parses Config.Keys: "id:base64" items separated by commas or
// white space, the sealing key first. The error never contains key
// material and matches ErrConfig.
func parseKeys(s string) ([]sealingKey, error) {
	var keys []sealingKey
	for _, item := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		// Errors name the item's position, never its text: an item
		// written the wrong way round ("<base64>:id") has the key
		// material where the id should be.
		id, b64, ok := strings.Cut(item, ":")
		if !ok {
			return nil, cfgerr.New("sqlstore", "Keys: key item %d is not id:base64", len(keys)+1)
		}
		if !validKeyID(id) {
			return nil, cfgerr.New("sqlstore", "Keys: key item %d: the id before the colon must be 1-64 characters from [A-Za-z0-9._-] (is the item written id:base64?)", len(keys)+1)
		}
		secret, err := decodeKey(b64)
		if err != nil {
			return nil, cfgerr.New("sqlstore", "Keys: key item %d: %v (is the item written id:base64?)", len(keys)+1, err)
		}
		keys = append(keys, sealingKey{id: id, secret: secret})
	}
	if _, err := newSealer(keys); err != nil {
		return nil, err
	}
	return keys, nil
}

var errNotBase64 = errors.New("key is not base64")

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != keySize {
				return nil, fmt.Errorf("key must be %d bytes, got %d", keySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errNotBase64
}

// NewSealingKey returns a fresh sealing key from crypto/rand as the
// "id:base64" item Config.Keys reads (32 bytes, standard base64). Keep it
// where the deployment keeps its secrets (a 0600 file, the environment, a
// KMS), and put it first in the list to rotate it in (see Store.Reseal).
// The id must be 1 to 64 characters from [A-Za-z0-9._-]; it is stored in
// clear beside each value the key seals, and must never be reused for
// another key.
func NewSealingKey(id string) (secret.Value, error) {
	if !validKeyID(id) {
		return secret.Value{}, cfgerr.New("sqlstore", "NewSealingKey: the id must be 1-64 characters from [A-Za-z0-9._-]")
	}
	b, err := seal.NewKey()
	if err != nil {
		return secret.Value{}, fmt.Errorf("sqlstore: %w", err)
	}
	return secret.FromReader(strings.NewReader(id + ":" + base64.StdEncoding.EncodeToString(b)))
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

func newSealer(keys []sealingKey) (*sealer, error) {
	if len(keys) == 0 {
		return nil, cfgerr.New("sqlstore", "Keys holds no sealing key")
	}
	s := &sealer{idx: make(map[string]int, len(keys))}
	secrets := make([][]byte, 0, len(keys))
	// Errors name the key's position in the list, never its id or secret
	// (a key source that swapped them would print key material).
	for i, k := range keys {
		if !validKeyID(k.id) {
			return nil, cfgerr.New("sqlstore", "key %d of the list: the id must be 1-64 characters from [A-Za-z0-9._-]", i+1)
		}
		if len(k.secret) != keySize {
			return nil, cfgerr.New("sqlstore", "key %d of the list: the secret must be %d bytes, not %d", i+1, keySize, len(k.secret))
		}
		if _, dup := s.idx[k.id]; dup {
			return nil, cfgerr.New("sqlstore", "key %d of the list: its id is listed twice", i+1)
		}
		s.ids = append(s.ids, k.id)
		s.idx[k.id] = i
		secrets = append(secrets, k.secret)
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
