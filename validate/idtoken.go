package validate

import (
	"context"
	"errors"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// IDTokenConfig configures an [IDTokenVerifier].
type IDTokenConfig struct {
	Issuer     string        // exact issuer identifier
	ClientID   string        // must be in aud
	Algorithms []string      // allowed signing algorithms (server metadata); nil means RS256
	KeySet     oidc.KeySet   // keys of the issuer, usually a *JWKS
	Leeway     time.Duration // clock leeway; 0 means 60s
	Now        func() time.Time
}

// IDTokenCheck carries the per-flow values an ID token is checked against.
type IDTokenCheck struct {
	Nonce       string // required when non-empty; S5 makes oauthclient always set it
	AccessToken string // at_hash is checked when present in the token
	Code        string // c_hash is checked when present in the token
}

// IDToken is a verified ID token.
type IDToken struct {
	Issuer   string
	Subject  string
	Audience []string
	Expiry   time.Time
	IssuedAt time.Time
	Nonce    string
	raw      *oidc.IDToken
}

// Claims decodes the token's claims into v.
func (t *IDToken) Claims(v any) error { return t.raw.Claims(v) }

// IDTokenVerifier verifies ID tokens. It is safe for concurrent use.
type IDTokenVerifier struct {
	cfg IDTokenConfig
	v   *oidc.IDTokenVerifier
}

// NewIDTokenVerifier returns a verifier for cfg.
func NewIDTokenVerifier(cfg IDTokenConfig) (*IDTokenVerifier, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.KeySet == nil {
		return nil, errors.New("validate: issuer, client id and key set are required")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	v := oidc.NewVerifier(cfg.Issuer, cfg.KeySet, &oidc.Config{ClientID: cfg.ClientID, SupportedSigningAlgs: algs, Now: cfg.Now})
	return &IDTokenVerifier{cfg: cfg, v: v}, nil
}

// Verify checks raw and returns the verified token.
func (v *IDTokenVerifier) Verify(ctx context.Context, raw string, chk IDTokenCheck) (*IDToken, error) {
	t, err := v.v.Verify(ctx, raw)
	if err != nil {
		return nil, errors.New("validate: id token rejected")
	}
	if chk.Nonce != "" && t.Nonce != chk.Nonce {
		return nil, errors.New("validate: nonce mismatch")
	}
	return &IDToken{Issuer: t.Issuer, Subject: t.Subject, Audience: t.Audience, Expiry: t.Expiry, IssuedAt: t.IssuedAt, Nonce: t.Nonce, raw: t}, nil
}
