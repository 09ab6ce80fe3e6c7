package oauthclient

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/google/uuid"
	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// assertionLifetime is the lifetime of a private_key_jwt client assertion
// (S16: 60 s or less).
const assertionLifetime = 60 * time.Second

// assertionType is the typ header of client assertions
// (draft-ietf-oauth-rfc7523bis: explicit typing prevents cross-JWT confusion).
const assertionType = "client-authentication+jwt"

// authenticate adds the client's credentials to a request to a server
// endpoint, using exactly the one configured method (S17).
func (c *Client) authenticate(form url.Values, h http.Header) error {
	switch c.method {
	case AuthNone, AuthTLSClientAuth:
		form.Set("client_id", c.cfg.ClientID)
	case AuthClientSecretBasic:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		req := http.Request{Header: h}
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret.Reveal()))
	case AuthClientSecretPost:
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret.Reveal())
	case AuthPrivateKeyJWT:
		a, err := c.clientAssertion()
		if err != nil {
			return err
		}
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
	default:
		return cfgerr.New("oauthclient", "unknown client authentication method %q", safetext.Clean(string(c.method), 64))
	}
	return nil
}

// assertionClaims are the RFC 7523 §3 claims of a client assertion.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"` // the issuer, as a single string (S16)
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	NotAfter int64  `json:"exp"`
}

func (c *Client) clientAssertion() (string, error) {
	alg, err := signingAlg(c.cfg.PrivateKey.Public())
	if err != nil {
		return "", err
	}
	key := jose.JSONWebKey{Key: cryptosigner.Opaque(c.cfg.PrivateKey), KeyID: c.cfg.KeyID, Algorithm: string(alg)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType(assertionType))
	if err != nil {
		return "", fmt.Errorf("oauthclient: client assertion signer: %w", err)
	}
	now := c.cfg.Now()
	payload, err := json.Marshal(assertionClaims{
		Issuer:   c.cfg.ClientID,
		Subject:  c.cfg.ClientID,
		Audience: c.cfg.Issuer,
		ID:       uuid.NewString(),
		IssuedAt: now.Unix(),
		NotAfter: now.Add(assertionLifetime).Unix(),
	})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oauthclient: signing client assertion: %w", err)
	}
	return jws.CompactSerialize()
}

func signingAlg(k any) (jose.SignatureAlgorithm, error) {
	switch pk := k.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 2048 {
			return "", policyf("RSA keys for private_key_jwt must have at least 2048 bits")
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
	return "", cfgerr.New("oauthclient", "unsupported private_key_jwt key type %T", k)
}
