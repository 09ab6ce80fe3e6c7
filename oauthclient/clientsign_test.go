package oauthclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestSigned: the claims and header S16 asks of a signed client
// assertion.
func TestSigned(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s := signedAssertion{Key: key, KeyID: "k1", Issuer: "svc", Subject: "svc", Now: func() time.Time { return now }}
	a, err := s.Assertion(ctx, "https://as.example")
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(a, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	if c["aud"] != "https://as.example" || c["iss"] != "svc" || c["sub"] != "svc" || c["jti"] == "" ||
		c["exp"].(float64)-c["iat"].(float64) != assertionLifetime.Seconds() || assertionLifetime > 60*time.Second ||
		jws.Signatures[0].Header.KeyID != "k1" || jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Fatalf("claims %v header %+v", c, jws.Signatures[0].Header)
	}
	if jwt, err := jwtassert.Parse(a, now); err != nil || !jwt.Expiry().Equal(now.Add(assertionLifetime)) {
		t.Fatalf("exp %v: %v", jwt.Expiry(), err)
	}
	b, _ := s.Assertion(ctx, "https://as.example")
	if b == a {
		t.Fatal("two assertions are the same (jti reused)")
	}
	s.Type = "client-authentication+jwt"
	c2, _ := s.Assertion(ctx, "x")
	if j, _ := jose.ParseSignedCompact(c2, []jose.SignatureAlgorithm{jose.ES256}); j.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != "client-authentication+jwt" {
		t.Fatal("Type not in typ")
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (signedAssertion{Key: weak, Issuer: "a", Subject: "a"}).Assertion(ctx, "x"); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("1024-bit RSA: %v", err)
	}
	if _, err := (signedAssertion{Key: key, Issuer: "a"}).Assertion(ctx, "x"); !errors.Is(err, assertion.ErrSource) {
		t.Fatalf("no subject: %v", err)
	}
}
