package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// IntrospectionConfig configures the verifier [NewIntrospector] returns.
// It is read only by NewIntrospector and may be reused or shared
// afterwards.
type IntrospectionConfig struct {
	// Endpoint is the https introspection endpoint (RFC 7662). Required.
	Endpoint string
	// HTTPClient makes the call. nil means a strict client with the
	// system roots and a 30 s timeout. Otherwise it must be a client built
	// by strictnet.NewClient (or a copy of one, such as
	// oauthclient.Client.HTTPClient returns); any other client is refused
	// with a configuration error. Redirects are never followed (a 3xx fails
	// with ErrIssuerUnavailable).
	HTTPClient *http.Client
	// Authenticate adds the client's credentials to the request: headers on
	// req (e.g. HTTP Basic) and/or parameters in form (e.g. a
	// client_assertion). It is called once per call, before the form is
	// encoded into the body. Required: RFC 7662 endpoints are protected.
	Authenticate func(req *http.Request, form url.Values) error
	// Issuer, when set, must equal the response's "iss" exactly when the
	// response has one. RFC 7662 makes "iss" optional and some servers
	// (zitadel) omit it; the response's origin is then the configured
	// endpoint, reached over verified TLS without redirects.
	Issuer string
	// Audience, when set, must be in the response's "aud".
	Audience string
	// ClientID, when set, must equal the response's "client_id".
	ClientID string
	// Leeway for exp and nbf; zero means 60 s, more than 5 min is an error.
	Leeway time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
	// CacheSize is the number of active results kept in memory, keyed by the
	// SHA-256 of the token (never the token). Zero disables the cache.
	CacheSize int
	// CacheMaxAge caps how long a result is cached; zero means until the
	// response's "exp". Results without "exp" are never cached. A cached
	// result hides a revocation until it ages out: keep this short when that
	// matters.
	CacheMaxAge time.Duration
}

// introspector validates opaque tokens with the authorization server's
// introspection endpoint (RFC 7662). It is safe for concurrent use.
type introspector struct {
	endpoint string
	client   *http.Client
	auth     func(*http.Request, url.Values) error
	checks   introspectionChecks
	now      func() time.Time
	size     int
	maxAge   time.Duration

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type introspectionChecks struct {
	issuer, audience, clientID string
	leeway                     time.Duration
}

type cached struct {
	tok   *AccessToken
	until time.Time
}

// NewIntrospector returns an [AccessTokenVerifier] that checks opaque
// access tokens by asking the authorization server's introspection
// endpoint (RFC 7662), so a resource server verifies JWT and opaque tokens
// through the same Verify. It does no I/O and is safe for concurrent use. A
// bad configuration is a configuration error (ErrConfig).
func NewIntrospector(cfg IntrospectionConfig) (*AccessTokenVerifier, error) {
	in, err := newIntrospector(cfg)
	if err != nil {
		return nil, err
	}
	return &AccessTokenVerifier{in: in}, nil
}

func newIntrospector(cfg IntrospectionConfig) (*introspector, error) {
	if err := checkHTTPS("introspection endpoint", cfg.Endpoint, cfg.HTTPClient); err != nil {
		return nil, err
	}
	if cfg.Authenticate == nil {
		return nil, configError("introspection needs client authentication (Authenticate)")
	}
	if cfg.CacheSize < 0 || cfg.CacheMaxAge < 0 {
		return nil, configError("negative cache size or age")
	}
	leeway, err := checkLeeway(cfg.Leeway)
	if err != nil {
		return nil, err
	}
	client, err := prepareClient("IntrospectionConfig.HTTPClient", cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	in := &introspector{
		endpoint: cfg.Endpoint, client: client, auth: cfg.Authenticate,
		checks: introspectionChecks{issuer: cfg.Issuer, audience: cfg.Audience, clientID: cfg.ClientID, leeway: leeway},
		now:    cfg.Now, size: cfg.CacheSize, maxAge: cfg.CacheMaxAge,
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.size > 0 {
		in.cache = make(map[[sha256.Size]byte]cached)
	}
	return in, nil
}

// verify asks the server about token and returns its claims when it is
// active and passes the issuer, audience, client and time checks (see
// AccessTokenVerifier.Verify).
func (in *introspector) verify(ctx context.Context, token string) (*AccessToken, error) {
	if token == "" || len(token) > maxTokenSize {
		return nil, fail(errMalformed, "empty or oversized token")
	}
	var key [sha256.Size]byte
	if in.cache != nil {
		key = sha256.Sum256([]byte(token))
		if t := in.lookup(key); t != nil {
			return t, nil
		}
	}
	body, err := in.call(ctx, token)
	if err != nil {
		return nil, err
	}
	now := in.now()
	t, err := parseIntrospection(body, now, in.checks)
	if err != nil {
		return nil, err
	}
	if in.cache != nil && !t.Expiry.IsZero() {
		until := t.Expiry
		if in.maxAge > 0 && now.Add(in.maxAge).Before(until) {
			until = now.Add(in.maxAge)
		}
		in.store(key, t, until, now)
	}
	return copyAccessToken(t), nil
}

func (in *introspector) call(ctx context.Context, token string) ([]byte, error) {
	// Bounded even with a client and context that set no deadline.
	ctx, cancel := context.WithTimeout(ctx, netrule.DefaultTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, nil)
	if err != nil {
		return nil, fail(errIntrospection, "bad request")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if err := in.auth(req, form); err != nil {
		return nil, fail(errIntrospection, "client authentication hook failed")
	}
	enc := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(enc))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	req.ContentLength = int64(len(enc))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := in.client.Do(req.WithContext(netrule.WithEndpoint(ctx, "introspection")))
	if err != nil {
		// *url.Error names the endpoint, never the body; still, keep only
		// our own words.
		if ctx.Err() != nil {
			return nil, fail(errIntrospection, "context done")
		}
		return nil, failCause(errIntrospection, "request failed", err)
	}
	if !verifiedTLS(resp, in.client) {
		resp.Body.Close()
		return nil, fail(errIntrospection, "the response did not come over verified TLS 1.2+")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fail(errIntrospection, "unexpected HTTP status "+safetext.Clean(resp.Status, 80))
	}
	body, err := netrule.ReadBody(resp.Body)
	if err != nil {
		return nil, fail(errIntrospection, "reading response: "+safetext.Clean(err.Error(), 300))
	}
	return body, nil
}

// parseIntrospection checks an RFC 7662 response body. Only the JSON
// literal true counts as active.
func parseIntrospection(body []byte, now time.Time, chk introspectionChecks) (*AccessToken, error) {
	var head struct {
		Active json.RawMessage `json:"active"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, fail2(errIntrospection, errMalformed, "response is not a JSON object")
	}
	if !bytes.Equal(bytes.TrimSpace(head.Active), []byte("true")) {
		return nil, claimFail("active", "", errInactive)
	}
	c, err := parseClaims(body)
	if err != nil {
		return nil, fail2(errIntrospection, errMalformed, "claims of unexpected types")
	}
	// RFC 7662 makes "iss" optional (zitadel omits it); the response's
	// origin is the configured endpoint over verified TLS. When present it
	// must match exactly.
	if chk.issuer != "" && c.Iss != nil {
		if err := checkIssuer(c, chk.issuer); err != nil {
			return nil, err
		}
	}
	if chk.audience != "" && !slices.Contains(c.Aud, chk.audience) {
		return nil, &ClaimError{Claim: "aud", Reason: "resource not in aud", Expected: chk.audience, kinds: []error{errAudience}}
	}
	if chk.clientID != "" && (c.ClientID == nil || *c.ClientID != chk.clientID) {
		return nil, &ClaimError{Claim: "client_id", Missing: c.ClientID == nil, Expected: chk.clientID, kinds: []error{errClientID}}
	}
	if c.Exp.Valid && !now.Before(c.Exp.Time.Add(chk.leeway)) {
		return nil, claimFail("exp", "", errExpired)
	}
	if c.Nbf.Valid && c.Nbf.Time.After(now.Add(chk.leeway)) {
		return nil, claimFail("nbf", "nbf is in the future", errNotYetValid)
	}
	t := &AccessToken{
		Subject: c.Sub, Audience: []string(c.Aud),
		Expiry: c.Exp.Time, IssuedAt: c.Iat.Time, NotBefore: c.Nbf.Time, JWTID: c.Jti,
		Scopes: scopesOf(c), claims: body,
	}
	if c.Iss != nil {
		t.Issuer = *c.Iss
	}
	if c.ClientID != nil {
		t.ClientID = *c.ClientID
	}
	return t, nil
}

func copyAccessToken(t *AccessToken) *AccessToken {
	cp := *t
	cp.Audience = append([]string(nil), t.Audience...)
	cp.Scopes = append([]string(nil), t.Scopes...)
	return &cp
}

func (in *introspector) lookup(key [sha256.Size]byte) *AccessToken {
	now := in.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	e, ok := in.cache[key]
	if !ok {
		return nil
	}
	if !now.Before(e.until) {
		delete(in.cache, key)
		return nil
	}
	return copyAccessToken(e.tok)
}

func (in *introspector) store(key [sha256.Size]byte, t *AccessToken, until, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= in.size {
		for k, e := range in.cache {
			if !now.Before(e.until) {
				delete(in.cache, k)
			}
		}
	}
	for k := range in.cache {
		if len(in.cache) < in.size {
			break
		}
		delete(in.cache, k) // arbitrary victim: bounded, not LRU
	}
	in.cache[key] = cached{tok: t, until: until}
}

// cacheLen reports the number of cached results (for tests).
func (in *introspector) cacheLen() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.cache)
}
