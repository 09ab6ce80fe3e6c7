package validate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

const (
	testIssuer   = "https://issuer.example.test"
	testClientID = "client-123"
	testResource = "https://api.example.test"
	testNonce    = "n-0S6_WzA2Mj"
)

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1_800_000_000, 0)

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce                        sync.Once
	rsaKey, rsaKey2, rsaEnc, rsa512 *rsa.PrivateKey
	rsaWeak, attackerRSA            *rsa.PrivateKey
	ecKey                           *ecdsa.PrivateKey
	edKey                           ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return k
		}
		rsaKey, rsaKey2, rsaEnc, rsa512, attackerRSA = gen(2048), gen(2048), gen(2048), gen(2048), gen(2048)
		rsaWeak = gen(1024)
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// jwkJSON renders a public JWK with the given kid, alg and use ("" omits).
func jwkJSON(t testing.TB, pub crypto.PublicKey, kid, alg, use string) json.RawMessage {
	t.Helper()
	b, err := jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: use}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// standardJWKS is the issuer's key set used by most tests.
func standardJWKS(t testing.TB) []json.RawMessage {
	testKeys(t)
	return []json.RawMessage{
		jwkJSON(t, &rsaKey.PublicKey, "rsa1", "RS256", "sig"),
		jwkJSON(t, &rsaKey2.PublicKey, "rsa2", "", ""),
		jwkJSON(t, &ecKey.PublicKey, "ec1", "ES256", "sig"),
		jwkJSON(t, edKey.Public(), "ed1", "EdDSA", "sig"),
		jwkJSON(t, &rsaEnc.PublicKey, "enc1", "", "enc"),
		jwkJSON(t, &rsa512.PublicKey, "rs512", "RS512", "sig"),
		jwkJSON(t, &rsaWeak.PublicKey, "weak", "RS256", "sig"),
	}
}

// keyServer is a hostile-capable JWKS endpoint on a TLS httptest server. It
// counts fetches and can rotate, block or misbehave on demand.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64

	mu      sync.Mutex
	keys    []json.RawMessage
	raw     []byte        // when set, served instead of the key set
	status  int           // when set, served instead of 200
	gate    chan struct{} // when set, each request waits for it to close
	started chan struct{} // when set, receives once per request (non-blocking)
}

func newKeyServer(t testing.TB, keys []json.RawMessage) *keyServer {
	ks := &keyServer{keys: keys}
	ks.Server = httptest.NewTLSServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) serve(w http.ResponseWriter, r *http.Request) {
	ks.fetches.Add(1)
	ks.mu.Lock()
	gate, started, raw, status := ks.gate, ks.started, ks.raw, ks.status
	body, _ := json.Marshal(map[string]any{"keys": ks.keys})
	ks.mu.Unlock()
	if started != nil {
		select {
		case started <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		<-gate
	}
	if raw != nil {
		body = raw
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
	}
	w.Write(body)
}

func (ks *keyServer) setKeys(keys ...json.RawMessage) {
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestJWKS(t testing.TB, ks *keyServer, now func() time.Time) *keySet {
	t.Helper()
	j, err := newKeySet(JWKSConfig{URL: ks.URL + "/jwks", HTTPClient: strictFor(t, ks.Server), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// signOpts describes a token to sign with go-jose.
type signOpts struct {
	alg     jose.SignatureAlgorithm
	key     any // private key (or []byte for HMAC)
	kid     string
	typ     string // "" means JWT; "-" omits typ
	headers map[string]any
	embed   bool // embed the signer's public key as "jwk"
}

func sign(t testing.TB, o signOpts, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: o.embed}
	switch o.typ {
	case "":
		opts.WithType("JWT")
	case "-":
	default:
		opts.WithType(jose.ContentType(o.typ))
	}
	if o.kid != "" {
		opts.WithHeader("kid", o.kid)
	}
	for k, v := range o.headers {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: o.alg, Key: o.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rs256 is the ordinary signing setup of the issuer.
func rs256() signOpts { testKeysNoT(); return signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1"} }

func testKeysNoT() {
	if rsaKey == nil {
		panic("testKeys not called")
	}
}

// idClaims returns valid ID token claims for the fixed clock.
func idClaims() map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"sub":   "user-42",
		"aud":   testClientID,
		"exp":   testNow.Add(10 * time.Minute).Unix(),
		"iat":   testNow.Add(-time.Minute).Unix(),
		"nonce": testNonce,
	}
}

// atClaims returns valid RFC 9068 access token claims.
func atClaims() map[string]any {
	return map[string]any{
		"iss":       testIssuer,
		"sub":       "user-42",
		"aud":       testResource,
		"client_id": testClientID,
		"exp":       testNow.Add(10 * time.Minute).Unix(),
		"iat":       testNow.Add(-time.Minute).Unix(),
		"jti":       "jti-1",
		"scope":     "read write",
	}
}

// with returns a copy of m with the given changes; a nil value deletes.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// rawJWS builds a compact token from literal header and claims JSON and an
// arbitrary signature, for shapes go-jose refuses to produce.
func rawJWS(header, claims string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims)) + "." + b64.EncodeToString(sig)
}

// strictFor is a strict client (the one validate accepts) trusting srv's certificate.
func strictFor(t testing.TB, srv *httptest.Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return strictPool(t, pool)
}

// strictPool is a strict client trusting pool.
func strictPool(t testing.TB, pool *x509.CertPool) *http.Client {
	t.Helper()
	c, err := strictnet.NewClient(strictnet.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
