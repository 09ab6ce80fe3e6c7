package validate_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/validate"
)

// issuer signs ID tokens with key, as a provider would; offline.
type issuer struct {
	key *ecdsa.PrivateKey
}

func newIssuer() issuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return issuer{key: key}
}

func (is issuer) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: is.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// verifier checks ID tokens of https://login.example.test for the client
// "my-app", with the issuer's public key as a static key set (a real
// application uses validate.NewJWKS with the issuer's jwks_uri), at a fixed
// time so that the output is stable.
func verifier(is issuer, now time.Time) *validate.IDTokenVerifier {
	v, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{
		Issuer:     "https://login.example.test",
		ClientID:   "my-app",
		Algorithms: []string{"ES256"}, // the provider's id_token_signing_alg_values_supported
		KeySet:     &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{is.key.Public()}},
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	return v
}

func idClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://login.example.test", "aud": "my-app", "sub": "user-42",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": "n-0S6_WzA2Mj", "email": "ada@example.test", "email_verified": "true",
	}
}

// Verify an ID token: signature, issuer, audience, times and the nonce of
// the login that asked for it. The profile claims are on the token.
func ExampleIDTokenVerifier_Verify() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	is := newIssuer()
	raw := is.sign(idClaims(now))

	tok, err := verifier(is, now).Verify(context.Background(), raw, validate.IDTokenCheck{Nonce: "n-0S6_WzA2Mj"})
	if err != nil {
		fmt.Println(err)
		return
	}
	verified := tok.EmailVerified && tok.Email != "" // "true" as a string counts: a common quirk
	fmt.Println(tok.Subject, tok.Email, verified, tok.Expiry.Sub(now))
	// Output: user-42 ada@example.test true 5m0s
}

// Tell an expired token (the client should refresh) from one that is not
// the issuer's at all: both match ErrInvalidToken; a failed claim check is
// a *ClaimError naming the claim.
func Example_expiredOrForged() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	is := newIssuer()
	v := verifier(is, now)
	expired := is.sign(idClaims(now.Add(-time.Hour)))
	forged := newIssuer().sign(idClaims(now)) // someone else's key

	for _, raw := range []string{expired, forged} {
		_, err := v.Verify(context.Background(), raw, validate.IDTokenCheck{Nonce: "n-0S6_WzA2Mj"})
		var ce *validate.ClaimError
		switch {
		case errors.As(err, &ce) && ce.Claim == "exp":
			fmt.Println("expired: refresh and retry")
		case errors.Is(err, validate.ErrIssuerUnavailable):
			fmt.Println("the issuer's keys are unreachable: try later")
		case errors.Is(err, validate.ErrInvalidToken):
			fmt.Println("not a token of ours: refuse")
		}
	}
	// Output:
	// expired: refresh and retry
	// not a token of ours: refuse
}

// A resource server checks the scopes a route needs; the error names the
// missing ones; match it with errors.As (answer 403).
func ExampleAccessToken_RequireScopes() {
	at := &validate.AccessToken{Subject: "user-42", Scopes: []string{"invoices.read"}}
	fmt.Println(at.RequireScopes("invoices.read"))
	err := at.RequireScopes("invoices.read", "invoices.write")
	var ise *validate.InsufficientScopeError
	fmt.Println(errors.As(err, &ise), ise.Scope)
	fmt.Println(err)
	// Output:
	// <nil>
	// true [invoices.write]
	// validate: insufficient scope: needs invoices.write
}
