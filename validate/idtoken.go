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
	"github.com/oauthsafe/oauthsafe/internal/claims"
)

// defaultLeeway is the clock leeway used when a config leaves Leeway zero;
// maxLeeway is the largest a config may set.
const (
	defaultLeeway = 60 * time.Second
	maxLeeway     = 5 * time.Minute
)

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
	// (a configuration error). nil or empty means RS256 only.
	Algorithms []string
	// KeySet holds the issuer's keys, usually from [NewJWKS] (which takes a
	// faster path). Required.
	KeySet oidc.KeySet
	// Leeway is the clock skew allowed for exp, nbf and iat. Zero means
	// 60 s; more than 5 min or negative is an error.
	Leeway time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
}

// IDTokenCheck carries the per-flow values an ID token is checked against.
// It is a plain value, passed by copy. Printed with fmt or slog, or encoded
// as JSON, it never shows the nonce, the access token or the code (S12).
type IDTokenCheck struct {
	// Nonce, when non-empty, must equal the token's "nonce" (compared in
	// constant time); a missing nonce is then an error. S5 makes oauthclient
	// always set it for the authorization-code flow. Empty means the nonce
	// is not checked (an ID token from a refresh).
	Nonce string `json:"-"`
	// AccessToken, when non-empty, is checked against "at_hash" if the token
	// has one.
	AccessToken string `json:"-"`
	// Code, when non-empty, is checked against "c_hash" if the token has one.
	Code string `json:"-"`
}

// IDToken is a verified ID token. It holds the decoded claims, not the
// token itself: the registered ones, and the profile claims (Subject,
// Email, ...) through the embedded [StandardClaims]. Its methods are safe
// for concurrent use.
type IDToken struct {
	Issuer          string
	Audience        []string
	AuthorizedParty string // "azp", empty when absent
	Expiry          time.Time
	IssuedAt        time.Time
	AuthTime        time.Time // "auth_time", zero when absent
	Nonce           string
	StandardClaims
	claims []byte
}

// Claims decodes the token's claims (the JSON payload) into v.
func (t *IDToken) Claims(v any) error {
	if err := json.Unmarshal(t.claims, v); err != nil {
		return fail(errMalformed, "claims do not fit the given type")
	}
	return nil
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
	jwks   *keySet // keys from NewJWKS, or nil
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
	k.jwks, _ = keys.(*keySet)
	return k, nil
}

// NewIDTokenVerifier returns a verifier for cfg. It does no I/O and is safe
// for concurrent use. A bad configuration (also an empty algorithm
// intersection) is a configuration error (ErrConfig).
func NewIDTokenVerifier(cfg IDTokenConfig) (*IDTokenVerifier, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.KeySet == nil {
		return nil, configError("issuer, client id and key set are required")
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
		return defaultLeeway, nil
	case l < 0 || l > maxLeeway:
		return 0, configError("leeway must be between 0 and 5 minutes")
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
		// A configuration error, also of the algorithm kind (tests tell it apart).
		err := configError("the server advertises no allowed asymmetric algorithm")
		return nil, &verifyError{msg: err.Error(), kinds: []error{err, errAlgorithm}}
	}
	return out, nil
}

// verifySigned checks size, header, algorithm and signature, and returns
// the header and payload. Shared by ID and access tokens.
func verifySigned(ctx context.Context, raw string, algs []string, keys oidc.KeySet, jwks *keySet) (*rawJWT, []byte, error) {
	t, err := splitJWT(raw)
	if err != nil {
		return nil, nil, err
	}
	if !contains(algs, t.hdr.Alg) {
		return nil, nil, fail(errAlgorithm, "not among the allowed algorithms")
	}
	if t.unsigned {
		return nil, nil, fail(errMalformed, "empty signature")
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
			return nil, nil, fail(errSignature, "key set refused the signature")
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
// chk, and returns its claims. A failed check matches [ErrInvalidToken]
// (a failed claim check is a [*ClaimError]); a key set that cannot be
// fetched matches [ErrIssuerUnavailable]. No error contains the token.
func (v *IDTokenVerifier) Verify(ctx context.Context, raw string, chk IDTokenCheck) (*IDToken, error) {
	t, payload, err := verifySigned(ctx, raw, v.algs, v.keys, v.jwks)
	if err != nil {
		return nil, err
	}
	if !isIDTokenTyp(t.hdr.Typ) {
		return nil, claimFail("typ", "typ is not that of an ID token", errTokenType)
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := checkIssuer(c, v.issuer); err != nil {
		return nil, err
	}
	if err := v.checkAudience(c); err != nil {
		return nil, err
	}
	if c.Sub == "" {
		return nil, missing("sub", "sub", errMissingClaim)
	}
	if err := timeChecks(c, v.now(), v.leeway, true); err != nil {
		return nil, err
	}
	if err := checkFlow(c, t.hdr.Alg, chk); err != nil {
		return nil, err
	}
	return newIDToken(c, payload), nil
}

// checkAudience requires the client id in aud, and as azp when azp is
// present or aud names several audiences.
func (v *IDTokenVerifier) checkAudience(c *commonClaims) error {
	if !slices.Contains(c.Aud, v.clientID) {
		return &ClaimError{Claim: "aud", Reason: "client id not in aud", Expected: v.clientID, kinds: []error{errAudience}}
	}
	if c.Azp == nil && len(c.Aud) > 1 {
		return &ClaimError{Claim: "azp", Missing: true, Reason: "several audiences and no azp", kinds: []error{errAuthorizedParty, errAudience}}
	}
	if c.Azp != nil && *c.Azp != v.clientID {
		return &ClaimError{Claim: "azp", Reason: "azp is not the client id", Expected: v.clientID, kinds: []error{errAuthorizedParty, errAudience}}
	}
	return nil
}

// checkFlow checks the token against the flow's values: the nonce, and
// at_hash and c_hash when the token has them and chk gives what they hash.
func checkFlow(c *commonClaims, alg string, chk IDTokenCheck) error {
	switch {
	case chk.Nonce != "" && c.Nonce == nil:
		return missing("nonce", "nonce missing", errNonce)
	case chk.Nonce != "" && subtle.ConstantTimeCompare([]byte(chk.Nonce), []byte(*c.Nonce)) != 1:
		return claimFail("nonce", "", errNonce)
	}
	if chk.AccessToken != "" && c.AtHash != "" && !hashMatches(alg, chk.AccessToken, c.AtHash) {
		return claimFail("at_hash", "at_hash", errTokenHash)
	}
	if chk.Code != "" && c.CHash != "" && !hashMatches(alg, chk.Code, c.CHash) {
		return claimFail("c_hash", "c_hash", errTokenHash)
	}
	return nil
}

// newIDToken builds the IDToken of verified claims c from payload.
func newIDToken(c *commonClaims, payload []byte) *IDToken {
	std, _ := claims.ParseStandard(payload) // payload is an object: parseClaims decoded it
	std.Subject = c.Sub
	tok := &IDToken{
		Issuer: *c.Iss, Audience: []string(c.Aud),
		Expiry: c.Exp.Time, IssuedAt: c.Iat.Time, AuthTime: c.AuthTime.Time,
		StandardClaims: StandardClaims(std),
		claims:         payload,
	}
	if c.Azp != nil {
		tok.AuthorizedParty = *c.Azp
	}
	if c.Nonce != nil {
		tok.Nonce = *c.Nonce
	}
	return tok
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
