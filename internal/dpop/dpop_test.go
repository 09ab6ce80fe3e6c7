package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
const (
	rfc7638N   = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

// RFC 9449 §4.1 (Figure 3), §6.1 and §7.1: the example proof key, its
// thumbprint, the token request proof, and an access token with its ath.
const (
	rfc9449X     = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"
	rfc9449Y     = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
	rfc9449JKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	rfc9449Proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfc9449AT    = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	rfc9449ATH   = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
)

func b64int(t *testing.T, s string) *big.Int {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).SetBytes(b)
}

func TestJWKThumbprintRFCExamples(t *testing.T) {
	rsaKey := &rsa.PublicKey{N: b64int(t, rfc7638N), E: 65537}
	if got, err := Thumbprint(rsaKey); err != nil || got != rfc7638JKT {
		t.Errorf("RFC 7638 example: thumbprint %q, %v; want %q", got, err, rfc7638JKT)
	}
	raw := append([]byte{4}, b64int(t, rfc9449X).FillBytes(make([]byte, 32))...)
	raw = append(raw, b64int(t, rfc9449Y).FillBytes(make([]byte, 32))...)
	ecKey, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Thumbprint(ecKey); err != nil || got != rfc9449JKT {
		t.Errorf("RFC 9449 example: thumbprint %q, %v; want %q", got, err, rfc9449JKT)
	}
	if got := AccessTokenHash(rfc9449AT); got != rfc9449ATH {
		t.Errorf("RFC 9449 §7.1 ath = %q, want %q", got, rfc9449ATH)
	}
}

// members decodes one base64url JSON part of a compact JWS into a map.
func members(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	// sorted, for comparison
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}

// TestDPoPProofShape checks our proofs against RFC 9449's example: the
// RFC's own proof verifies with go-jose under the key in its header, and
// ours has the same header members (typ, alg, jwk with kty, crv, x, y and
// nothing private), the same claims (plus ath and nonce when given), and
// verifies the same way.
func TestDPoPProofShape(t *testing.T) {
	verify := func(t *testing.T, compact string) (*jose.JSONWebKey, []byte) {
		t.Helper()
		jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		h := jws.Signatures[0].Protected
		if h.ExtraHeaders["typ"] != "dpop+jwt" || h.Algorithm != "ES256" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
			t.Fatalf("header: typ %v, alg %v, jwk %v", h.ExtraHeaders["typ"], h.Algorithm, h.JSONWebKey)
		}
		payload, err := jws.Verify(h.JSONWebKey)
		if err != nil {
			t.Fatalf("signature does not verify under the header's jwk: %v", err)
		}
		return h.JSONWebKey, payload
	}
	rfcJWK, _ := verify(t, rfc9449Proof)
	rfcParts := strings.Split(rfc9449Proof, ".")
	rfcHeader, rfcClaims := members(t, rfcParts[0]), members(t, rfcParts[1])

	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://Server.Example.com/token?x=1#frag")
	now := time.Unix(1562262616, 0)
	p, err := k.Proof("POST", u, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	jwk, payload := verify(t, p)
	parts := strings.Split(p, ".")
	hdr, claims := members(t, parts[0]), members(t, parts[1])
	if keys(hdr) != keys(rfcHeader) || keys(hdr["jwk"].(map[string]any)) != keys(rfcHeader["jwk"].(map[string]any)) {
		t.Errorf("header members %s / jwk %v differ from RFC 9449's %s / %v", keys(hdr), hdr["jwk"], keys(rfcHeader), rfcHeader["jwk"])
	}
	if keys(claims) != keys(rfcClaims) {
		t.Errorf("claims %s, RFC 9449 example has %s", keys(claims), keys(rfcClaims))
	}
	var c ProofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTM != "POST" || c.HTU != "https://server.example.com/token" || c.IAT != now.Unix() || len(c.JTI) < 22 {
		t.Errorf("claims %+v", c)
	}
	if tp, _ := jwk.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != k.jkt {
		t.Error("thumbprint of the header's jwk differs from the key's")
	}
	if tp, _ := rfcJWK.Thumbprint(crypto.SHA256); base64.RawURLEncoding.EncodeToString(tp) != rfc9449JKT {
		t.Error("go-jose's thumbprint of the RFC key differs from RFC 9449 §6.1")
	}

	// A resource proof carries ath and the nonce; two proofs never share a jti.
	p2, err := k.Proof("GET", u, AccessTokenHash(rfc9449AT), "eyJ7S_zG.eyJH0-Z.HX4w-7v", now)
	if err != nil {
		t.Fatal(err)
	}
	c2 := members(t, strings.Split(p2, ".")[1])
	if c2["ath"] != rfc9449ATH || c2["nonce"] != "eyJ7S_zG.eyJH0-Z.HX4w-7v" || c2["jti"] == c.JTI {
		t.Errorf("resource proof claims %v", c2)
	}
}

func TestDPoPKeyRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Unmarshal(b)
	if err != nil || k2.jkt != k.jkt || k2.header != k.header {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := Unmarshal([]byte("garbage")); err == nil {
		t.Error("garbage accepted as a key")
	}
}

// TestDPoPKeyNeverPrinted: the key and everything that carries it
// (a Pending, Tokens, the *oauth2.Token handed to the API transport) print
// no private key material under any fmt verb, slog or JSON.
func TestDPoPKeyNeverPrinted(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := k.Marshal()
	d, err := k.priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		new(big.Int).SetBytes(d).String(),
		fmt.Sprintf("%x", d),
		base64.RawURLEncoding.EncodeToString(d),
		base64.StdEncoding.EncodeToString(der),
		base64.RawURLEncoding.EncodeToString(der),
		fmt.Sprintf("%x", der),
	}
	tok := WithKey(&oauth2.Token{AccessToken: "at", TokenType: "DPoP"}, k)
	for name, v := range map[string]any{"key": k, "token": tok} {
		var out bytes.Buffer
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		j, _ := json.Marshal(v)
		out.Write(j)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
		for _, s := range secrets {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s: printed output holds private key material", name)
			}
		}
	}
}

// TestDPoPNonceInput is the hostile table for the DPoP-Nonce header.
func TestDPoPNonceInput(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		ok     bool
		err    bool
	}{
		{"none", nil, false, false},
		{"good", []string{"eyJ7S_zG.eyJH0-Z.HX4w-7v"}, true, false},
		{"oversize", []string{strings.Repeat("n", maxNonceLen+1)}, false, true},
		{"max size", []string{strings.Repeat("n", maxNonceLen)}, true, false},
		{"control char", []string{"abc\x1bdef"}, false, true},
		{"newline", []string{"abc\ndef"}, false, true},
		{"DEL", []string{"abc\x7f"}, false, true},
		{"space", []string{"a b"}, false, true},
		{"quote", []string{`a"b`}, false, true},
		{"backslash", []string{`a\b`}, false, true},
		{"C1 / UTF-8", []string{"a\u0085b"}, false, true},
		{"bidi", []string{"a\u202eb"}, false, true},
		{"empty", []string{""}, false, true},
		{"repeated", []string{"a", "b"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("DPoP-Nonce", v)
			}
			var s NonceStore
			u, _ := url.Parse("https://as.example")
			err := s.Update(u, h)
			if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrDPoP)) {
				t.Fatalf("err = %v, want error %v matching ErrDPoP", err, tt.err)
			}
			if got := s.Get(u); (got != "") != tt.ok {
				t.Fatalf("stored %q, want stored %v", got, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "\x1b") {
				t.Error("error holds the raw header")
			}
		})
	}
}

func TestNonceStoreBoundedAndScoped(t *testing.T) {
	var s NonceStore
	for i := range 10 * maxNonceOrigin {
		u, _ := url.Parse(fmt.Sprintf("https://h%d.example", i))
		s.Put(u, "n")
	}
	if len(s.m) > maxNonceOrigin {
		t.Fatalf("nonce store holds %d origins", len(s.m))
	}
	a, _ := url.Parse("https://A.example/token")
	b, _ := url.Parse("https://a.example:8443/token")
	s.Put(a, "na")
	if s.Get(b) != "" {
		t.Error("a nonce leaked to another origin (port)")
	}
	a2, _ := url.Parse("https://a.example/other?q")
	if s.Get(a2) != "na" {
		t.Error("a nonce is per origin, not per path")
	}
}

func TestDPoPChallenge(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Bearer realm="x", DPoP algs="ES256", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
	if code, ok := Challenge(h); !ok || code != "use_dpop_nonce" {
		t.Errorf("got %q %v", code, ok)
	}
	if _, ok := Challenge(http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}); ok {
		t.Error("a Bearer challenge read as DPoP")
	}
}

// FuzzDPoPHeaders: the DPoP-Nonce and WWW-Authenticate DPoP parsing never
// panics, and no nonce outside NQCHAR or over the bound is ever stored.
func FuzzDPoPHeaders(f *testing.F) {
	f.Add("eyJ7S_zG.eyJH0-Z.HX4w-7v", `DPoP error="use_dpop_nonce", algs="ES256"`)
	f.Add("a\x00b", `DPoP error="use_dpop_nonce`)
	f.Add(strings.Repeat("x", 600), `Bearer, DPoP ,, DPoP error=use_dpop_nonce`)
	f.Fuzz(func(t *testing.T, nonce, auth string) {
		h := http.Header{"Dpop-Nonce": {nonce}, "Www-Authenticate": {auth}}
		var s NonceStore
		u, _ := url.Parse("https://as.example")
		err := s.Update(u, h)
		got := s.Get(u)
		if got != "" && (err != nil || !ValidNonce(got) || len(got) > maxNonceLen) {
			t.Fatalf("stored a bad nonce %q (err %v)", got, err)
		}
		Challenge(h)
	})
}
