package validate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// sentinels lists every precise kind a verification error may match;
// every one also matches an exported sentinel.
var sentinels = []error{
	errMalformed, errAlgorithm, errSignature, errKeyNotFound, errKeySet, errIssuer,
	errAudience, errAuthorizedParty, errClientID, errExpired, errNotYetValid,
	errMissingClaim, errNonce, errTokenHash, errTokenType, errInactive, errIntrospection,
}

func typed(err error) bool {
	if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrIssuerUnavailable) {
		return false
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzVerifyJWT feeds arbitrary strings through the whole ID token and access
// token verification (header parsing, key lookup, go-jose, claims). It must
// never panic, every error must be typed and must not echo the input, and
// anything accepted must really satisfy the checks.
func FuzzVerifyJWT(f *testing.F) {
	testKeys(f)
	idv, atv, _ := testVerifiers(f)
	valid := sign(f, rs256(), idClaims())
	f.Add(valid)
	f.Add(sign(f, signOpts{alg: "RS256", key: rsaKey, kid: "rsa1", typ: "at+jwt"}, atClaims()))
	f.Add(rawJWS(`{"alg":"none"}`, `{"iss":"x"}`, nil))
	f.Add(strings.Repeat(".", 100))
	f.Add("a.b.c")
	f.Add(valid[:len(valid)/2])
	f.Add(rawJWS(`{"alg":"RS256","kid":"rsa1"}`, `{"exp":1e400}`, []byte("x")))
	f.Add(rawJWS(`{"alg":"RS256","kid":"rsa1","crit":["b64"],"b64":false}`, `{}`, []byte("x")))
	f.Add(rawJWS(`{"alg":"RS256","kid":"rsa1","x5c":["!!"]}`, `{}`, []byte("x")))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := idv.Verify(ctx, raw, IDTokenCheck{Nonce: testNonce})
		if err == nil {
			if tok.Issuer != testIssuer || tok.Nonce != testNonce || !tok.Expiry.After(testNow.Add(-defaultLeeway)) {
				t.Fatalf("accepted a token that fails the checks: %+v", tok)
			}
		} else {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
				t.Fatal("error echoes the input")
			}
		}
		if _, err := atv.Verify(ctx, raw); err != nil && !typed(err) {
			t.Fatalf("untyped access token error: %v", err)
		}
	})
}

// FuzzParseIntrospection feeds arbitrary bodies to the RFC 7662 response
// parser. It must never panic, errors must be typed, and an accepted
// response must have been active with the right issuer and audience.
func FuzzParseIntrospection(f *testing.F) {
	f.Add([]byte(activeBody("")))
	f.Add([]byte(`{"active":false}`))
	f.Add([]byte(`{"active":"true"}`))
	f.Add([]byte(`{"active":true,"iss":"` + testIssuer + `","aud":"` + testResource + `","exp":1e308}`))
	f.Add([]byte(`{"active":true,"iss":"` + testIssuer + `","aud":["` + testResource + `"],"scp":"a b","nbf":-1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
	chk := introspectionChecks{issuer: testIssuer, audience: testResource, leeway: defaultLeeway}
	f.Fuzz(func(t *testing.T, body []byte) {
		at, err := parseIntrospection(body, testNow, chk)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if (at.Issuer != "" && at.Issuer != testIssuer) || !contains(at.Audience, testResource) ||
			(!at.Expiry.IsZero() && !at.Expiry.After(testNow.Add(-defaultLeeway-time.Second))) {
			t.Fatalf("accepted a bad response: %+v", at)
		}
		_ = at.RequireScopes("read")
	})
}
