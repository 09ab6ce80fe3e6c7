package validate

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// AccessTokenConfig configures an [AccessTokenVerifier]. It is read only by
// [NewAccessTokenVerifier] and may be reused or shared afterwards.
type AccessTokenConfig struct {
	// Issuer is the exact issuer identifier ("iss"). Required.
	Issuer string
	// Audience is this resource server's identifier; "aud" must contain it.
	// Required.
	Audience string
	// ClientID, when set, must equal the token's "client_id". Empty means any
	// client is accepted, but a "client_id" that is present must still be a
	// string.
	ClientID string
	// Algorithms is intersected with the asymmetric allow-list like
	// [IDTokenConfig.Algorithms]; nil means RS256 only.
	Algorithms []string
	// KeySet holds the issuer's keys, usually from [NewJWKS]. Required.
	KeySet oidc.KeySet
	// Leeway for exp and nbf; zero means 60 s, more than 5 min is an error.
	Leeway time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
}

// AccessTokenVerifier verifies access tokens: JWTs by their signature and
// claims (RFC 9068, S9) when made by [NewAccessTokenVerifier], opaque
// tokens by asking the issuer (RFC 7662) when made by [NewIntrospector].
// It is safe for concurrent use.
type AccessTokenVerifier struct {
	issuerKeys
	audience, clientID string
	in                 *introspector // set by NewIntrospector
}

// AccessToken is a verified access token (from a JWT or an introspection
// response). It holds claims, never the token itself. Its methods are safe
// for concurrent use.
type AccessToken struct {
	Issuer    string
	Subject   string
	ClientID  string
	Audience  []string
	Expiry    time.Time // zero only for an introspected token without exp
	IssuedAt  time.Time
	NotBefore time.Time
	JWTID     string
	// Scopes are the granted scopes, from "scope" (space-separated) or
	// else "scp". Check them with [AccessToken.RequireScopes].
	Scopes []string
	claims []byte
}

// NewAccessTokenVerifier returns a verifier for cfg. It does no I/O and is
// safe for concurrent use. A bad configuration (also one that leaves no
// allowed algorithm) is a configuration error (ErrConfig).
func NewAccessTokenVerifier(cfg AccessTokenConfig) (*AccessTokenVerifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.KeySet == nil {
		return nil, configError("issuer, audience and key set are required")
	}
	k, err := newIssuerKeys(cfg.Issuer, cfg.KeySet, cfg.Algorithms, cfg.Leeway, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &AccessTokenVerifier{issuerKeys: k, audience: cfg.Audience, clientID: cfg.ClientID}, nil
}

// isAccessTokenTyp reports whether typ is "at+jwt" or "application/at+jwt"
// (media types are case-insensitive).
func isAccessTokenTyp(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// Verify checks raw and returns its claims. Scopes are not checked here:
// call [AccessToken.RequireScopes].
//
// Made by NewAccessTokenVerifier, it checks raw as an RFC 9068 JWT access
// token for this resource; an ID token (typ JWT or none) is a [*ClaimError]
// for "typ". Made by NewIntrospector, it asks the introspection endpoint,
// and accepts the token when the answer says it is active and passes the
// issuer, audience, client and time checks; an inactive token is a
// [*ClaimError] for "active". A failed check matches [ErrInvalidToken]; a
// key set or introspection endpoint that could not answer matches
// [ErrIssuerUnavailable].
func (v *AccessTokenVerifier) Verify(ctx context.Context, raw string) (*AccessToken, error) {
	if v.in != nil {
		return v.in.verify(ctx, raw)
	}
	t, payload, err := verifySigned(ctx, raw, v.algs, v.keys, v.jwks)
	if err != nil {
		return nil, err
	}
	if !isAccessTokenTyp(t.hdr.Typ) {
		return nil, claimFail("typ", "typ is not at+jwt", errTokenType)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if c.Nonce != nil || c.AtHash != "" || c.CHash != "" {
		// Belt and braces: only ID tokens carry these.
		return nil, claimFail("typ", "claims are those of an ID token", errTokenType)
	}
	if err := checkIssuer(c, v.issuer); err != nil {
		return nil, err
	}
	if !slices.Contains(c.Aud, v.audience) {
		return nil, &ClaimError{Claim: "aud", Reason: "resource not in aud", Expected: v.audience, kinds: []error{errAudience}}
	}
	if err := timeChecks(c, v.now(), v.leeway, false); err != nil {
		return nil, err
	}
	if v.clientID != "" && (c.ClientID == nil || *c.ClientID != v.clientID) {
		return nil, &ClaimError{Claim: "client_id", Missing: c.ClientID == nil, Expected: v.clientID, kinds: []error{errClientID}}
	}
	at := &AccessToken{
		Issuer: *c.Iss, Subject: c.Sub, Audience: []string(c.Aud),
		Expiry: c.Exp.Time, IssuedAt: c.Iat.Time, NotBefore: c.Nbf.Time, JWTID: c.Jti,
		Scopes: scopesOf(c), claims: payload,
	}
	if c.ClientID != nil {
		at.ClientID = *c.ClientID
	}
	return at, nil
}

// scopesOf takes "scope" (space-separated) when present, else "scp".
func scopesOf(c *commonClaims) []string {
	if c.Scope != nil {
		return strings.Fields(*c.Scope)
	}
	return []string(c.Scp)
}

// RequireScopes returns nil when every scope in required was granted, and
// otherwise an [*InsufficientScopeError] naming the missing ones (match it
// with [errors.As]).
func (t *AccessToken) RequireScopes(required ...string) error {
	var missing []string
	for _, s := range required {
		if !contains(t.Scopes, s) && !contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if missing != nil {
		return &InsufficientScopeError{Scope: missing}
	}
	return nil
}

// Claims decodes the token's claims (JWT payload or introspection response)
// into v.
func (t *AccessToken) Claims(v any) error {
	if err := json.Unmarshal(t.claims, v); err != nil {
		return fail(errMalformed, "claims do not fit the given type")
	}
	return nil
}
