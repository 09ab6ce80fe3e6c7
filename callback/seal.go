package callback

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"

	"github.com/oauthsafe/oauthsafe/internal/seal"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// keySize is the size of a cookie sealing key: AES-256.
const keySize = seal.KeySize

// defaultCookiePrefix starts the name of every pending-flow cookie when
// Config.CookiePrefix is "". The __Secure- prefix makes browsers refuse
// the cookie unless it is set with the Secure attribute from an https
// origin.
const defaultCookiePrefix = "__Secure-oauthsafe-"

// Cookie layout. The value is base64url (no padding) of
//
//	version (1 byte) || nonce (12) || AES-256-GCM(plaintext) || tag (16)
//
// with the cookie's name as additional data, so a sealed value moved to
// another cookie name (another flow) does not open. The plaintext is
// encodeFlow's output.
const maxCookieSize = 4096 // what browsers keep per cookie, name included

// sealer seals and opens pending flows with a list of AES-256-GCM keys
// (internal/seal, the module's one sealer): the first seals, every one
// opens. It is immutable and safe for concurrent use.
type sealer struct {
	s *seal.Sealer
}

func newSealer(keys [][]byte) (*sealer, error) {
	s, err := seal.New(keys)
	if err != nil {
		return nil, cfgerr.New("callback", "Keys: %v", err)
	}
	return &sealer{s}, nil
}

// seal encrypts plaintext for the cookie called name.
func (s *sealer) seal(name string, plaintext []byte) string {
	return base64.RawURLEncoding.EncodeToString(s.s.Seal(plaintext, additionalData(name)))
}

// open decrypts the value of the cookie called name. It fails with
// errBadCookie on any malformed, tampered, renamed or foreign value.
func (s *sealer) open(name, value string) ([]byte, error) {
	if len(name)+len(value) > maxCookieSize {
		return nil, fmt.Errorf("%w: too large", errBadCookie)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: malformed", errBadCookie)
		}
	}
	// Strict: one encoding per ciphertext, so only the exact sealed value opens.
	b, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed", errBadCookie)
	}
	pt, err := s.s.Open(-1, b, additionalData(name))
	if err != nil {
		return nil, fmt.Errorf("%w: does not open with any configured key", errBadCookie)
	}
	return pt, nil
}

func additionalData(name string) []byte {
	return append([]byte("oauthsafe/callback/v1\x00"), name...)
}

// stateID is the 128-bit hash of a state that names its flow's cookie (and
// its store key). It reveals nothing about the 256-bit state.
func stateID(state string) string {
	h := sha256.Sum256(append([]byte("oauthsafe/callback/state\x00"), state...))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// flow is what a pending login keeps: the oauthclient flow and where to go
// afterwards.
type flow struct {
	pending  *oauthclient.Pending
	returnTo string
}

// encodeFlow: uvarint(len(returnTo)) || returnTo || Pending.MarshalBinary().
func encodeFlow(f flow) ([]byte, error) {
	pb, err := f.pending.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("callback: encode pending flow: %w", err)
	}
	out := binary.AppendUvarint(make([]byte, 0, 2+len(f.returnTo)+len(pb)), uint64(len(f.returnTo)))
	out = append(out, f.returnTo...)
	return append(out, pb...), nil
}

var errBadFlow = errors.New("callback: malformed pending flow")

// decodeFlow reverses encodeFlow. The return-to path is checked again, so
// even a store that was written by something else cannot redirect off-site.
func decodeFlow(b []byte) (flow, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxReturnTo || uint64(len(b)-k) < n {
		return flow{}, errBadFlow
	}
	rt := string(b[k : k+int(n)])
	if rt != "" && checkReturnTo(rt) != nil {
		return flow{}, errBadFlow
	}
	p := new(oauthclient.Pending)
	if err := p.UnmarshalBinary(b[k+int(n):]); err != nil {
		return flow{}, errBadFlow
	}
	return flow{pending: p, returnTo: rt}, nil
}
