package validate

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/internal/claims"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

func leftHalfSHA256(v string) string {
	s := sha256.Sum256([]byte(v))
	return b64.EncodeToString(s[:16])
}

// hostileCase is one entry of the hostile token table.
type hostileCase struct {
	name  string
	token string
	chk   IDTokenCheck
	asAT  bool // verify as an access token instead of an ID token
	want  error
}

// testVerifiers returns the ID token and access token verifiers used by the
// table, both on the same JWKS served by a TLS httptest server.
func testVerifiers(t testing.TB) (*IDTokenVerifier, *AccessTokenVerifier, *keyServer) {
	t.Helper()
	ks := newKeyServer(t, standardJWKS(t))
	jwks := newTestJWKS(t, ks, func() time.Time { return testNow })
	metadata := []string{"RS256", "PS256", "ES256", "EdDSA", "HS256", "none"}
	idv, err := NewIDTokenVerifier(IDTokenConfig{
		Issuer: testIssuer, ClientID: testClientID, Algorithms: metadata,
		KeySet: jwks, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	atv, err := NewAccessTokenVerifier(AccessTokenConfig{
		Issuer: testIssuer, Audience: testResource, ClientID: testClientID,
		Algorithms: metadata, KeySet: jwks, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return idv, atv, ks
}

func selfSignedCert(t testing.TB) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &attackerRSA.PublicKey, attackerRSA)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func hostileTokens(t *testing.T, attackerURL string) []hostileCase {
	testKeys(t)
	id := idClaims()
	ok := sign(t, rs256(), id)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	parts := strings.Split(ok, ".")
	otherPayload := strings.Split(sign(t, rs256(), with(id, "sub", "admin")), ".")[1]
	attacker := signOpts{alg: jose.RS256, key: attackerRSA, kid: "attacker"}
	attackerAsUs := signOpts{alg: jose.RS256, key: attackerRSA, kid: "rsa1"}
	mustJSON := func(m map[string]any) string {
		b, _ := json.Marshal(m)
		return string(b)
	}
	bigHeader := `{"alg":"RS256","kid":"rsa1","x":"` + strings.Repeat("A", 2<<20) + `"}`
	leeway := defaultLeeway
	at := atClaims()
	atTok := sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: "at+jwt"}, at)
	chk := IDTokenCheck{Nonce: testNonce}

	return []hostileCase{
		// Algorithms.
		{name: "alg none", token: rawJWS(`{"alg":"none","typ":"JWT"}`, mustJSON(id), nil), chk: chk, want: errAlgorithm},
		{name: "alg none with a signature", token: rawJWS(`{"alg":"none"}`, mustJSON(id), []byte("sig")), chk: chk, want: errAlgorithm},
		{name: "alg None (case)", token: rawJWS(`{"alg":"None"}`, mustJSON(id), []byte("sig")), chk: chk, want: errAlgorithm},
		{name: "HS256 keyed with the RSA public key", token: sign(t, signOpts{alg: jose.HS256, key: pubPEM, kid: "rsa1"}, id), chk: chk, want: errAlgorithm},
		{name: "HS256 keyed with the RSA public key, no kid", token: sign(t, signOpts{alg: jose.HS256, key: pubPEM}, id), chk: chk, want: errAlgorithm},
		{name: "alg not in metadata (RS384)", token: sign(t, signOpts{alg: jose.RS384, key: rsaKey2, kid: "rsa2"}, id), chk: chk, want: errAlgorithm},
		{name: "alg missing", token: rawJWS(`{"kid":"rsa1"}`, mustJSON(id), []byte("sig")), chk: chk, want: errAlgorithm},
		// Header-embedded keys must be ignored.
		{name: "jku pointing at attacker JWKS", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, kid: "attacker", headers: map[string]any{"jku": attackerURL}}, id), chk: chk, want: errKeyNotFound},
		{name: "x5u pointing at attacker cert", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, kid: "attacker", headers: map[string]any{"x5u": attackerURL}}, id), chk: chk, want: errKeyNotFound},
		{name: "jku with our kid, attacker signature", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, kid: "rsa1", headers: map[string]any{"jku": attackerURL}}, id), chk: chk, want: errSignature},
		{name: "embedded jwk of attacker key", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, embed: true}, id), chk: chk, want: errSignature},
		{name: "embedded jwk with our kid", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, embed: true, headers: map[string]any{"kid": "rsa1"}}, id), chk: chk, want: errSignature},
		{name: "x5c with attacker cert", token: sign(t, signOpts{alg: jose.RS256, key: attackerRSA, kid: "rsa1", headers: map[string]any{"x5c": []string{selfSignedCert(t)}}}, id), chk: chk, want: errSignature},
		// Issuer.
		{name: "wrong iss", token: sign(t, rs256(), with(id, "iss", "https://evil.example.test")), chk: chk, want: errIssuer},
		{name: "iss with trailing slash", token: sign(t, rs256(), with(id, "iss", testIssuer+"/")), chk: chk, want: errIssuer},
		{name: "iss in different case", token: sign(t, rs256(), with(id, "iss", strings.ToUpper(testIssuer))), chk: chk, want: errIssuer},
		{name: "iss missing", token: sign(t, rs256(), with(id, "iss", nil)), chk: chk, want: errIssuer},
		// Audience and azp.
		{name: "aud without us", token: sign(t, rs256(), with(id, "aud", "someone-else")), chk: chk, want: errAudience},
		{name: "aud list without us", token: sign(t, rs256(), with(id, "aud", []string{"a", "b"})), chk: chk, want: errAudience},
		{name: "aud missing", token: sign(t, rs256(), with(id, "aud", nil)), chk: chk, want: errAudience},
		{name: "several aud, azp missing", token: sign(t, rs256(), with(id, "aud", []string{testClientID, "other"})), chk: chk, want: errAuthorizedParty},
		{name: "several aud, azp wrong", token: sign(t, rs256(), with(id, "aud", []string{testClientID, "other"}, "azp", "other")), chk: chk, want: errAuthorizedParty},
		{name: "one aud, azp wrong", token: sign(t, rs256(), with(id, "azp", "other")), chk: chk, want: errAuthorizedParty},
		// Time.
		{name: "exp just past leeway", token: sign(t, rs256(), with(id, "exp", testNow.Add(-leeway-time.Second).Unix())), chk: chk, want: errExpired},
		{name: "exp exactly at leeway", token: sign(t, rs256(), with(id, "exp", testNow.Add(-leeway).Unix())), chk: chk, want: errExpired},
		{name: "exp missing", token: sign(t, rs256(), with(id, "exp", nil)), chk: chk, want: errMissingClaim},
		{name: "exp as a string", token: sign(t, rs256(), with(id, "exp", "9999999999")), chk: chk, want: errMalformed},
		{name: "nbf in the future", token: sign(t, rs256(), with(id, "nbf", testNow.Add(leeway+time.Second).Unix())), chk: chk, want: errNotYetValid},
		{name: "iat in the future", token: sign(t, rs256(), with(id, "iat", testNow.Add(leeway+time.Second).Unix())), chk: chk, want: errNotYetValid},
		{name: "iat missing", token: sign(t, rs256(), with(id, "iat", nil)), chk: chk, want: errMissingClaim},
		{name: "sub missing", token: sign(t, rs256(), with(id, "sub", nil)), chk: chk, want: errMissingClaim},
		// Nonce and hashes.
		{name: "nonce missing", token: sign(t, rs256(), with(id, "nonce", nil)), chk: chk, want: errNonce},
		{name: "nonce wrong", token: sign(t, rs256(), with(id, "nonce", "other-nonce")), chk: chk, want: errNonce},
		{name: "at_hash mismatch", token: sign(t, rs256(), with(id, "at_hash", leftHalfSHA256("other-access-token"))), chk: IDTokenCheck{Nonce: testNonce, AccessToken: "the-access-token"}, want: errTokenHash},
		{name: "c_hash mismatch", token: sign(t, rs256(), with(id, "c_hash", leftHalfSHA256("other-code"))), chk: IDTokenCheck{Nonce: testNonce, Code: "the-code"}, want: errTokenHash},
		// Token type confusion.
		{name: "access token as ID token", token: atTok, chk: IDTokenCheck{}, want: errTokenType},
		{name: "ID token as access token", token: ok, asAT: true, want: errTokenType},
		{name: "ID token without typ as access token", token: sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: "-"}, id), asAT: true, want: errTokenType},
		{name: "logout token as ID token", token: sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: "logout+jwt"}, id), chk: chk, want: errTokenType},
		{name: "access token with nonce (an ID token relabelled)", token: sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: "at+jwt"}, with(at, "nonce", testNonce)), asAT: true, want: errTokenType},
		// Signatures and keys.
		{name: "bad signature (flipped byte)", token: parts[0] + "." + parts[1] + "." + flipSig(parts[2]), chk: chk, want: errSignature},
		{name: "payload swapped under a valid signature", token: parts[0] + "." + otherPayload + "." + parts[2], chk: chk, want: errSignature},
		{name: "attacker key with our kid", token: sign(t, attackerAsUs, id), chk: chk, want: errSignature},
		{name: "unknown kid", token: sign(t, attacker, id), chk: chk, want: errKeyNotFound},
		{name: "key with use enc", token: sign(t, signOpts{alg: jose.RS256, key: rsaEnc, kid: "enc1"}, id), chk: chk, want: errKeyNotFound},
		{name: "key restricted to RS512 used for RS256", token: sign(t, signOpts{alg: jose.RS256, key: rsa512, kid: "rs512"}, id), chk: chk, want: errKeyNotFound},
		{name: "ES256 with the kid of an RSA key", token: sign(t, signOpts{alg: jose.ES256, key: ecKey, kid: "rsa2"}, id), chk: chk, want: errKeyNotFound},
		{name: "1024-bit RSA key", token: sign(t, signOpts{alg: jose.RS256, key: rsaWeak, kid: "weak"}, id), chk: chk, want: errKeyNotFound},
		// Shape and size.
		{name: "truncated token (no signature segment)", token: parts[0] + "." + parts[1], chk: chk, want: errMalformed},
		{name: "truncated signature", token: ok[:len(ok)-10], chk: chk, want: errSignature},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", chk: chk, want: errMalformed},
		{name: "5,000 dots", token: strings.Repeat(".", 5000), chk: chk, want: errMalformed},
		{name: "5,000 dots after a real header", token: parts[0] + strings.Repeat(".", 5000), chk: chk, want: errMalformed},
		{name: "2 MB header", token: rawJWS(bigHeader, mustJSON(id), []byte("sig")), chk: chk, want: errMalformed},
		{name: "token over 64 KiB (large payload)", token: sign(t, rs256(), with(id, "pad", strings.Repeat("A", 70<<10))), chk: chk, want: errMalformed},
		{name: "JWE (five segments)", token: parts[0] + ".a.b.c." + parts[2], chk: chk, want: errMalformed},
		{name: "JSON serialization", token: `{"payload":"` + parts[1] + `","signatures":[]}`, chk: chk, want: errMalformed},
		{name: "header not JSON", token: b64.EncodeToString([]byte("not json")) + "." + parts[1] + "." + parts[2], chk: chk, want: errMalformed},
		{name: "header not base64", token: "%%%." + parts[1] + "." + parts[2], chk: chk, want: errMalformed},
		{name: "crit header", token: sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", headers: map[string]any{"crit": []string{"exp"}, "exp": 1}}, id), chk: chk, want: errMalformed},
		{name: "empty token", token: "", chk: chk, want: errMalformed},
	}
}

func flipSig(s string) string {
	b, _ := b64.DecodeString(s)
	b[len(b)/2] ^= 0x01
	return b64.EncodeToString(b)
}

func TestHostileTokens(t *testing.T) {
	idv, atv, ks := testVerifiers(t)
	attacker := newKeyServer(t, []json.RawMessage{jwkJSON(t, &attackerRSA.PublicKey, "attacker", "RS256", "sig")})
	cases := hostileTokens(t, attacker.URL+"/jwks")
	if len(cases) < 30 {
		t.Fatalf("only %d hostile tokens", len(cases))
	}
	// The untouched tokens verify: every failure below is caused by its
	// one mutation.
	if _, err := idv.Verify(context.Background(), sign(t, rs256(), idClaims()), IDTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatalf("valid ID token refused: %v", err)
	}
	if _, err := atv.Verify(context.Background(), sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: "at+jwt"}, atClaims())); err != nil {
		t.Fatalf("valid access token refused: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.asAT {
				_, err = atv.Verify(context.Background(), tc.token)
			} else {
				_, err = idv.Verify(context.Background(), tc.token, tc.chk)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			assertNoLeak(t, err, tc.token)
		})
	}
	if n := attacker.fetches.Load(); n != 0 {
		t.Errorf("attacker's jku/x5u server was fetched %d times", n)
	}
	if n := ks.fetches.Load(); n > 2 {
		t.Errorf("issuer JWKS fetched %d times during the table", n)
	}
}

// assertNoLeak fails if err's message contains the token or any of its
// segments (or a claim value planted by the tests).
func assertNoLeak(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "validate: ") {
		t.Errorf("error %q does not start with the package name", msg)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Fatalf("error string contains a token segment")
		}
	}
	for _, planted := range []string{"evil.example", "other-nonce", testNonce, "user-42", "admin", "someone-else"} {
		if strings.Contains(msg, planted) {
			t.Fatalf("error string %q contains a claim value %q", msg, planted)
		}
	}
}

func TestIDTokenValid(t *testing.T) {
	idv, _, _ := testVerifiers(t)
	ctx := context.Background()
	for _, o := range []signOpts{
		rs256(),
		{alg: jose.PS256, key: rsaKey2, kid: "rsa2"},
		{alg: jose.ES256, key: ecKey, kid: "ec1"},
		{alg: jose.EdDSA, key: edKey, kid: "ed1"},
		{alg: jose.RS256, key: rsaKey}, // no kid: tries matching keys
	} {
		claims := with(idClaims(),
			"aud", []string{testClientID, "other"}, "azp", testClientID,
			"at_hash", hashFor(t, o.alg, "the-access-token"), "c_hash", hashFor(t, o.alg, "the-code"),
			"auth_time", testNow.Add(-time.Hour).Unix())
		tok, err := idv.Verify(ctx, sign(t, o, claims), IDTokenCheck{Nonce: testNonce, AccessToken: "the-access-token", Code: "the-code"})
		if err != nil {
			t.Fatalf("%s/%s: %v", o.alg, o.kid, err)
		}
		if tok.Subject != "user-42" || tok.Issuer != testIssuer || tok.Nonce != testNonce || tok.AuthorizedParty != testClientID ||
			!tok.Expiry.Equal(testNow.Add(10*time.Minute)) || tok.AuthTime.IsZero() {
			t.Fatalf("%s: unexpected token %+v", o.alg, tok)
		}
		var extra struct {
			Sub string `json:"sub"`
		}
		if err := tok.Claims(&extra); err != nil || extra.Sub != "user-42" {
			t.Fatalf("Claims: %v %q", err, extra.Sub)
		}
	}
	// Leeway works in the accepting direction too.
	tok := sign(t, rs256(), with(idClaims(), "exp", testNow.Add(-30*time.Second).Unix(), "iat", testNow.Add(30*time.Second).Unix()))
	if _, err := idv.Verify(ctx, tok, IDTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatalf("token within leeway refused: %v", err)
	}
	// An empty check skips the nonce (refresh responses).
	if _, err := idv.Verify(ctx, sign(t, rs256(), idClaims()), IDTokenCheck{}); err != nil {
		t.Fatal(err)
	}
}

func hashFor(t *testing.T, alg jose.SignatureAlgorithm, v string) string {
	t.Helper()
	// Computed independently of hashMatches (OIDC Core 3.1.3.6).
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		return leftHalfSHA256(v)
	case jose.EdDSA:
		s := sha512.Sum512([]byte(v))
		return b64.EncodeToString(s[:32])
	}
	t.Fatalf("no hash for %s", alg)
	return ""
}

func TestNewIDTokenVerifierConfig(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, standardJWKS(t))
	jwks := newTestJWKS(t, ks, nil)
	base := IDTokenConfig{Issuer: testIssuer, ClientID: testClientID, KeySet: jwks}
	for _, tc := range []struct {
		name string
		mod  func(*IDTokenConfig)
		want error
	}{
		{"only HS256 and none advertised", func(c *IDTokenConfig) { c.Algorithms = []string{"HS256", "none"} }, errAlgorithm},
		{"unknown algorithm only", func(c *IDTokenConfig) { c.Algorithms = []string{"XYZ"} }, errAlgorithm},
		{"leeway above 5 min", func(c *IDTokenConfig) { c.Leeway = 5*time.Minute + time.Second }, oauthsafe.ErrConfig},
		{"negative leeway", func(c *IDTokenConfig) { c.Leeway = -time.Second }, oauthsafe.ErrConfig},
		{"no issuer", func(c *IDTokenConfig) { c.Issuer = "" }, oauthsafe.ErrConfig},
		{"no client id", func(c *IDTokenConfig) { c.ClientID = "" }, oauthsafe.ErrConfig},
		{"no key set", func(c *IDTokenConfig) { c.KeySet = nil }, oauthsafe.ErrConfig},
	} {
		cfg := base
		tc.mod(&cfg)
		if _, err := NewIDTokenVerifier(cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// nil Algorithms means RS256 only: a valid PS256 token is refused.
	cfg := base
	cfg.Now = func() time.Time { return testNow }
	v, err := NewIDTokenVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := sign(t, signOpts{alg: jose.PS256, key: rsaKey2, kid: "rsa2"}, idClaims())
	if _, err := v.Verify(context.Background(), ps, IDTokenCheck{Nonce: testNonce}); !errors.Is(err, errAlgorithm) {
		t.Fatalf("PS256 with default algorithms: %v", err)
	}
	// Leeway 5 min exactly is allowed and applied.
	cfg.Leeway = 5 * time.Minute
	v, err = NewIDTokenVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	late := sign(t, rs256(), with(idClaims(), "exp", testNow.Add(-4*time.Minute).Unix()))
	if _, err := v.Verify(context.Background(), late, IDTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatalf("5 min leeway: %v", err)
	}
}

func TestStandardClaimsQuirks(t *testing.T) {
	for _, tc := range []struct {
		json     string
		verified bool
	}{
		{`{"email":"a@example.test","email_verified":true}`, true},
		{`{"email":"a@example.test","email_verified":"true"}`, true},
		{`{"email":"a@example.test","email_verified":" TRUE "}`, true},
		{`{"email":"a@example.test","email_verified":false}`, false},
		{`{"email":"a@example.test","email_verified":"false"}`, false},
		{`{"email":"a@example.test","email_verified":"yes"}`, false},
		{`{"email":"a@example.test","email_verified":1}`, false},
		{`{"email":"a@example.test","email_verified":null}`, false},
		{`{"email":"a@example.test"}`, false},
		{`{"email_verified":true}`, true}, // the flag decodes; with no Email, nothing is verified
	} {
		std, err := claims.ParseStandard([]byte(tc.json))
		if err != nil {
			t.Fatal(err)
		}
		if c := StandardClaims(std); c.EmailVerified != tc.verified || strings.Contains(tc.json, "a@example.test") != (c.Email == "a@example.test") {
			t.Errorf("%s: Email, EmailVerified = %q, %v", tc.json, c.Email, c.EmailVerified)
		}
	}
	c, err := claims.ParseStandard([]byte(`{"sub":"s","name":7,"updated_at":"2026-01-02T03:04:05Z","phone_number_verified":"true"}`))
	if err != nil || c.Subject != "s" || c.Name != "" || c.UpdatedAt.Year() != 2026 || !c.PhoneNumberVerified {
		t.Fatalf("quirky claims: %+v %v", c, err)
	}
	if _, err := claims.ParseStandard([]byte(`[1]`)); !errors.Is(err, claims.ErrNotObject) {
		t.Fatalf("array: %v", err)
	}
}

// TestOtherKeySet covers the generic oidc.KeySet path (not *JWKS): the
// algorithm allow-list still applies before the key set is asked, and its
// failures are mapped to errSignature without its message.
func TestOtherKeySet(t *testing.T) {
	testKeys(t)
	ks := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}}
	v, err := NewIDTokenVerifier(IDTokenConfig{Issuer: testIssuer, ClientID: testClientID, KeySet: ks, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, rs256(), idClaims()), IDTokenCheck{Nonce: testNonce}); err != nil {
		t.Fatal(err)
	}
	bad := sign(t, signOpts{alg: jose.RS256, key: attackerRSA, kid: "rsa1"}, idClaims())
	if _, err := v.Verify(ctx, bad, IDTokenCheck{Nonce: testNonce}); !errors.Is(err, errSignature) {
		t.Fatalf("attacker signature: %v", err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	hs := sign(t, signOpts{alg: jose.HS256, key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}, idClaims())
	if _, err := v.Verify(ctx, hs, IDTokenCheck{Nonce: testNonce}); !errors.Is(err, errAlgorithm) {
		t.Fatalf("HS256: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, rs256(), with(idClaims(), "exp", nil)), IDTokenCheck{Nonce: testNonce}); !errors.Is(err, errMissingClaim) {
		t.Fatalf("missing exp via StaticKeySet: %v", err)
	}
}
