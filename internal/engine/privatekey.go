package engine

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// maxPrivateKeySize bounds a PKCS #8 key in a record (an RSA-4096 key is
// about 2.4 KB).
const maxPrivateKeySize = 8 << 10

// PrivateKey is a private key kept in a Record with the refresh token it
// binds: the DPoP key (RFC 9449) of a sender-constrained login, sealed
// with the record by the Store (S27). It holds PKCS #8 DER bytes that
// crypto/x509 parses; the zero value is no key.
//
// Printing a PrivateKey with any fmt verb, slog or JSON shows no key
// material; PKCS8 is the one way out. A PrivateKey is immutable and safe
// for concurrent use.
type PrivateKey struct {
	der []byte // never modified after NewPrivateKey; never handed out
}

// NewPrivateKey returns a PrivateKey holding a copy of pkcs8, a PKCS #8
// DER private key. It fails (with ErrCorrupt for malformed bytes) when the
// bytes do not parse or are larger than a few KB; errors never contain key
// material.
func NewPrivateKey(pkcs8 []byte) (PrivateKey, error) {
	if len(pkcs8) == 0 || len(pkcs8) > maxPrivateKeySize {
		return PrivateKey{}, fmt.Errorf("%w: private key is empty or too large", tokenstore.ErrCorrupt)
	}
	if _, err := x509.ParsePKCS8PrivateKey(pkcs8); err != nil {
		return PrivateKey{}, fmt.Errorf("%w: private key is not PKCS #8", tokenstore.ErrCorrupt)
	}
	return PrivateKey{der: bytes.Clone(pkcs8)}, nil
}

// PKCS8 returns a copy of the key's PKCS #8 DER bytes, nil for the zero
// PrivateKey. Keep them in memory only.
func (k PrivateKey) PKCS8() []byte { return bytes.Clone(k.der) }

// IsZero reports whether k holds no key.
func (k PrivateKey) IsZero() bool { return len(k.der) == 0 }

// Equal reports whether k and o hold the same key bytes.
func (k PrivateKey) Equal(o PrivateKey) bool { return bytes.Equal(k.der, o.der) }

func (k PrivateKey) redact() string {
	if k.IsZero() {
		return "tokenstore.PrivateKey{}"
	}
	return "tokenstore.PrivateKey{" + safetext.Redacted + "}"
}

// Format implements fmt.Formatter; no verb shows key material.
func (k PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.redact()) }

// wireKey is the stored form of a record's DPoP key: {"pkcs8":"<base64>"}.
type wireKey struct {
	PKCS8 []byte `json:"pkcs8"`
}

// encodeKey returns the record field for k; nil for no key.
func encodeKey(k PrivateKey) (json.RawMessage, error) {
	if k.IsZero() {
		return nil, nil
	}
	return json.Marshal(wireKey{PKCS8: k.der})
}

// decodeKey reads the record field; a defect is ErrCorrupt.
func decodeKey(raw json.RawMessage) (PrivateKey, error) {
	if len(raw) == 0 {
		return PrivateKey{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wireKey
	if err := dec.Decode(&w); err != nil {
		return PrivateKey{}, fmt.Errorf("%w: record's DPoP key is not valid JSON", tokenstore.ErrCorrupt)
	}
	return NewPrivateKey(w.PKCS8)
}

// KeyOf returns the PrivateKey of a DPoP key for a Record (S27): the
// zero PrivateKey for nil k.
func KeyOf(k *dpop.Key) (PrivateKey, error) {
	if k == nil {
		return PrivateKey{}, nil
	}
	b, err := k.Marshal()
	if err != nil {
		return PrivateKey{}, errKeyEncoding
	}
	return NewPrivateKey(b)
}

var errKeyEncoding = errors.New("engine: DPoP key cannot be encoded")
