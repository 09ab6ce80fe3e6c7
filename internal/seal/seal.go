// Package seal is the module's one AES-256-GCM sealer under a list of
// keys: the first key seals, every key opens, so keys can be rotated. The
// callback package seals pending flows into cookies with it, and
// tokenstore/sqlstore seals vault rows. Each caller binds a sealed value
// to its place with its own additional data.
//
// A sealed value is: version (1 byte, 1) || nonce (12 bytes, from
// crypto/rand) || ciphertext || tag (16 bytes).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the size of a sealing key: AES-256.
const KeySize = 32

// Overhead is what sealing adds to a plaintext.
const Overhead = 1 + 12 + 16

const version = 1

// NewKey returns a fresh KeySize-byte key from crypto/rand.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("crypto/rand: %w", err)
	}
	return k, nil
}

// ErrOpen means a value is malformed, or opens under none of the keys
// tried (another key, other additional data, or tampered with).
var ErrOpen = errors.New("seal: does not open")

// Sealer seals with keys[0] and opens with any key. It is immutable and
// safe for concurrent use.
type Sealer struct {
	aeads []cipher.AEAD
}

// New returns a Sealer for keys, each KeySize bytes. Errors name a key by
// its position in the list (1-based), never by its bytes.
func New(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sealing key")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d of the list is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d of the list: %w", i+1, err)
		}
		a, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("key %d of the list: %w", i+1, err)
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

// Seal seals plaintext under the first key with additional data ad.
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	a := s.aeads[0]
	out := make([]byte, 1, Overhead+len(plaintext))
	out[0] = version
	return a.Seal(out, nil, plaintext, ad)
}

// Open opens sealed with the key at index i of the list, or with every key
// in turn when i is -1. Any defect gives an error matching ErrOpen.
func (s *Sealer) Open(i int, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != version {
		return nil, fmt.Errorf("%w: malformed (%d bytes)", ErrOpen, len(sealed))
	}
	aeads := s.aeads
	if i >= 0 {
		if i >= len(s.aeads) {
			return nil, fmt.Errorf("%w: no key %d", ErrOpen, i)
		}
		aeads = s.aeads[i : i+1]
	}
	for _, a := range aeads {
		if pt, err := a.Open(nil, nil, sealed[1:], ad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrOpen
}
