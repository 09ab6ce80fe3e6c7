package validate

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// benchToken returns one RS256 ID token used by all three benchmarks.
func benchToken(b *testing.B) string {
	testKeys(b)
	return sign(b, rs256(), idClaims())
}

// BenchmarkIDTokenVerify is our verifier with a warm JWKS cache.
func BenchmarkIDTokenVerify(b *testing.B) {
	tok := benchToken(b)
	ks := newKeyServer(b, standardJWKS(b))
	jwks := newTestJWKS(b, ks, func() time.Time { return testNow })
	v, err := NewIDTokenVerifier(IDTokenConfig{Issuer: testIssuer, ClientID: testClientID, KeySet: jwks, Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	chk := IDTokenCheck{Nonce: testNonce}
	if _, err := v.Verify(ctx, tok, chk); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok, chk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoOIDCVerify is go-oidc's verifier on the same token and key.
func BenchmarkGoOIDCVerify(b *testing.B) {
	tok := benchToken(b)
	v := oidc.NewVerifier(testIssuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{&rsaKey.PublicKey}},
		&oidc.Config{ClientID: testClientID, Now: func() time.Time { return testNow }})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawRS256 is the bare signature check on the same signing input.
func BenchmarkRawRS256(b *testing.B) {
	tok := benchToken(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &rsaKey.PublicKey
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
