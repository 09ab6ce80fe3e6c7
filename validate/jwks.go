package validate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// JWKSConfig configures the key set cache [NewJWKS] returns. Only URL is
// required. It is read only by NewJWKS and may be reused or shared
// afterwards.
type JWKSConfig struct {
	// URL is the https URL of the issuer's key set (jwks_uri). Required.
	URL string
	// HTTPClient fetches the key set. nil means a strict client with the
	// system roots and a 30 s timeout. Otherwise it must be a client built
	// by strictnet.NewClient (or a copy of one), which is where
	// roots, pins, a proxy, a dialer and a tracing wrapper are set; any
	// other client is refused with a configuration error. Redirects are never
	// followed: a 3xx answer fails the fetch with ErrIssuerUnavailable (configure the
	// key set's final URL).
	HTTPClient *http.Client
	// MaxAge is how long fetched keys may be used before the set must be
	// fetched again. Zero means 1 h. Keys older than MaxAge are never used,
	// even if the refetch fails.
	MaxAge time.Duration
	// Cooldown is the minimum time between two fetches, whatever triggers
	// them (first use, expiry, an unknown kid, a failed fetch). Zero means
	// 30 s. It must be shorter than MaxAge.
	Cooldown time.Duration
	// MaxKeys bounds the number of keys in the set; a larger set is refused
	// as a whole. Zero means 100.
	MaxKeys int
	// FetchTimeout bounds one fetch, independently of the callers' contexts
	// (a fetch is shared by all waiting callers, so one caller's cancellation
	// does not stop it). Zero means 30 s.
	FetchTimeout time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
}

// keySet is the cached remote JSON Web Key Set NewJWKS returns.
type keySet struct {
	url      string
	client   *http.Client
	maxAge   time.Duration
	cooldown time.Duration
	maxKeys  int
	timeout  time.Duration
	now      func() time.Time

	keys atomic.Pointer[keySnapshot] // current usable keys, replaced whole

	mu        sync.Mutex // guards the fields below, never held during I/O
	lastStart time.Time  // when the latest fetch started
	lastErr   error      // result of the latest finished fetch
	flight    *flight    // the fetch in progress, if any
	fetches   int        // number of fetches started (for tests)
}

// flight is one fetch shared by every caller that waits on it.
type flight struct {
	done chan struct{}
	err  error
}

// verifyKey is one usable verification key.
type verifyKey struct {
	kid string
	alg string // "" when the JWK does not restrict it
	pub crypto.PublicKey
}

// keySnapshot is an immutable view of the fetched key set.
type keySnapshot struct {
	byKid   map[string][]verifyKey
	all     []verifyKey
	fetched time.Time
}

var _ oidc.KeySet = (*keySet)(nil)

// NewJWKS returns the issuer's key set at cfg.URL (its jwks_uri), cached,
// for [IDTokenConfig.KeySet] and [AccessTokenConfig.KeySet]. It does no I/O
// (the set is fetched on first use) and is safe for concurrent use; share
// one per issuer. Configuration errors (non-https URL, insecure client,
// Cooldown >= MaxAge) are configuration errors (ErrConfig).
//
// Keys are matched on kid, key type, alg and use: a key with "use":"enc", a
// "key_ops" without "verify", a symmetric key or an RSA key under 2048 bits
// is never used to verify. An unknown kid triggers at most one fetch per
// Cooldown, and concurrent callers share a single in-flight fetch. No lock is
// held while fetching, so verification with already known keys never waits
// on the network. Its VerifySignature checks that a compact JWS is signed
// with an allow-listed asymmetric algorithm by a matching key of the set,
// and returns the payload; it checks no claims.
func NewJWKS(cfg JWKSConfig) (oidc.KeySet, error) {
	k, err := newKeySet(cfg)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func newKeySet(cfg JWKSConfig) (*keySet, error) {
	if err := checkHTTPS("JWKS URL", cfg.URL, cfg.HTTPClient); err != nil {
		return nil, err
	}
	client, err := prepareClient("JWKSConfig.HTTPClient", cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	k := &keySet{
		url: cfg.URL, client: client,
		maxAge: cfg.MaxAge, cooldown: cfg.Cooldown, maxKeys: cfg.MaxKeys,
		timeout: cfg.FetchTimeout, now: cfg.Now,
	}
	if k.maxAge == 0 {
		k.maxAge = time.Hour
	}
	if k.cooldown == 0 {
		k.cooldown = 30 * time.Second
	}
	if k.maxKeys == 0 {
		k.maxKeys = 100
	}
	if k.timeout == 0 {
		k.timeout = netrule.DefaultTimeout
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.maxAge < 0 || k.cooldown < 0 || k.maxKeys < 0 || k.timeout < 0 {
		return nil, configError("negative JWKS duration or key count")
	}
	if k.cooldown >= k.maxAge {
		return nil, configError("JWKS Cooldown must be shorter than MaxAge")
	}
	return k, nil
}

// VerifySignature implements [oidc.KeySet] (see NewJWKS).
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	t, err := splitJWT(jwt)
	if err != nil {
		return nil, err
	}
	if !isAsymmetric(t.hdr.Alg) {
		return nil, fail(errAlgorithm, "not an allowed asymmetric algorithm")
	}
	return k.verify(ctx, t)
}

// verify checks t's signature with the matching keys, fetching the set
// when it is empty or stale, or when no key matches (subject to Cooldown).
func (k *keySet) verify(ctx context.Context, t *rawJWT) ([]byte, error) {
	if t.unsigned {
		return nil, fail(errMalformed, "empty signature")
	}
	jws, err := jose.ParseSignedCompact(t.raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(t.hdr.Alg)})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fail(errMalformed, "not a valid compact JWS")
	}
	snap, err := k.fresh(ctx)
	if err != nil {
		return nil, err
	}
	payload, found := verifyWith(jws, snap, t.hdr.Kid, t.hdr.Alg)
	if payload != nil {
		return payload, nil
	}
	if found && t.hdr.Kid != "" {
		// The key is known and the signature is wrong: fetching again
		// cannot help.
		return nil, fail(errSignature, "")
	}
	// Unknown kid (or no kid and no key verifies): the issuer may have
	// rotated. Refetch, at most once per Cooldown.
	next, err := k.refresh(ctx, snap)
	if err != nil {
		return nil, err
	}
	if next != snap {
		payload, found = verifyWith(jws, next, t.hdr.Kid, t.hdr.Alg)
		if payload != nil {
			return payload, nil
		}
	}
	if found {
		return nil, fail(errSignature, "")
	}
	return nil, fail2(errKeyNotFound, errSignature, "")
}

// verifyWith tries every key of snap that matches kid and alg. found
// reports whether any key matched.
func verifyWith(jws *jose.JSONWebSignature, snap *keySnapshot, kid, alg string) (payload []byte, found bool) {
	cands := snap.all
	if kid != "" {
		cands = snap.byKid[kid]
	}
	for _, key := range cands {
		if !keyFits(key, alg) {
			continue
		}
		found = true
		if p, err := jws.Verify(key.pub); err == nil {
			return p, true
		}
	}
	return nil, found
}

// keyFits reports whether key may verify a signature made with alg: the
// JWK's own alg (when set) must equal it, and the key type and curve must be
// the ones alg uses.
func keyFits(key verifyKey, alg string) bool {
	if key.alg != "" && key.alg != alg {
		return false
	}
	switch pub := key.pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// fresh returns a snapshot younger than MaxAge, fetching if needed.
func (k *keySet) fresh(ctx context.Context) (*keySnapshot, error) {
	snap := k.keys.Load()
	if snap != nil && k.now().Sub(snap.fetched) < k.maxAge {
		return snap, nil
	}
	next, err := k.refresh(ctx, snap)
	if err != nil {
		return nil, err
	}
	if next == nil || k.now().Sub(next.fetched) >= k.maxAge {
		return nil, fail(errKeySet, "no fresh keys (fetch in cooldown)")
	}
	return next, nil
}

// refresh fetches the set unless a fetch started less than Cooldown ago, and
// returns the newest snapshot. seen is the snapshot the caller found
// wanting; if another caller already replaced it, that one is returned
// without a fetch. Callers join a fetch in progress. The fetch runs detached
// from ctx (values kept, cancellation dropped, FetchTimeout applied), so a
// caller that gives up does not fail it for the others.
func (k *keySet) refresh(ctx context.Context, seen *keySnapshot) (*keySnapshot, error) {
	now := k.now()
	k.mu.Lock()
	if cur := k.keys.Load(); cur != seen && cur != nil && now.Sub(cur.fetched) < k.maxAge {
		k.mu.Unlock()
		return cur, nil
	}
	f := k.flight
	if f == nil {
		if !k.lastStart.IsZero() && now.Sub(k.lastStart) < k.cooldown {
			err := k.lastErr
			k.mu.Unlock()
			if err != nil && (seen == nil || now.Sub(seen.fetched) >= k.maxAge) {
				return nil, err
			}
			return seen, nil
		}
		f = &flight{done: make(chan struct{})}
		k.flight = f
		k.lastStart = now
		k.fetches++
		go k.fetch(context.WithoutCancel(ctx), f)
	}
	k.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fail(errKeySet, "context done while waiting for the key set")
	}
	if f.err != nil {
		if seen != nil && k.now().Sub(seen.fetched) < k.maxAge {
			// Keep using what we had; the unknown kid stays unknown.
			return seen, nil
		}
		return nil, f.err
	}
	return k.keys.Load(), nil
}

// fetch downloads and installs the key set, then completes f.
func (k *keySet) fetch(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	snap, err := k.download(ctx)
	if err == nil {
		k.keys.Store(snap)
	}
	k.mu.Lock()
	f.err = err
	k.lastErr = err
	k.flight = nil
	k.mu.Unlock()
	close(f.done)
}

func (k *keySet) download(ctx context.Context) (*keySnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fail(errKeySet, "bad request")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req.WithContext(netrule.WithEndpoint(ctx, "jwks")))
	if err != nil {
		return nil, failCause(errKeySet, "fetch failed: "+safetext.Clean(err.Error(), 300), err)
	}
	defer resp.Body.Close()
	if !verifiedTLS(resp, k.client) {
		return nil, fail(errKeySet, "the key set did not come over verified TLS 1.2+")
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fail(errKeySet, "the JWKS URI answered a redirect ("+safetext.Clean(resp.Status, 80)+"), which is never followed: configure the key set's final URL")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(errKeySet, "unexpected HTTP status "+safetext.Clean(resp.Status, 80))
	}
	body, err := netrule.ReadBody(resp.Body)
	if err != nil {
		return nil, fail(errKeySet, safetext.Clean(err.Error(), 300))
	}
	return parseKeySet(body, k.maxKeys, k.now())
}

// parseKeySet keeps the usable signature-verification keys of a JWK Set.
// Keys it cannot use (unknown kty, symmetric, "use":"enc", weak RSA) are
// skipped, not fatal; a set with more than maxKeys entries is refused.
func parseKeySet(body []byte, maxKeys int, now time.Time) (*keySnapshot, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || set.Keys == nil {
		return nil, fail(errKeySet, "response is not a JWK Set")
	}
	if len(set.Keys) > maxKeys {
		return nil, fail(errKeySet, "too many keys in the set")
	}
	snap := &keySnapshot{byKid: make(map[string][]verifyKey), fetched: now}
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue
		}
		var ops struct {
			KeyOps []string `json:"key_ops"`
		}
		_ = json.Unmarshal(raw, &ops)
		if jwk.Use != "" && jwk.Use != "sig" {
			continue
		}
		if ops.KeyOps != nil && !contains(ops.KeyOps, "verify") {
			continue
		}
		if jwk.Algorithm != "" && !isAsymmetric(jwk.Algorithm) {
			continue
		}
		var pub crypto.PublicKey
		switch key := jwk.Key.(type) {
		case *rsa.PublicKey:
			pub = key
		case *rsa.PrivateKey:
			pub = &key.PublicKey
		case *ecdsa.PublicKey:
			pub = key
		case *ecdsa.PrivateKey:
			pub = &key.PublicKey
		case ed25519.PublicKey:
			pub = key
		case ed25519.PrivateKey:
			pub = key.Public()
		default:
			continue // symmetric or unsupported
		}
		if r, ok := pub.(*rsa.PublicKey); ok && r.N.BitLen() < 2048 {
			continue
		}
		vk := verifyKey{kid: jwk.KeyID, alg: jwk.Algorithm, pub: pub}
		snap.all = append(snap.all, vk)
		snap.byKid[vk.kid] = append(snap.byKid[vk.kid], vk)
	}
	return snap, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
