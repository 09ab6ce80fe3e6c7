package validate

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	jose "github.com/go-jose/go-jose/v4"
)

func atSign(t *testing.T, typ string, claims map[string]any) string {
	return sign(t, signOpts{alg: jose.RS256, key: rsaKey, kid: "rsa1", typ: typ}, claims)
}

func TestAccessTokenVerify(t *testing.T) {
	_, atv, _ := testVerifiers(t)
	ctx := context.Background()
	at, err := atv.Verify(ctx, atSign(t, "at+jwt", atClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if at.Issuer != testIssuer || at.Subject != "user-42" || at.ClientID != testClientID || at.JWTID != "jti-1" ||
		!reflect.DeepEqual(at.Scopes, []string{"read", "write"}) {
		t.Fatalf("unexpected %+v", at)
	}
	if _, err := atv.Verify(ctx, atSign(t, "application/AT+JWT", with(atClaims(), "aud", []string{"x", testResource}))); err != nil {
		t.Fatalf("application/at+jwt, aud list: %v", err)
	}
	scp, err := atv.Verify(ctx, atSign(t, "at+jwt", with(atClaims(), "scope", nil, "scp", []string{"a", "b"})))
	if err != nil || !reflect.DeepEqual(scp.Scopes, []string{"a", "b"}) {
		t.Fatalf("scp array: %v %v", err, scp)
	}
	scp, err = atv.Verify(ctx, atSign(t, "at+jwt", with(atClaims(), "scope", nil, "scp", "a b")))
	if err != nil || !reflect.DeepEqual(scp.Scopes, []string{"a", "b"}) {
		t.Fatalf("scp string: %v %v", err, scp)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"typ JWT", atSign(t, "JWT", atClaims()), errTokenType},
		{"no typ", atSign(t, "-", atClaims()), errTokenType},
		{"ID token", atSign(t, "", idClaims()), errTokenType},
		{"aud is the client, not the resource", atSign(t, "at+jwt", with(atClaims(), "aud", testClientID)), errAudience},
		{"wrong iss", atSign(t, "at+jwt", with(atClaims(), "iss", testIssuer+"/")), errIssuer},
		{"expired", atSign(t, "at+jwt", with(atClaims(), "exp", testNow.Add(-2*time.Minute).Unix())), errExpired},
		{"exp missing", atSign(t, "at+jwt", with(atClaims(), "exp", nil)), errMissingClaim},
		{"nbf future", atSign(t, "at+jwt", with(atClaims(), "nbf", testNow.Add(2*time.Minute).Unix())), errNotYetValid},
		{"other client_id", atSign(t, "at+jwt", with(atClaims(), "client_id", "other")), errClientID},
		{"client_id missing", atSign(t, "at+jwt", with(atClaims(), "client_id", nil)), errClientID},
		{"client_id not a string", atSign(t, "at+jwt", with(atClaims(), "client_id", 7)), errMalformed},
		{"alg none", rawJWS(`{"alg":"none","typ":"at+jwt"}`, `{}`, nil), errAlgorithm},
		{"scope not a string", atSign(t, "at+jwt", with(atClaims(), "scope", []string{"a"})), errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := atv.Verify(ctx, tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			assertNoLeak(t, err, tc.token)
		})
	}
}

func TestRequireScopes(t *testing.T) {
	at := &AccessToken{Scopes: []string{"read", "write"}}
	if err := at.RequireScopes("read", "write"); err != nil {
		t.Fatal(err)
	}
	if err := at.RequireScopes(); err != nil {
		t.Fatal(err)
	}
	err := at.RequireScopes("read", "admin", "delete", "admin")
	var ise *InsufficientScopeError
	if !errors.As(err, &ise) || !reflect.DeepEqual(ise.Scope, []string{"admin", "delete"}) {
		t.Fatalf("missing = %v", ise)
	}
	if err.Error() != "validate: insufficient scope: needs admin delete" {
		t.Fatalf("message %q", err.Error())
	}
	if errors.Is(err, errInactive) {
		t.Fatal("matches an unrelated sentinel")
	}
}

func TestNewAccessTokenVerifierConfig(t *testing.T) {
	testKeys(t)
	ks := newKeyServer(t, standardJWKS(t))
	jwks := newTestJWKS(t, ks, nil)
	for _, cfg := range []AccessTokenConfig{
		{Audience: testResource, KeySet: jwks},
		{Issuer: testIssuer, KeySet: jwks},
		{Issuer: testIssuer, Audience: testResource},
		{Issuer: testIssuer, Audience: testResource, KeySet: jwks, Leeway: time.Hour},
	} {
		if _, err := NewAccessTokenVerifier(cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if _, err := NewAccessTokenVerifier(AccessTokenConfig{Issuer: testIssuer, Audience: testResource, KeySet: jwks, Algorithms: []string{"HS512"}}); !errors.Is(err, errAlgorithm) {
		t.Errorf("HS512 only: %v", err)
	}
}
