package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/url"
	"testing"
	"time"
)

// BenchmarkES256Sign is one bare ES256 signature (SHA-256 of a proof-sized
// input, ecdsa.Sign): the floor a DPoP proof cannot go below.
func BenchmarkES256Sign(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 400)
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(msg)
		if _, _, err := ecdsa.Sign(rand.Reader, priv, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDPoPProof is one whole proof as the API transport makes it.
func BenchmarkDPoPProof(b *testing.B) {
	k, err := NewKey()
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("https://api.example.com/v1/items?limit=50")
	ath := AccessTokenHash("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2ln")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Proof("GET", u, ath, "nonce-1", now); err != nil {
			b.Fatal(err)
		}
	}
}
