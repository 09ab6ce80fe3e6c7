package assertion

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
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// Lifetime is the lifetime of the assertions [Signed] makes (S16: 60 s or
// less).
const Lifetime = 60 * time.Second

// Signed is a Source that signs a new assertion with a key this process
// holds, for each call (RFC 7523 §3): iss Issuer, sub Subject, aud the
// audience asked for (the authorization server's issuer, as a single
// string), a uuid jti, iat now and exp Lifetime later, typ Type. The
// algorithm follows the key: RS256 for RSA (2048 bits or more), ES256,
// ES384 or ES512 for ECDSA P-256, P-384 or P-521, EdDSA for Ed25519.
//
// Key, Issuer and Subject are required. KeyID is sent as kid; "" sends
// none. Type is the typ header; "" means "JWT" (oauthclient signs its
// client assertions with "client-authentication+jwt"). Now is the clock;
// nil means time.Now. It is safe for concurrent use when Key is.
type Signed struct {
	Key     crypto.Signer
	KeyID   string
	Issuer  string
	Subject string
	Type    string
	Now     func() time.Time
}

// claims are the RFC 7523 §3 claims of a signed assertion.
type claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	NotAfter int64  `json:"exp"`
}

// Assertion signs a new assertion for audience. Errors match ErrSource
// (a missing field, a key that cannot sign), and strictnet.ErrPolicy for
// an RSA key shorter than 2048 bits, ErrConfig for a key type it does not
// sign with.
func (s Signed) Assertion(_ context.Context, audience string) (JWT, error) {
	if s.Key == nil || s.Issuer == "" || s.Subject == "" || audience == "" {
		return JWT{}, fmt.Errorf("%w: Signed needs a Key, an Issuer, a Subject and an audience", ErrSource)
	}
	alg, err := signingAlg(s.Key.Public())
	if err != nil {
		return JWT{}, err
	}
	typ := s.Type
	if typ == "" {
		typ = "JWT"
	}
	key := jose.JSONWebKey{Key: cryptosigner.Opaque(s.Key), KeyID: s.KeyID, Algorithm: string(alg)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return JWT{}, fmt.Errorf("%w: signer: %w", ErrSource, err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	exp := t.Add(Lifetime)
	payload, err := json.Marshal(claims{
		Issuer: s.Issuer, Subject: s.Subject, Audience: audience,
		ID: uuid.NewString(), IssuedAt: t.Unix(), NotAfter: exp.Unix(),
	})
	if err != nil {
		return JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return JWT{}, fmt.Errorf("%w: signing: %w", ErrSource, err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return JWT{raw: raw, exp: time.Unix(exp.Unix(), 0)}, nil
}

// signingAlg returns the JWS algorithm Signed uses for a public key, or
// an error: strictnet.ErrPolicy for an RSA key shorter than 2048 bits,
// ErrSource and ErrConfig for a key type it does not sign with.
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
	return "", fmt.Errorf("%w: %w", ErrSource, cfgerr.New("assertion", "unsupported key type %T", pub))
}
