package oauthtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// RFC 9449 §4.1 example proof and §6.1 thumbprint of its key.
const (
	rfcProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfcJKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func TestVerifierRFC9449Example(t *testing.T) {
	v := NewDPoPVerifier(false)
	v.now = func() time.Time { return time.Unix(1562262616, 0) }
	r := httptest.NewRequest("POST", "https://server.example.com/token", nil)
	r.Header.Set("DPoP", rfcProof)
	p, err := v.Verify(r, "https://server.example.com/token", "")
	if err != nil || p.JKT != rfcJKT {
		t.Fatalf("RFC example: %v, %+v", err, p)
	}
	if _, err := v.Verify(r, "https://server.example.com/token", ""); err == nil {
		t.Fatal("replayed proof accepted")
	}
}

// sign makes a proof with arbitrary header and claims (the test's own,
// not the library's builder).
func sign(t *testing.T, k *ecdsa.PrivateKey, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: hdr}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts.WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func TestVerifierRefuses(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &k.PublicKey}
	priv := jose.JSONWebKey{Key: k}
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"jti": base64.RawURLEncoding.EncodeToString([]byte(now.String())), "htm": "GET", "htu": "https://rs.example/api", "iat": now.Unix()}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	tests := []struct {
		name  string
		proof string
		code  string
	}{
		{"other method", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, with("htm", "POST")), DPoPInvalidProof},
		{"other url", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, with("htu", "https://rs.example/other")), DPoPInvalidProof},
		{"old iat", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, with("iat", now.Add(-time.Hour).Unix())), DPoPInvalidProof},
		{"private jwk", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": priv}, good()), DPoPInvalidProof},
		{"no jwk", sign(t, k, jose.ES256, nil, good()), DPoPInvalidProof},
		{"no jti", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, with("jti", "")), DPoPInvalidProof},
		{"garbage", "a.b.c", DPoPInvalidProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewDPoPVerifier(false)
			r := httptest.NewRequest("GET", "https://rs.example/api?q=1", nil)
			r.Header.Set("DPoP", tt.proof)
			_, err := v.Verify(r, "https://rs.example/api", "")
			var de *DPoPError
			if !errors.As(err, &de) || de.Code != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
		})
	}
	// Nonce: missing, then right, then stale after two rotations.
	v := NewDPoPVerifier(true)
	r := httptest.NewRequest("GET", "https://rs.example/api", nil)
	r.Header.Set("DPoP", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, good()))
	if _, err := v.Verify(r, "https://rs.example/api", ""); err == nil || err.(*DPoPError).Code != DPoPUseNonce {
		t.Fatalf("no nonce: %v", err)
	}
	n := v.Nonce()
	c := good()
	c["nonce"] = n
	c["jti"] = "j2"
	r.Header.Set("DPoP", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, c))
	if _, err := v.Verify(r, "https://rs.example/api", ""); err != nil {
		t.Fatalf("with nonce: %v", err)
	}
	v.RotateNonce()
	v.RotateNonce()
	c["jti"] = "j3"
	r.Header.Set("DPoP", sign(t, k, jose.ES256, map[jose.HeaderKey]any{"jwk": pub}, c))
	if _, err := v.Verify(r, "https://rs.example/api", ""); err == nil || err.(*DPoPError).Code != DPoPUseNonce {
		t.Fatalf("stale nonce: %v", err)
	}
}
