package oauthclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/google/uuid"
	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// assertionLifetime is the lifetime of the client assertions the client
// signs with Config.PrivateKey (S16: 60 s or less).
const assertionLifetime = 60 * time.Second

// signedAssertion is the assertion.Source of Config.PrivateKey: it signs
// a new assertion with the key for each call (RFC 7523 §3): iss Issuer,
// sub Subject, aud the audience asked for (the authorization server's
// issuer, as a single string), a uuid jti, iat now and exp
// assertionLifetime later, typ Type. The
// algorithm follows the key: RS256 for RSA (2048 bits or more), ES256,
// ES384 or ES512 for ECDSA P-256, P-384 or P-521, EdDSA for Ed25519.
//
// Key, Issuer and Subject are required. KeyID is sent as kid; "" sends
// none. Type is the typ header; "" means "JWT" (oauthclient signs its
// client assertions with "client-authentication+jwt"). Now is the clock;
// nil means time.Now. It is safe for concurrent use when Key is.
type signedAssertion struct {
	Key     crypto.Signer
	KeyID   string
	Issuer  string
	Subject string
	Type    string
	Now     func() time.Time
}

// assertionClaims are the RFC 7523 §3 claims of a signed client assertion.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	NotAfter int64  `json:"exp"`
}

// Assertion signs a new assertion for audience and returns its compact
// JWS (Client.clientAssertion parses it at once, as it does what
// Config.ClientAssertion returns). Errors match assertion.ErrSource
// (a missing field, a key that cannot sign), and strictnet.ErrPolicy for
// an RSA key shorter than 2048 bits, ErrConfig for a key type it does not
// sign with.
func (s signedAssertion) Assertion(_ context.Context, audience string) (string, error) {
	if s.Key == nil || s.Issuer == "" || s.Subject == "" || audience == "" {
		return "", fmt.Errorf("%w: the signed client assertion needs a Key, an Issuer, a Subject and an audience", assertion.ErrSource)
	}
	alg, err := signingAlg(s.Key.Public())
	if err != nil {
		return "", err
	}
	typ := s.Type
	if typ == "" {
		typ = "JWT"
	}
	key := jose.JSONWebKey{Key: cryptosigner.Opaque(s.Key), KeyID: s.KeyID, Algorithm: string(alg)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", fmt.Errorf("%w: signer: %w", assertion.ErrSource, err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	exp := t.Add(assertionLifetime)
	payload, err := json.Marshal(assertionClaims{
		Issuer: s.Issuer, Subject: s.Subject, Audience: audience,
		ID: uuid.NewString(), IssuedAt: t.Unix(), NotAfter: exp.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", assertion.ErrSource, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("%w: signing: %w", assertion.ErrSource, err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("%w: %w", assertion.ErrSource, err)
	}
	return raw, nil
}

// signingAlg returns the JWS algorithm signedAssertion uses for a public key, or
// an error: strictnet.ErrPolicy for an RSA key shorter than 2048 bits,
// assertion.ErrSource and ErrConfig for a key type it does not sign with.
func signingAlg(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return "", &strictnet.PolicyError{Reason: "RSA keys for assertions must have at least 2048 bits"}
		}
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("%w: %w", assertion.ErrSource, cfgerr.New("oauthclient", "unsupported key type %T", pub))
}
