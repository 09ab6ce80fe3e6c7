package validate

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/json"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// DefaultLeeway is the clock leeway used when a config leaves Leeway zero.
const DefaultLeeway = 60 * time.Second

// MaxLeeway is the largest leeway a config may set.
const MaxLeeway = 5 * time.Minute

// IDTokenConfig configures an [IDTokenVerifier]. It is read only by
// [NewIDTokenVerifier] and may be reused or shared afterwards.
type IDTokenConfig struct {
	// Issuer is the exact issuer identifier; "iss" must equal it byte for
	// byte (no case folding, no trailing-slash tolerance). Required.
	Issuer string
	// ClientID must be in "aud", and equal "azp" when "azp" is present or
	// "aud" has several entries. Required.
	ClientID string
	// Algorithms is the server's id_token_signing_alg_values_supported. It is
	// intersected with the asymmetric allow-list (RS256/384/512,
	// PS256/384/512, ES256/384/512, EdDSA); an empty intersection is an error
	// matching ErrAlgorithm. nil or empty means RS256 only.
	Algorithms []string
	// KeySet holds the issuer's keys, usually a *JWKS (which takes a faster
	// path). Required.
	KeySet oidc.KeySet
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// DefaultLeeway (60 s); more than MaxLeeway (5 min) or negative is an
	// error.
	Leeway time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
}

// IDTokenCheck carries the per-flow values an ID token is checked against.
// It is a plain value, passed by copy.
type IDTokenCheck struct {
	// Nonce, when non-empty, must equal the token's "nonce" (compared in
	// constant time); a missing nonce is then an error. S5 makes oauthclient
	// always set it for the authorization-code flow. Empty means the nonce
	// is not checked (an ID token from a refresh).
	Nonce string
	// AccessToken, when non-empty, is checked against "at_hash" if the token
	// has one.
	AccessToken string
	// Code, when non-empty, is checked against "c_hash" if the token has one.
	Code string
}

// IDToken is a verified ID token. It holds the decoded claims, not the
// token itself. Its methods are safe for concurrent use.
type IDToken struct {
	Issuer          string
	Subject         string
	Audience        []string
	AuthorizedParty string // "azp", empty when absent
	Expiry          time.Time
	IssuedAt        time.Time
	AuthTime        time.Time // "auth_time", zero when absent
	Nonce           string
	claims          []byte
}

// Claims decodes the token's claims (the JSON payload) into v.
func (t *IDToken) Claims(v any) error {
	if err := json.Unmarshal(t.claims, v); err != nil {
		return fail(ErrMalformed, "claims do not fit the given type")
	}
	return nil
}

// StandardClaims decodes the common OIDC profile claims, tolerating the
// usual quirks (see [StandardClaims]).
func (t *IDToken) StandardClaims() (StandardClaims, error) {
	return ParseStandardClaims(t.claims)
}

// IDTokenVerifier verifies ID tokens (S8). It is safe for concurrent use.
type IDTokenVerifier struct {
	issuerKeys
	clientID string
}

// issuerKeys is what the ID token and access token verifiers share: the
// issuer, its keys, the accepted algorithms, the leeway and the clock.
type issuerKeys struct {
	issuer string
	algs   []string
	keys   oidc.KeySet
	jwks   *JWKS // keys as *JWKS, or nil
	leeway time.Duration
	now    func() time.Time
}

// newIssuerKeys applies the defaults and checks of both verifiers' configs.
func newIssuerKeys(issuer string, keys oidc.KeySet, algorithms []string, leeway time.Duration, now func() time.Time) (issuerKeys, error) {
	l, err := checkLeeway(leeway)
	if err != nil {
		return issuerKeys{}, err
	}
	algs, err := allowedAlgs(algorithms)
	if err != nil {
		return issuerKeys{}, err
	}
	if now == nil {
		now = time.Now
	}
	k := issuerKeys{issuer: issuer, algs: algs, keys: keys, leeway: l, now: now}
	k.jwks, _ = keys.(*JWKS)
	return k, nil
}

// NewIDTokenVerifier returns a verifier for cfg. It does no I/O and is safe
// for concurrent use. Configuration errors match ErrConfig; an empty
// algorithm intersection matches ErrAlgorithm.
func NewIDTokenVerifier(cfg IDTokenConfig) (*IDTokenVerifier, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.KeySet == nil {
		return nil, fail(ErrConfig, "issuer, client id and key set are required")
	}
	k, err := newIssuerKeys(cfg.Issuer, cfg.KeySet, cfg.Algorithms, cfg.Leeway, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &IDTokenVerifier{issuerKeys: k, clientID: cfg.ClientID}, nil
}

func checkLeeway(l time.Duration) (time.Duration, error) {
	switch {
	case l == 0:
		return DefaultLeeway, nil
	case l < 0 || l > MaxLeeway:
		return 0, fail(ErrConfig, "leeway must be between 0 and 5 minutes")
	}
	return l, nil
}

// allowedAlgs intersects the advertised algorithms with the allow-list.
func allowedAlgs(advertised []string) ([]string, error) {
	if len(advertised) == 0 {
		return []string{"RS256"}, nil
	}
	var out []string
	for _, a := range asymmetricAlgs {
		if contains(advertised, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fail2(ErrAlgorithm, ErrConfig, "the server advertises no allowed asymmetric algorithm")
	}
	return out, nil
}

// verifySigned checks size, header, algorithm and signature, and returns
// the header and payload. Shared by ID and access tokens.
func verifySigned(ctx context.Context, raw string, algs []string, keys oidc.KeySet, jwks *JWKS) (*rawJWT, []byte, error) {
	t, err := splitJWT(raw)
	if err != nil {
		return nil, nil, err
	}
	if !contains(algs, t.hdr.Alg) {
		return nil, nil, fail(ErrAlgorithm, "not among the allowed algorithms")
	}
	if t.unsigned {
		return nil, nil, fail(ErrMalformed, "empty signature")
	}
	var payload []byte
	if jwks != nil {
		payload, err = jwks.verify(ctx, t)
		if err != nil {
			return nil, nil, err
		}
	} else {
		payload, err = keys.VerifySignature(ctx, raw)
		if err != nil {
			// Other KeySets' messages are not ours to vouch for: drop them.
			return nil, nil, fail(ErrSignature, "key set refused the signature")
		}
	}
	return t, payload, nil
}

// isIDTokenTyp reports whether typ is acceptable on an ID token: absent or
// "JWT" (any case, with or without "application/").
func isIDTokenTyp(typ string) bool {
	typ = strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	return typ == "" || typ == "jwt"
}

// Verify checks raw as an ID token for this issuer and client and against
// chk, and returns its claims. Errors match the sentinels of this package
// (see the package doc); none contains the token.
func (v *IDTokenVerifier) Verify(ctx context.Context, raw string, chk IDTokenCheck) (*IDToken, error) {
	t, payload, err := verifySigned(ctx, raw, v.algs, v.keys, v.jwks)
	if err != nil {
		return nil, err
	}
	if !isIDTokenTyp(t.hdr.Typ) {
		return nil, fail(ErrTokenType, "typ is not that of an ID token")
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := checkIssuer(c, v.issuer); err != nil {
		return nil, err
	}
	if !slices.Contains(c.Aud, v.clientID) {
		return nil, fail(ErrAudience, "client id not in aud")
	}
	if c.Azp != nil || len(c.Aud) > 1 {
		if c.Azp == nil {
			return nil, fail2(ErrAuthorizedParty, ErrAudience, "several audiences and no azp")
		}
		if *c.Azp != v.clientID {
			return nil, fail2(ErrAuthorizedParty, ErrAudience, "azp is not the client id")
		}
	}
	if c.Sub == "" {
		return nil, fail(ErrMissingClaim, "sub")
	}
	if err := timeChecks(c, v.now(), v.leeway, true); err != nil {
		return nil, err
	}
	switch {
	case chk.Nonce != "" && c.Nonce == nil:
		return nil, fail(ErrNonce, "nonce missing")
	case chk.Nonce != "" && subtle.ConstantTimeCompare([]byte(chk.Nonce), []byte(*c.Nonce)) != 1:
		return nil, fail(ErrNonce, "")
	}
	if chk.AccessToken != "" && c.AtHash != "" && !hashMatches(t.hdr.Alg, chk.AccessToken, c.AtHash) {
		return nil, fail(ErrTokenHash, "at_hash")
	}
	if chk.Code != "" && c.CHash != "" && !hashMatches(t.hdr.Alg, chk.Code, c.CHash) {
		return nil, fail(ErrTokenHash, "c_hash")
	}
	tok := &IDToken{
		Issuer: *c.Iss, Subject: c.Sub, Audience: []string(c.Aud),
		Expiry: c.Exp.t, IssuedAt: c.Iat.t, AuthTime: c.AuthTime.t,
		claims: payload,
	}
	if c.Azp != nil {
		tok.AuthorizedParty = *c.Azp
	}
	if c.Nonce != nil {
		tok.Nonce = *c.Nonce
	}
	return tok, nil
}

// hashMatches checks an at_hash or c_hash (OIDC Core §3.3.2.11): the
// base64url of the left half of the alg's hash of value.
func hashMatches(alg, value, claim string) bool {
	var h hash.Hash
	switch alg {
	case "RS256", "PS256", "ES256":
		h = sha256.New()
	case "RS384", "PS384", "ES384":
		h = sha512.New384()
	case "RS512", "PS512", "ES512", "EdDSA": // Ed25519 uses SHA-512
		h = sha512.New()
	default:
		return false
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	want := b64.EncodeToString(sum[:len(sum)/2])
	return subtle.ConstantTimeCompare([]byte(want), []byte(claim)) == 1
}

// CheckUserInfoSubject checks that a UserInfo response's "sub" equals the
// verified ID token's (OIDC Core §5.3.2). A nil token or an empty sub is
// refused. The error matches ErrSubject. It is safe for concurrent use.
func CheckUserInfoSubject(idToken *IDToken, userinfoSub string) error {
	if idToken == nil || idToken.Subject == "" {
		return fail(ErrSubject, "no verified ID token subject")
	}
	if userinfoSub == "" {
		return fail(ErrSubject, "userinfo has no sub")
	}
	if userinfoSub != idToken.Subject {
		return fail(ErrSubject, "userinfo sub differs from the ID token's")
	}
	return nil
}
