package oauthclient

import (
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
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// This file is the client side of DPoP (RFC 9449): the proof key, the
// proofs, the server nonces. The test server's verifier
// (oauthtest) is written separately from the RFC; nothing here is
// shared with it.

// dpopProofType is the typ header of every proof (RFC 9449 §4.2).
const dpopProofType = "dpop+jwt"

// dpopAlgs are the proof algorithms this client can sign with, in order
// of preference. ES256 is the default (RFC 9449 §4.2 names it as the one
// to support); only asymmetric algorithms are ever used.
var dpopAlgs = []string{string(jose.ES256)}

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
var ErrDPoP = errors.New("oauthclient: DPoP refused")

// dpopKey is one proof-of-possession key: an ECDSA P-256 key from
// crypto/rand. It is immutable and safe for concurrent use. It prints as
// redacted under every fmt verb, slog and JSON; marshalKey is the one way
// out, for the record sealed with the refresh token it binds (S27).
type dpopKey struct {
	priv   *ecdsa.PrivateKey
	jkt    string // RFC 7638 thumbprint of the public key
	header string // base64url of the constant protected header (typ, alg, jwk)
}

func newDPoPKey() (*dpopKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: DPoP key: %w", err)
	}
	return dpopKeyFrom(priv)
}

func dpopKeyFrom(priv *ecdsa.PrivateKey) (*dpopKey, error) {
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, errors.New("oauthclient: DPoP key must be ECDSA P-256")
	}
	jkt, err := jwkThumbprint(&priv.PublicKey)
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
	}{dpopProofType, string(jose.ES256), jwk})
	if err != nil {
		return nil, err
	}
	return &dpopKey{
		priv:   priv,
		jkt:    jkt,
		header: base64.RawURLEncoding.EncodeToString(hdr),
	}, nil
}

// jwkThumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url: the jkt of RFC 9449 §6.1 and the dpop_jkt of §10.
func jwkThumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("oauthclient: JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// marshalKey returns the private key (PKCS #8 DER) for a sealed store.
func (k *dpopKey) marshalKey() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.priv)
}

// storeKey returns the key for a tokenstore.Record (S27); nil k gives the
// zero PrivateKey.
func (k *dpopKey) storeKey() (tokenstore.PrivateKey, error) {
	if k == nil {
		return tokenstore.PrivateKey{}, nil
	}
	b, err := k.marshalKey()
	if err != nil {
		return tokenstore.PrivateKey{}, errors.New("oauthclient: DPoP key cannot be encoded")
	}
	return tokenstore.NewPrivateKey(b)
}

// storedKeys turns a record's key into a *dpopKey, reusing the last one
// while the record holds the same key (a refresh happens once per token
// lifetime; the parse is kept off it anyway). Safe for concurrent use.
type storedKeys struct {
	mu   sync.Mutex
	last tokenstore.PrivateKey
	key  *dpopKey
}

// get returns nil for the zero PrivateKey, and an error (no key material
// in it) for a key this client cannot sign with.
func (s *storedKeys) get(pk tokenstore.PrivateKey) (*dpopKey, error) {
	if pk.IsZero() {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil && s.last.Equal(pk) {
		return s.key, nil
	}
	k, err := unmarshalDPoPKey(pk.PKCS8())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDPoP, err)
	}
	s.last, s.key = pk, k
	return k, nil
}

// unmarshalDPoPKey restores a key written by marshalKey. Errors never
// contain key material.
func unmarshalDPoPKey(b []byte) (*dpopKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, errors.New("oauthclient: stored DPoP key is malformed")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("oauthclient: stored DPoP key is not ECDSA")
	}
	return dpopKeyFrom(ec)
}

func (k *dpopKey) redact() string {
	if k == nil {
		return "oauthclient.dpopKey{}"
	}
	return "oauthclient.dpopKey{alg=ES256, jkt=" + k.jkt + ", private=" + redacted + "}"
}

// String redacts the key.
func (k *dpopKey) String() string { return k.redact() }

// GoString redacts the key.
func (k *dpopKey) GoString() string { return k.redact() }

// Format redacts the key under every verb.
func (k *dpopKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.redact()) }

// LogValue redacts the key.
func (k *dpopKey) LogValue() slog.Value { return slog.StringValue(k.redact()) }

// MarshalJSON redacts the key.
func (k *dpopKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.redact()) }

// proofClaims are the claims of a proof (RFC 9449 §4.2).
type proofClaims struct {
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
func (k *dpopKey) proof(method string, u *url.URL, ath, nonce string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("oauthclient: crypto/rand: %w", err)
	}
	payload, err := json.Marshal(proofClaims{
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
func (k *dpopKey) signCompact(payload []byte) (string, error) {
	n := len(k.header) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
	buf := make([]byte, 0, n+1+86)
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, payload)
	sum := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, sum[:])
	if err != nil {
		return "", fmt.Errorf("oauthclient: DPoP proof signature: %w", err)
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

// accessTokenHash is ath: base64url(SHA-256(ASCII access token)).
func accessTokenHash(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validNonce: 1*NQCHAR (%x21 / %x23-5B / %x5D-7E), at most maxNonceLen bytes.
func validNonce(n string) bool {
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
	case !validNonce(vs[0]):
		return "", false, fmt.Errorf("%w: DPoP-Nonce header is empty, longer than %d bytes or has characters outside NQCHAR", ErrDPoP, maxNonceLen)
	}
	return vs[0], true, nil
}

// dpopChallenge reports whether h carries a DPoP challenge (RFC 9449
// §7.1) and its error code.
func dpopChallenge(h http.Header) (errCode string, ok bool) {
	c, ok := parseChallenge(h, "DPoP")
	return c.Error, ok
}

// nonceStore keeps the last valid server nonce per origin (RFC 9449 §8:
// a nonce is scoped to the server that issued it). It holds at most
// maxNonceOrigin origins. Safe for concurrent use; the zero value is ready.
type nonceStore struct {
	mu sync.Mutex
	m  map[string]string
}

// origin is the nonce scope of u: lower-case scheme://host[:port].
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

func (s *nonceStore) get(u *url.URL) string {
	o := origin(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[o]
}

// put stores a nonce already checked by validNonce.
func (s *nonceStore) put(u *url.URL, nonce string) {
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
func (s *nonceStore) update(u *url.URL, h http.Header) error {
	n, ok, err := responseNonce(h)
	if ok {
		s.put(u, n)
	}
	return err
}

// dpopAlgSupported reports whether the server's list (nil: unknown) allows
// one of ours.
func dpopAlgSupported(server []string) bool {
	if server == nil {
		return true
	}
	return slices.ContainsFunc(dpopAlgs, func(a string) bool { return slices.Contains(server, a) })
}

// dpopExtra is the name under which a DPoP-bound *oauth2.Token carries its
// key, so that every holder of the token (the API transport, a token
// source) proves possession with the key the token is bound to. Server
// fields never reach a token's extras under this name: parseTokenResponse
// copies only id_token and scope.
const dpopExtra = "oauthsafe.dpop_key"

// withDPoPKey returns t with k attached (t's id_token and scope extras
// kept) when t is DPoP-typed; a Bearer token (an allowed downgrade) or a
// nil k returns t as it is.
func withDPoPKey(t *oauth2.Token, k *dpopKey) *oauth2.Token {
	if k == nil || t.TokenType != "DPoP" {
		return t
	}
	extra := map[string]any{dpopExtra: k}
	for _, name := range []string{"id_token", "scope"} {
		if v := t.Extra(name); v != nil {
			extra[name] = v
		}
	}
	return t.WithExtra(extra)
}

// tokenDPoPKey returns the key a token is bound to, or nil for a bearer token.
func tokenDPoPKey(t *oauth2.Token) *dpopKey {
	if t == nil {
		return nil
	}
	k, _ := t.Extra(dpopExtra).(*dpopKey)
	return k
}
