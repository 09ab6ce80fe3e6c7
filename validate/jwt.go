package validate

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/claims"

	jose "github.com/go-jose/go-jose/v4"
)

// maxTokenSize is the largest compact JWT this package will look at, in
// bytes. Larger input is refused with errMalformed before any base64
// decoding.
const maxTokenSize = 64 << 10

// maxHeaderSize bounds the encoded JOSE header. Real headers are well under
// 1 KiB; x5c chains are ignored anyway.
const maxHeaderSize = 8 << 10

// asymmetricAlgs is the allow-list of signing algorithms, in preference
// order. Nothing outside it is ever accepted: no "none", no HS*.
var asymmetricAlgs = []string{
	string(jose.RS256), string(jose.RS384), string(jose.RS512),
	string(jose.PS256), string(jose.PS384), string(jose.PS512),
	string(jose.ES256), string(jose.ES384), string(jose.ES512),
	string(jose.EdDSA),
}

func isAsymmetric(alg string) bool {
	for _, a := range asymmetricAlgs {
		if a == alg {
			return true
		}
	}
	return false
}

// header holds the JOSE header parameters we act on. jwk, jku, x5u and x5c
// are deliberately not decoded: keys come only from the configured key set.
type header struct {
	Alg  string           `json:"alg"`
	Kid  string           `json:"kid"`
	Typ  string           `json:"typ"`
	Crit *json.RawMessage `json:"crit"`
}

// rawJWT is a compact JWS split into its parts, with the header decoded.
type rawJWT struct {
	raw     string // the whole token
	hdr     header
	payload string // base64url, still encoded
	// unsigned is set when the signature segment is empty. It is refused
	// after the algorithm check, so "alg":"none" reports errAlgorithm.
	unsigned bool
}

var b64 = base64.RawURLEncoding

// splitJWT checks the size and shape of s and decodes its header. It does
// not touch the payload or the signature. All failures are errMalformed.
func splitJWT(s string) (*rawJWT, error) {
	if len(s) == 0 {
		return nil, fail(errMalformed, "empty token")
	}
	if len(s) > maxTokenSize {
		return nil, fail(errMalformed, "token larger than 64 KiB")
	}
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return nil, fail(errMalformed, "not a compact JWS")
	}
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return nil, fail(errMalformed, "not a compact JWS")
	}
	j += i + 1
	if strings.IndexByte(s[j+1:], '.') >= 0 {
		return nil, fail(errMalformed, "too many segments (JWE or garbage)")
	}
	h, p, sig := s[:i], s[i+1:j], s[j+1:]
	if h == "" || p == "" {
		return nil, fail(errMalformed, "empty segment")
	}
	if len(h) > maxHeaderSize {
		return nil, fail(errMalformed, "header larger than 8 KiB")
	}
	buf := make([]byte, b64.DecodedLen(len(h)))
	n, err := b64.Decode(buf, []byte(h))
	if err != nil {
		return nil, fail(errMalformed, "header is not base64url")
	}
	t := &rawJWT{raw: s, payload: p, unsigned: sig == ""}
	if err := json.Unmarshal(buf[:n], &t.hdr); err != nil {
		return nil, fail(errMalformed, "header is not a JSON object")
	}
	if t.hdr.Crit != nil {
		return nil, fail(errMalformed, "critical header extensions are not supported")
	}
	if t.hdr.Alg == "" {
		return nil, fail(errAlgorithm, "missing alg")
	}
	return t, nil
}

// numericDate is a JWT NumericDate (the module's one decoder of it).
type numericDate = claims.NumericDate

// audience is the "aud" claim: one string or an array of strings (the
// module's one decoder of it).
type audience = claims.Audience

// stringList accepts a JSON array of strings or one space-separated string
// (a common "scp" quirk).
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = strings.Fields(s)
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*l = a
	return nil
}

// commonClaims are the registered claims both token kinds share, plus the
// ID-token and access-token specific ones (decoded once).
type commonClaims struct {
	Iss      *string     `json:"iss"`
	Sub      string      `json:"sub"`
	Aud      audience    `json:"aud"`
	Exp      numericDate `json:"exp"`
	Nbf      numericDate `json:"nbf"`
	Iat      numericDate `json:"iat"`
	Jti      string      `json:"jti"`
	Nonce    *string     `json:"nonce"`
	Azp      *string     `json:"azp"`
	AtHash   string      `json:"at_hash"`
	CHash    string      `json:"c_hash"`
	AuthTime numericDate `json:"auth_time"`
	ClientID *string     `json:"client_id"`
	Scope    *string     `json:"scope"`
	Scp      stringList  `json:"scp"`
}

func parseClaims(payload []byte) (*commonClaims, error) {
	var c commonClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fail(errMalformed, "claims are not a JSON object of the expected types")
	}
	return &c, nil
}

// timeChecks applies exp, nbf and iat with leeway. exp is required;
// requireIat makes iat required too.
func timeChecks(c *commonClaims, now time.Time, leeway time.Duration, requireIat bool) error {
	if !c.Exp.Valid {
		return missing("exp", "exp", errMissingClaim)
	}
	if !now.Before(c.Exp.Time.Add(leeway)) {
		return claimFail("exp", "", errExpired)
	}
	if c.Nbf.Valid && c.Nbf.Time.After(now.Add(leeway)) {
		return claimFail("nbf", "nbf is in the future", errNotYetValid)
	}
	if !c.Iat.Valid {
		if requireIat {
			return missing("iat", "iat", errMissingClaim)
		}
	} else if c.Iat.Time.After(now.Add(leeway)) {
		return claimFail("iat", "iat is in the future", errNotYetValid)
	}
	return nil
}

// checkIssuer compares iss exactly (no normalisation of case or slashes).
func checkIssuer(c *commonClaims, want string) error {
	if c.Iss == nil {
		return missing("iss", "iss missing", errIssuer)
	}
	if *c.Iss != want {
		e := claimFail("iss", "", errIssuer)
		e.Expected = want
		return issuerHint(e, *c.Iss, want)
	}
	return nil
}
