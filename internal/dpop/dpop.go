package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/internal/challenge"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"golang.org/x/oauth2"
)

// This file is the client side of DPoP (RFC 9449): the proof key, the
// proofs, the server nonces. The test server's verifier
// (oauthtest) is written separately from the RFC; nothing here is
// shared with it.

// proofType is the typ header of every proof (RFC 9449 §4.2).
const proofType = "dpop+jwt"

// algs are the proof algorithms this client can sign with, in order
// of preference. ES256 is the default (RFC 9449 §4.2 names it as the one
// to support); only asymmetric algorithms are ever used.
var algs = []string{string(jose.ES256)}

// Limits on a server nonce (RFC 9449 §8: nonce = 1*NQCHAR). A nonce longer
// than maxNonceLen, or with any other byte, is refused: it is not stored
// and never sent back.
const (
	maxNonceLen    = 512
	maxNonceOrigin = 64 // origins whose nonce a store keeps
)

// ErrDPoP matches every refusal of DPoP input from a server: a DPoP-Nonce
// that is too long or not NQCHAR, a token_type DPoP to a request that sent
// no proof, a Bearer answer to a DPoP request (unless
// Config.AllowBearerDowngrade), a second use_dpop_nonce after the one retry.
var ErrDPoP = errors.New("oauthsafe: DPoP refused")

// Key is one proof-of-possession key: an ECDSA P-256 key from
// crypto/rand. It is immutable and safe for concurrent use. It prints as
// redacted under every fmt verb, slog and JSON; marshalKey is the one way
// out, for the record sealed with the refresh token it binds (S27).
type Key struct {
	priv   *ecdsa.PrivateKey
	jkt    string // RFC 7638 thumbprint of the public key
	header string // base64url of the constant protected header (typ, alg, jwk)
}

func NewKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: DPoP key: %w", err)
	}
	return keyFrom(priv)
}

func keyFrom(priv *ecdsa.PrivateKey) (*Key, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, errors.New("dpop: DPoP key must be ECDSA P-256")
	}
	jkt, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	jwk, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).MarshalJSON()
	if err != nil {
		return nil, err
	}
	hdr, err := json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{proofType, string(jose.ES256), jwk})
	if err != nil {
		return nil, err
	}
	return &Key{
		priv:   priv,
		jkt:    jkt,
		header: base64.RawURLEncoding.EncodeToString(hdr),
	}, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url: the jkt of RFC 9449 §6.1 and the dpop_jkt of §10.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// marshalKey returns the private key (PKCS #8 DER) for a sealed store.
func (k *Key) Marshal() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.priv)
}

// StoredKeys turns a record's key into a *Key, reusing the last one
// while the record holds the same key (a refresh happens once per token
// lifetime; the parse is kept off it anyway). Safe for concurrent use.
type StoredKeys struct {
	mu   sync.Mutex
	last []byte // PKCS #8
	key  *Key
}

// Get returns the key of a record's PKCS #8 bytes: nil for none, and an
// error (no key material in it) for a key this client cannot sign with.
func (s *StoredKeys) Get(pkcs8 []byte) (*Key, error) {
	if len(pkcs8) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil && bytes.Equal(s.last, pkcs8) {
		return s.key, nil
	}
	k, err := Unmarshal(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDPoP, err)
	}
	s.last, s.key = bytes.Clone(pkcs8), k
	return k, nil
}

// Unmarshal restores a key written by marshalKey. Errors never
// contain key material.
func Unmarshal(b []byte) (*Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, errors.New("dpop: stored DPoP key is malformed")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("dpop: stored DPoP key is not ECDSA")
	}
	return keyFrom(ec)
}

func (k *Key) redact() string {
	if k == nil {
		return "oauthclient.Key{}"
	}
	return "oauthclient.Key{alg=ES256, jkt=" + k.jkt + ", private=" + safetext.Redacted + "}"
}

// String redacts the key.
func (k *Key) String() string { return k.redact() }

// GoString redacts the key.
func (k *Key) GoString() string { return k.redact() }

// Format redacts the key under every verb.
func (k *Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.redact()) }

// LogValue redacts the key.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.redact()) }

// MarshalJSON redacts the key.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(k.redact()) }

// ProofClaims are the claims of a proof (RFC 9449 §4.2).
type ProofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// proof returns a fresh proof for one request: a new jti (128 bits from
// crypto/rand), iat = now, htm and htu (the URL without query and
// fragment), ath when accessToken is set, nonce when the server gave one.
func (k *Key) Proof(method string, u *url.URL, ath, nonce string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("dpop: crypto/rand: %w", err)
	}
	payload, err := json.Marshal(ProofClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(jti[:]),
		HTM:   method,
		HTU:   htu(u),
		IAT:   now.Unix(),
		ATH:   ath,
		Nonce: nonce,
	})
	if err != nil {
		return "", err
	}
	return k.signCompact(payload)
}

// signCompact signs header.payload with ES256 as a JWS compact
// serialization (the fixed-size r||s of RFC 7518 §3.4). go-jose builds the
// key's JWK and thumbprint, and the tests verify every proof with go-jose;
// the signing itself is done here because go-jose re-encodes the protected
// header, JWK included, for every signature: 45% over a bare ES256
// signature per proof, against 2% here (BenchmarkDPoPProof).
func (k *Key) signCompact(payload []byte) (string, error) {
	n := len(k.header) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
	buf := make([]byte, 0, n+1+86)
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	sum := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("dpop: DPoP proof signature: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// htu is the proof's target URI: scheme and host in lower case, the path,
// and neither query nor fragment (RFC 9449 §4.2).
func htu(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + p
}

// AccessTokenHash is ath: base64url(SHA-256(ASCII access token)).
func AccessTokenHash(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidNonce: 1*NQCHAR (%x21 / %x23-5B / %x5D-7E), at most maxNonceLen bytes.
func ValidNonce(n string) bool {
	if n == "" || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// responseNonce reads the DPoP-Nonce header of a response. ok is false
// when there is none; err (matching ErrDPoP) when it is repeated, too long
// or not NQCHAR, so that it is never stored nor sent back.
func responseNonce(h http.Header) (nonce string, ok bool, err error) {
	vs := h.Values("Dpop-Nonce")
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", false, fmt.Errorf("%w: repeated DPoP-Nonce header", ErrDPoP)
	case !ValidNonce(vs[0]):
		return "", false, fmt.Errorf("%w: DPoP-Nonce header is empty, longer than %d bytes or has characters outside NQCHAR", ErrDPoP, maxNonceLen)
	}
	return vs[0], true, nil
}

// Challenge reports whether h carries a DPoP challenge (RFC 9449
// §7.1) and its error code.
func Challenge(h http.Header) (errCode string, ok bool) {
	c, ok := challenge.Find(h, "DPoP")
	return c.Error, ok
}

// NonceStore keeps the last valid server nonce per origin (RFC 9449 §8:
// a nonce is scoped to the server that issued it). It holds at most
// maxNonceOrigin origins. Safe for concurrent use; the zero value is ready.
type NonceStore struct {
	mu sync.Mutex
	m  map[string]string
}

// origin is the nonce scope of u: lower-case scheme://host[:port].
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

func (s *NonceStore) Get(u *url.URL) string {
	o := origin(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[o]
}

// put stores a nonce already checked by ValidNonce.
func (s *NonceStore) Put(u *url.URL, nonce string) {
	o := origin(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]string)
	}
	if _, ok := s.m[o]; !ok && len(s.m) >= maxNonceOrigin {
		for k := range s.m { // drop one arbitrary origin: the bound matters, not which
			delete(s.m, k)
			break
		}
	}
	s.m[o] = nonce
}

// update stores the response's nonce, if it has a valid one.
func (s *NonceStore) Update(u *url.URL, h http.Header) error {
	n, ok, err := responseNonce(h)
	if ok {
		s.Put(u, n)
	}
	return err
}

// AlgSupported reports whether the server's list (nil: unknown) allows
// one of ours.
func AlgSupported(server []string) bool {
	if server == nil {
		return true
	}
	return slices.ContainsFunc(algs, func(a string) bool { return slices.Contains(server, a) })
}

// extraName is the name under which a DPoP-bound *oauth2.Token carries its
// key, so that every holder of the token (the API transport, a token
// source) proves possession with the key the token is bound to. Server
// fields never reach a token's extras under this name: parseTokenResponse
// copies only id_token and scope.
const extraName = "oauthsafe.dpop_key"

// WithKey returns t with k attached (t's id_token and scope extras
// kept) when t is DPoP-typed; a Bearer token (an allowed downgrade) or a
// nil k returns t as it is.
func WithKey(t *oauth2.Token, k *Key) *oauth2.Token {
	if k == nil || t.TokenType != "DPoP" {
		return t
	}
	extra := map[string]any{extraName: k}
	for _, name := range []string{"id_token", "scope"} {
		if v := t.Extra(name); v != nil {
			extra[name] = v
		}
	}
	return t.WithExtra(extra)
}

// TokenKey returns the key a token is bound to, or nil for a bearer token.
func TokenKey(t *oauth2.Token) *Key {
	if t == nil {
		return nil
	}
	k, _ := t.Extra(extraName).(*Key)
	return k
}

// JKT is the RFC 7638 thumbprint of the key's public part (RFC 9449 §6.1).
func (k *Key) JKT() string { return k.jkt }

// Nonces returns the nonces kept, for tests.
func (s *NonceStore) Nonces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for _, n := range s.m {
		out = append(out, n)
	}
	return out
}
