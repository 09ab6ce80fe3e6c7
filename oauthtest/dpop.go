package oauthtest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// This file is a DPoP proof verifier written from RFC 9449 §4.3 for the
// test server and the demo's resource servers. It shares no code with the
// library's proof builder (oauthclient): the thumbprint is computed here
// by hand from RFC 7638, the claims are parsed here.

// DPoP error codes (RFC 9449 §5, §7.1 and §8).
const (
	DPoPInvalidProof = "invalid_dpop_proof"
	DPoPUseNonce     = "use_dpop_nonce"
)

// DPoPError is a refused proof; Code is DPoPInvalidProof or DPoPUseNonce.
type DPoPError struct {
	Code        string
	Description string
}

func (e *DPoPError) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalidProof(desc string) error { return &DPoPError{Code: DPoPInvalidProof, Description: desc} }

// dpopAllowedAlgs is the verifier's asymmetric algorithm allow-list
// (never none, never HS*).
var dpopAllowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.RS256, jose.EdDSA}

// DPoPAlgs are the alg values the verifier accepts, for metadata.
func DPoPAlgs() []string {
	out := make([]string, len(dpopAllowedAlgs))
	for i, a := range dpopAllowedAlgs {
		out[i] = string(a)
	}
	return out
}

// DPoPVerifier checks DPoP proofs for one server. Its zero value is not
// usable; use NewDPoPVerifier. It is safe for concurrent use.
type DPoPVerifier struct {
	requireNonce bool
	window       time.Duration
	now          func() time.Time

	mu       sync.Mutex
	jtis     map[string]time.Time // jkt+jti -> forget after
	nonce    string               // current nonce
	previous string               // the nonce before the last rotation
	issued   int                  // nonces handed out (NonceCount)
}

// NewDPoPVerifier returns a verifier. With requireNonce, every proof must
// carry the server's current (or previous) nonce, or it is refused with
// use_dpop_nonce and the caller sends a fresh one (RFC 9449 §8).
func NewDPoPVerifier(requireNonce bool) *DPoPVerifier {
	v := &DPoPVerifier{requireNonce: requireNonce, window: time.Minute, now: time.Now, jtis: map[string]time.Time{}}
	v.nonce = randomToken(18)
	return v
}

// Nonce returns the nonce to send in DPoP-Nonce ("" when not required).
func (v *DPoPVerifier) Nonce() string {
	if !v.requireNonce {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.issued++
	return v.nonce
}

// RotateNonce makes a new current nonce; the last one stays valid once
// more as "previous", the one before is refused from now on.
func (v *DPoPVerifier) RotateNonce() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.previous, v.nonce = v.nonce, randomToken(18)
}

// ExpireNonces makes every nonce issued so far invalid.
func (v *DPoPVerifier) ExpireNonces() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.previous, v.nonce = "", randomToken(18)
}

// DPoPProof is what a verified proof says.
type DPoPProof struct {
	JKT string // RFC 7638 SHA-256 thumbprint of the proof key, base64url
	JTI string
}

// Verify checks the request's DPoP proof (RFC 9449 §4.3): exactly one DPoP
// header holding one JWS with typ dpop+jwt, an allowed asymmetric alg, a
// public jwk under which the signature verifies, jti unseen within the iat
// window, htm = r.Method, htu = target (compared without query and
// fragment, scheme and host case-insensitively), iat within ±1 minute, the
// nonce when required, and ath = base64url(SHA-256(accessToken)) when
// accessToken is not "".
func (v *DPoPVerifier) Verify(r *http.Request, target, accessToken string) (*DPoPProof, error) {
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 {
		return nil, invalidProof("exactly one DPoP header is required")
	}
	proof := vals[0]
	if len(proof) > 8<<10 || strings.Count(proof, ".") != 2 {
		return nil, invalidProof("not a compact JWS")
	}
	// The raw header, for typ and the jwk members (thumbprint, private parts).
	rawHeader, err := base64.RawURLEncoding.DecodeString(proof[:strings.IndexByte(proof, '.')])
	if err != nil {
		return nil, invalidProof("header is not base64url")
	}
	var hdr struct {
		Typ string                     `json:"typ"`
		Alg string                     `json:"alg"`
		JWK map[string]json.RawMessage `json:"jwk"`
	}
	if json.Unmarshal(rawHeader, &hdr) != nil {
		return nil, invalidProof("header is not JSON")
	}
	if hdr.Typ != "dpop+jwt" {
		return nil, invalidProof("typ must be dpop+jwt")
	}
	if hdr.JWK == nil {
		return nil, invalidProof("no jwk header")
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := hdr.JWK[private]; ok {
			return nil, invalidProof("jwk holds private key material")
		}
	}
	jkt, err := thumbprint(hdr.JWK)
	if err != nil {
		return nil, invalidProof(err.Error())
	}
	jws, err := jose.ParseSignedCompact(proof, dpopAllowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalidProof("alg not allowed or JWS malformed")
	}
	key := jws.Signatures[0].Protected.JSONWebKey
	if key == nil || !key.IsPublic() || !key.Valid() {
		return nil, invalidProof("jwk is not a valid public key")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalidProof("signature does not verify")
	}
	var c struct {
		JTI   string          `json:"jti"`
		HTM   string          `json:"htm"`
		HTU   string          `json:"htu"`
		IAT   json.Number     `json:"iat"`
		ATH   string          `json:"ath"`
		Nonce *string         `json:"nonce"`
		Extra json.RawMessage `json:"-"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return nil, invalidProof("claims are not JSON")
	}
	if c.JTI == "" || len(c.JTI) > 256 || c.HTM == "" || c.HTU == "" || c.IAT == "" {
		return nil, invalidProof("jti, htm, htu and iat are required")
	}
	if c.HTM != r.Method {
		return nil, invalidProof("htm does not match the request method")
	}
	if !sameTarget(c.HTU, target) {
		return nil, invalidProof("htu does not match the request URI")
	}
	iat, err := c.IAT.Int64()
	if err != nil {
		return nil, invalidProof("iat is not an integer")
	}
	now := v.now()
	if t := time.Unix(iat, 0); t.Before(now.Add(-v.window)) || t.After(now.Add(v.window)) {
		return nil, invalidProof("iat outside the accepted window")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return nil, invalidProof("ath does not match the access token")
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.requireNonce {
		if c.Nonce == nil || *c.Nonce == "" {
			return nil, &DPoPError{Code: DPoPUseNonce, Description: "Authorization server requires nonce in DPoP proof"}
		}
		if *c.Nonce != v.nonce && (v.previous == "" || *c.Nonce != v.previous) {
			return nil, &DPoPError{Code: DPoPUseNonce, Description: "DPoP nonce is stale"}
		}
	}
	for k, exp := range v.jtis {
		if now.After(exp) {
			delete(v.jtis, k)
		}
	}
	seen := jkt + "\x00" + c.JTI
	if _, dup := v.jtis[seen]; dup {
		return nil, invalidProof("jti was already used (replayed proof)")
	}
	v.jtis[seen] = time.Unix(iat, 0).Add(2 * v.window)
	return &DPoPProof{JKT: jkt, JTI: c.JTI}, nil
}

// NonceCount reports how many times Nonce handed out a nonce.
func (v *DPoPVerifier) NonceCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.issued
}

// sameTarget compares two URIs as RFC 9449 §4.3 asks: no query or
// fragment, scheme and host case-insensitive, default port dropped.
func sameTarget(got, want string) bool {
	norm := func(s string) (string, bool) {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return "", false
		}
		host := strings.ToLower(u.Host)
		scheme := strings.ToLower(u.Scheme)
		if scheme == "https" {
			host = strings.TrimSuffix(host, ":443")
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		return scheme + "://" + host + p, true
	}
	g, ok1 := norm(got)
	w, ok2 := norm(want)
	return ok1 && ok2 && g == w
}

// thumbprint is RFC 7638 §3: SHA-256 over the required members of the
// key, in lexicographic order, as JSON strings without whitespace.
func thumbprint(jwk map[string]json.RawMessage) (string, error) {
	str := func(name string) (string, error) {
		var s string
		if raw, ok := jwk[name]; !ok || json.Unmarshal(raw, &s) != nil || s == "" {
			return "", errors.New("jwk member " + name + " missing or not a string")
		}
		return s, nil
	}
	kty, err := str("kty")
	if err != nil {
		return "", err
	}
	var names []string
	switch kty {
	case "EC":
		names = []string{"crv", "kty", "x", "y"}
	case "RSA":
		names = []string{"e", "kty", "n"}
	case "OKP":
		names = []string{"crv", "kty", "x"}
	default:
		return "", errors.New("jwk kty not supported")
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		v, err := str(n)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(n)
		b.Write(q)
		b.WriteByte(':')
		q, _ = json.Marshal(v)
		b.Write(q)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// WriteDPoPChallenge answers a resource request refused for its proof or
// its binding (RFC 9449 §7.1): 401 with a DPoP challenge, and a fresh
// nonce when the verifier requires one.
func (v *DPoPVerifier) WriteDPoPChallenge(w http.ResponseWriter, code, desc, resourceMetadata string) {
	ch := `DPoP algs="` + strings.Join(DPoPAlgs(), " ") + `"`
	if code != "" {
		ch += `, error="` + code + `", error_description="` + desc + `"`
	}
	if resourceMetadata != "" {
		ch += `, resource_metadata="` + resourceMetadata + `"`
	}
	w.Header().Add("WWW-Authenticate", ch)
	if n := v.Nonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
	w.WriteHeader(http.StatusUnauthorized)
}
