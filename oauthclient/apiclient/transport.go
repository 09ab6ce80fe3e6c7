package apiclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/challenge"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"golang.org/x/oauth2"
)

// errBadToken: the token source gave no token or one this transport
// cannot send: an unknown token_type, characters not allowed in an
// Authorization header, or a DPoP token without the key it is bound to.
// Such a source breaks the oauth2.TokenSource contract or is the wrong
// source for an API, so the error matches the module's ErrConfig.
var errBadToken = cfgerr.New("apiclient", "the token source gave a token this transport cannot send")

// The refusals of the API transport, *strictnet.PolicyError values that
// match strictnet.ErrPolicy.
var (
	// errTokenInURL: the request URL carries the current access token, or an
	// access_token query or fragment parameter (RFC 6750 §2.3 is never used).
	errTokenInURL error = &strictnet.PolicyError{Reason: "a bearer token must not appear in a request URL"}
	// errOriginNotAllowed: the request goes to an origin that is not in
	// Config.AllowedOrigins, or not over https.
	errOriginNotAllowed error = &strictnet.PolicyError{Reason: "bearer tokens go only to an allowed https origin"}
	// errRedirectRefused: the API redirected to another origin (scheme,
	// host or port). Such redirects are not followed, with or without a token.
	errRedirectRefused error = &strictnet.PolicyError{Reason: "redirect to another origin not followed"}
)

// InvalidRequestError is a 400 answer with an RFC 6750 invalid_request
// challenge (match it with errors.As). Description and URI are the
// server's text, with the access token removed if the server echoed it.
// It is a plain value, safe to read concurrently.
type InvalidRequestError struct {
	Description string
	URI         string
}

func (e *InvalidRequestError) Error() string {
	s := "apiclient: the API answered invalid_request"
	if e.Description != "" {
		s += " (" + safetext.Clean(e.Description, 200) + ")"
	}
	return s
}

// invalidator is implemented by token sources that can drop a token an API
// rejected with 401 invalid_token, so that their next Token call gets a new
// one (see [New]).
type invalidator interface {
	Invalidate(t *oauth2.Token)
}

// Config configures [New] and [NewTransport], which read it
// once; the zero value is not usable (AllowedOrigins is required).
type Config struct {
	// AllowedOrigins are the resource servers that receive the token, as
	// "https://host" or "https://host:port", matched exactly (host name
	// case-insensitively, ":443" equal to no port). Paths, queries, user
	// info and other schemes are refused, save "http://" with a loopback
	// host when HTTP.AllowLoopbackHTTP is set (such an origin matches http
	// only; an https origin never matches http). Required: an empty list
	// is an error.
	AllowedOrigins []string
	// HTTP configures the strict transport of the connections to the API
	// (RootCAs, PinnedSPKI, client Certificates for certificate-bound
	// tokens, Proxy, DialContext, a tracing Wrap, a Logger whose events
	// name the endpoint "api") and the per-call Timeout (0 means
	// 30 seconds). Unlike server calls, API response bodies are not
	// bounded: the API is the caller's.
	HTTP strictnet.Config
	// Now is the clock that decides when the cached token must be checked
	// with the source again (from 60 s before its expiry). nil
	// means time.Now.
	Now func() time.Time
}

// Transport holds what the API clients of many token sources share: the
// strict connections to the allowed origins, the checked Config, the DPoP
// nonces per origin and the invalidation cooldowns. A web backend calling
// an API for many users makes one with [NewTransport] at start-up and, per
// request, a client for the user's token source with [Transport.Client].
// It holds no token. It is safe for concurrent use.
type Transport struct {
	nonces  *dpop.NonceStore // DPoP-Nonce per resource origin (RFC 9449 §9); shared by the Transport's clients
	base    http.RoundTripper
	allowed map[string]struct{} // canonical host[:port] of allowed https origins
	now     func() time.Time
	timeout time.Duration // of the clients New and Client make
	// cool rate-limits invalidations: an API that answers invalid_token
	// to everything must not turn every call into a token request (a
	// refresh-token rotation, with a user's tokens). It is shared by
	// every client of the Transport.
	cool *cooldowns
}

// tokenTransport is the http.RoundTripper of one token source's client,
// over a shared Transport: it adds the source's token to each request
// under the rules of [New].
type tokenTransport struct {
	*Transport
	src oauth2.TokenSource
	cur atomic.Pointer[bearer]
}

// invalidationCooldown is the least time between two invalidations of one
// token source's token: per engine for an oauthclient.TokenSource (its own
// default, shared by every client built on it), per source across the
// clients of one Transport for every other source. A 401 invalid_token
// within it is returned as it is, without a new token request.
const invalidationCooldown = 10 * time.Second

// cooldowns holds the last invalidation (UnixNano) per token source. A
// source whose value cannot be a map key shares one entry with every other
// such source: stricter, never looser.
type cooldowns struct {
	mu   sync.Mutex
	last map[any]int64
}

type uncomparableSource struct{}

// allow reports whether src's token may be invalidated at now, and if so
// records it. Entries older than the cooldown are dropped as the map
// grows, so it holds at most the sources invalidated within one cooldown.
func (c *cooldowns) allow(src any, now int64) bool {
	key := src
	if !reflect.ValueOf(src).Comparable() {
		key = uncomparableSource{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.last[key]; ok && now-last < int64(invalidationCooldown) {
		return false
	}
	if c.last == nil {
		c.last = map[any]int64{}
	}
	if len(c.last) >= 256 {
		for k, last := range c.last {
			if now-last >= int64(invalidationCooldown) {
				delete(c.last, k)
			}
		}
	}
	c.last[key] = now
	return true
}

// bearer is one token with its ready-made header value.
type bearer struct {
	tok       *oauth2.Token
	header    []string  // {"Bearer <token>"} or {"DPoP <token>"}; shared, never modified
	recheckAt time.Time // ask the source again from here; zero: never
	key       *dpop.Key // the key a DPoP token is bound to; nil for bearer
	ath       string    // base64url(SHA-256(token)) for DPoP proofs
}

// sourceRecheck is how long before a token's expiry the API transport
// starts asking its token source again on every request instead of using
// its cached copy (equal to the engine's default refresh-ahead margin).
const sourceRecheck = 60 * time.Second

// maxRedirects bounds redirect chains within one origin, as net/http does.
const maxRedirects = 10

var noStore = []string{"no-store"} // shared, never modified

// New returns an *http.Client that calls APIs with tokens from src (RFC
// 6750 §2.1, the Authorization header only), enforcing S14:
//
//   - a DPoP-bound token (token_type DPoP from this module, carrying its
//     key) is sent as "Authorization: DPoP" with a fresh proof per request
//     and per retry (RFC 9449 §7); a 401 use_dpop_nonce with a valid
//     DPoP-Nonce is retried exactly once with the nonce, which is kept per
//     origin; a DPoP-Nonce that is not NQCHAR or is too long fails the
//     call with an error matching oauthclient.ErrDPoP;
//   - the token goes only to an allowed origin, only over https, checked on
//     every request including each redirect hop; a redirect to another
//     origin (or to http) is refused, so no request at all reaches the
//     other origin; up to 10 redirects within the original request's
//     origin are followed;
//   - a request whose URL (host, path, query, fragment or user info) holds
//     the current token, or that has an access_token query or fragment
//     parameter, is refused before anything is sent;
//   - every request carries Cache-Control: no-store (RFC 6819 §4.6.6);
//   - the caller's request is never modified: a shallow copy with its own
//     header map is sent;
//   - a 401 whose Bearer challenge says invalid_token makes the client
//     drop the token (for an oauthclient.TokenSource, at most once per
//     10 s for its engine, however many clients share it;
//     any other source, one with an Invalidate(*oauth2.Token) method or
//     with a Rejected(*oauth2.Token) bool method of its own: once per 10 s
//     per source, across every client of one [Transport]), get a new one
//     and retry the request exactly once, and only when the body can be
//     replayed (no body, or req.GetBody set). Without a replayable body, or
//     if the source hands back the same token, or if the retry also gets
//     401, that 401 response is returned as it is (the next request then
//     uses a new token);
//   - a 403 insufficient_scope challenge becomes a
//     *validate.InsufficientScopeError and a 400 invalid_request challenge
//     an *InvalidRequestError (the DPoP challenge for a DPoP token, RFC
//     9449 §7.1, else the Bearer one). http.Client.Do returns them wrapped
//     in a *url.Error (use errors.As) and the response, whose body has been
//     closed, is not available. Any other response, a 401 included, is
//     returned unchanged.
//
// Every refusal matches strictnet.ErrPolicy, and a token the client cannot
// send (none, an unknown token_type, characters not allowed in a header,
// a DPoP token without its key, which also matches oauthclient.ErrDPoP)
// the module's ErrConfig.
//
// The "Bearer …" header value is built once per token, and the current
// token is read with one atomic load: the hot path takes no lock. From 60 s
// before the token's expiry, every request asks the source again, so that
// a refresh-ahead source (such as an oauthclient.TokenSource) can hand over its
// next token before the current one expires, without any request waiting
// for it.
//
// Errors created here never contain the token. Note that http.Client wraps
// errors in a *url.Error whose text quotes the request URL: if a caller
// puts a token into a URL, that refused request's URL (and so the
// *url.Error text) still holds it.
//
// The client has no cookie jar and its Timeout is cfg.HTTP.Timeout (0 means
// 30 seconds). It is safe for concurrent use.
func New(src oauth2.TokenSource, cfg Config) (*http.Client, error) {
	if src == nil {
		return nil, cfgerr.New("apiclient", "the API client needs a token source")
	}
	t, err := NewTransport(cfg)
	if err != nil {
		return nil, err
	}
	return t.Client(src)
}

// Client returns an *http.Client like [New]'s that calls the allowed APIs
// with tokens from src, over t: the connections, allowed origins, settings
// and DPoP nonces are shared, while the token cache is src's own. It costs
// two small allocations and no new connection. Safe for concurrent use.
func (t *Transport) Client(src oauth2.TokenSource) (*http.Client, error) {
	if src == nil {
		return nil, cfgerr.New("apiclient", "the API client needs a token source")
	}
	return &http.Client{Transport: &tokenTransport{Transport: t, src: src}, CheckRedirect: checkAPIRedirect, Timeout: t.timeout}, nil
}

// NewTransport checks cfg and returns the Transport that the clients of
// [Transport.Client] share.
func NewTransport(cfg Config) (*Transport, error) {
	if len(cfg.AllowedOrigins) == 0 {
		return nil, policyf("Config.AllowedOrigins is empty: name the API origins that may receive the token")
	}
	allowed := make(map[string]struct{}, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		h, err := parseOrigin(o, cfg.HTTP.AllowLoopbackHTTP)
		if err != nil {
			return nil, err
		}
		allowed[h] = struct{}{}
	}
	c, err := netrule.NewClient(cfg.HTTP, true)
	if err != nil {
		return nil, err
	}
	t := &Transport{nonces: new(dpop.NonceStore), base: c.Transport, allowed: allowed, now: cfg.Now, timeout: cfg.HTTP.Timeout, cool: new(cooldowns)}
	if t.now == nil {
		t.now = time.Now
	}
	if t.timeout <= 0 {
		t.timeout = netrule.DefaultTimeout
	}
	return t, nil
}

// parseOrigin checks an allowed origin and returns its canonical host[:port]
// (an http loopback origin, allowed with loopbackHTTP: "http://host[:port]").
func parseOrigin(o string, loopbackHTTP bool) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return "", policyf("allowed origin %q is not an absolute URL", safetext.Clean(o, 100))
	}
	if p := netrule.HTTPSProblem(u.Scheme+"://"+u.Host, loopbackHTTP); p != "" {
		return "", policyf("allowed origin %q %s", safetext.Clean(o, 100), p)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", policyf("allowed origin %q must be scheme://host[:port] only", safetext.Clean(o, 100))
	}
	if u.Port() == "" && strings.HasSuffix(u.Host, ":") {
		return "", policyf("allowed origin %q has an empty port", safetext.Clean(o, 100))
	}
	if u.Scheme == "http" {
		return "http://" + strings.ToLower(strings.TrimSuffix(u.Host, ":80")), nil
	}
	return canonicalHost(u.Host), nil
}

// canonicalHost lowercases a host[:port] and drops the https default port.
func canonicalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, ":443"))
}

// allowedURL reports whether u is https to an allowed origin. It does not
// allocate for an already canonical host.
func (t *Transport) allowedURL(u *url.URL) bool {
	if u != nil && strings.EqualFold(u.Scheme, "http") {
		_, ok := t.allowed["http://"+strings.ToLower(strings.TrimSuffix(u.Host, ":80"))]
		return ok // present only with AllowLoopbackHTTP, for a loopback host
	}
	if u == nil || !strings.EqualFold(u.Scheme, "https") {
		return false
	}
	h := strings.TrimSuffix(u.Host, ":443")
	if _, ok := t.allowed[h]; ok {
		return true
	}
	_, ok := t.allowed[strings.ToLower(h)]
	return ok
}

func checkAPIRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return policyf("stopped after %d redirects within the origin", maxRedirects)
	}
	if !netrule.SameOrigin(via[0].URL, req.URL) {
		return errRedirectRefused
	}
	return nil
}

// RoundTrip implements http.RoundTripper with the rules described on
// [New].
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.precheck(req); err != nil {
		closeRequestBody(req)
		return nil, err
	}
	b, err := t.current(req.Context())
	if err != nil {
		closeRequestBody(req)
		return nil, err
	}
	if tokenInURL(req.URL, b.tok.AccessToken) {
		closeRequestBody(req)
		return nil, errTokenInURL
	}
	resp, err := t.send(req, b, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return t.retry(req, resp, b)
	}
	return finish(resp, b)
}

// send makes one attempt: a copy of req with the token, no-store and,
// for a DPoP token, a fresh proof (new jti, iat now, htm, htu, ath, the
// origin's last nonce). body, when not nil, replaces req's body. A
// DPoP-Nonce in the answer is kept for the origin; one that is not
// NQCHAR or too long is refused with ErrDPoP.
func (t *tokenTransport) send(req *http.Request, b *bearer, body io.ReadCloser) (*http.Response, error) {
	r2 := withBearer(req, b.header)
	if body != nil {
		r2.Body = body
	}
	if b.key != nil {
		p, err := b.key.Proof(req.Method, req.URL, b.ath, t.nonces.Get(req.URL), t.now())
		if err != nil {
			closeRequestBody(r2)
			return nil, err
		}
		r2.Header["Dpop"] = []string{p}
	}
	resp, err := t.base.RoundTrip(r2)
	if err != nil || b.key == nil {
		return resp, err
	}
	if err := t.nonces.Update(req.URL, resp.Header); err != nil {
		drainClose(resp)
		return nil, err
	}
	return resp, nil
}

// precheck applies the rules that do not need the token.
func (t *tokenTransport) precheck(req *http.Request) error {
	if req.URL == nil {
		return cfgerr.New("apiclient", "request has no URL")
	}
	if r := req.Response; r != nil && r.Request != nil && !netrule.SameOrigin(r.Request.URL, req.URL) {
		return errRedirectRefused
	}
	if !t.allowedURL(req.URL) {
		return errOriginNotAllowed
	}
	// net/http sends req.Host as the Host header: a different one would
	// carry the token to another virtual host behind the allowed origin.
	if req.Host != "" && req.Host != req.URL.Host && canonicalHost(req.Host) != canonicalHost(req.URL.Host) {
		return errOriginNotAllowed
	}
	if hasTokenParam(req.URL.RawQuery) || hasTokenParam(req.URL.EscapedFragment()) {
		return errTokenInURL
	}
	return nil
}

// current returns the cached token, or asks the source when there is none
// or it is near expiry. The fast path is one atomic load and one clock read.
func (t *tokenTransport) current(ctx context.Context) (*bearer, error) {
	b := t.cur.Load()
	if b != nil && (b.recheckAt.IsZero() || t.now().Before(b.recheckAt)) {
		return b, nil
	}
	return t.fetch(ctx, b)
}

// contextSource is a token source whose wait honours the caller's context,
// as oauthclient.TokenSource does.
type contextSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// fetch asks the source for a token and caches its header value. Several
// goroutines may fetch at once; the source deduplicates (oauth2 token
// sources must be safe for concurrent use). A source with TokenContext
// waits no longer than the request's context.
func (t *tokenTransport) fetch(ctx context.Context, prev *bearer) (*bearer, error) {
	var tok *oauth2.Token
	var err error
	if cs, ok := t.src.(contextSource); ok {
		tok, err = cs.TokenContext(ctx)
	} else {
		tok, err = t.src.Token()
	}
	if err != nil {
		return nil, fmt.Errorf("apiclient: API transport cannot get an access token: %w", err)
	}
	if prev != nil && prev.tok == tok {
		return prev, nil
	}
	b, err := newBearer(tok)
	if err != nil {
		return nil, err
	}
	t.cur.Store(b)
	return b, nil
}

func newBearer(tok *oauth2.Token) (*bearer, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: it returned no access token", errBadToken)
	}
	key := dpop.TokenKey(tok)
	switch {
	case tok.TokenType == "" || strings.EqualFold(tok.TokenType, "Bearer"):
		key = nil
	case strings.EqualFold(tok.TokenType, "DPoP") && key != nil:
	case strings.EqualFold(tok.TokenType, "DPoP"):
		return nil, fmt.Errorf("%w: %w: a DPoP token carries no key to prove possession with", errBadToken, dpop.ErrDPoP)
	default:
		return nil, fmt.Errorf("%w: unknown token_type %q", errBadToken, safetext.Clean(tok.TokenType, 32))
	}
	for i := 0; i < len(tok.AccessToken); i++ {
		// VCHAR only: no space, control character or header injection.
		if c := tok.AccessToken[i]; c <= 0x20 || c >= 0x7f {
			return nil, fmt.Errorf("%w: the access token has characters not allowed in an Authorization header", errBadToken)
		}
	}
	b := &bearer{tok: tok, header: []string{"Bearer " + tok.AccessToken}}
	if key != nil {
		b.key, b.ath, b.header = key, dpop.AccessTokenHash(tok.AccessToken), []string{"DPoP " + tok.AccessToken}
	}
	if !tok.Expiry.IsZero() {
		b.recheckAt = tok.Expiry.Round(0).Add(-sourceRecheck)
	}
	return b, nil
}

// retry handles a 401: on invalid_token it invalidates the token (so the
// next request gets a new one) and, when the body can be replayed and the
// source then has a different token, sends the request once more. Any
// other 401 is returned as it is.
func (t *tokenTransport) retry(req *http.Request, resp *http.Response, old *bearer) (*http.Response, error) {
	if old.key != nil {
		if code, ok := dpop.Challenge(resp.Header); ok && code == "use_dpop_nonce" {
			return t.retryNonce(req, resp, old)
		}
	}
	ch, ok := challenge.ForToken(resp.Header, old.key != nil)
	if !ok || ch.Error != "invalid_token" {
		return resp, nil
	}
	nb := t.cur.Load()
	if nb == nil || nb.tok.AccessToken == old.tok.AccessToken {
		if t.rejected(old.tok) {
			t.cur.CompareAndSwap(old, nil)
			nb = nil
		}
	}
	if !replayable(req) {
		return resp, nil
	}
	if nb == nil || nb.tok.AccessToken == old.tok.AccessToken {
		var err error
		if nb, err = t.fetch(req.Context(), nil); err != nil {
			drainClose(resp)
			return nil, err
		}
	}
	if nb.tok.AccessToken == old.tok.AccessToken {
		return resp, nil // no new token: nothing to retry with
	}
	if tokenInURL(req.URL, nb.tok.AccessToken) {
		drainClose(resp)
		return nil, errTokenInURL
	}
	return t.resend(req, resp, nb)
}

// resend discards resp and sends a replayable req once more with b, its
// body taken again from GetBody.
func (t *tokenTransport) resend(req *http.Request, resp *http.Response, b *bearer) (*http.Response, error) {
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		if body, err = req.GetBody(); err != nil {
			drainClose(resp)
			return nil, fmt.Errorf("apiclient: replaying the request body: %w", err)
		}
	}
	drainClose(resp)
	resp, err := t.send(req, b, body)
	if err != nil {
		return nil, err
	}
	return finish(resp, b)
}

// retryNonce answers a resource's use_dpop_nonce (RFC 9449 §9): the nonce
// of its DPoP-Nonce header (kept by send) goes into a fresh proof, and the
// request is sent exactly once more, when its body can be replayed. A
// second use_dpop_nonce is returned as it is: there is no loop.
func (t *tokenTransport) retryNonce(req *http.Request, resp *http.Response, b *bearer) (*http.Response, error) {
	if !replayable(req) || resp.Header.Get("Dpop-Nonce") == "" {
		return resp, nil
	}
	return t.resend(req, resp, b)
}

// rejected tells the source that the API refused tok and reports whether
// it was dropped. The lifecycle engine keeps the cooldown itself
// (its Rejected), for every client built on it; every other
// source, an invalidator or a source with a Rejected method of its own,
// gets at most one invalidation per invalidationCooldown across the
// clients of one Transport (S24).
func (t *tokenTransport) rejected(tok *oauth2.Token) bool {
	if s := engine.SourceOf(t.src); s != nil {
		return s.Rejected(tok)
	}
	if !t.cool.allow(t.src, t.now().UnixNano()) {
		return false
	}
	if r, ok := t.src.(interface{ Rejected(*oauth2.Token) bool }); ok {
		return r.Rejected(tok)
	}
	if inv, ok := t.src.(invalidator); ok {
		inv.Invalidate(tok)
	}
	return true
}

// finish turns the RFC 6750 400 and 403 challenges (Bearer, or DPoP for a
// DPoP token: RFC 9449 §7.1) into typed errors.
func finish(resp *http.Response, b *bearer) (*http.Response, error) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		return resp, nil
	}
	token := b.tok.AccessToken
	ch, ok := challenge.ForToken(resp.Header, b.key != nil)
	if !ok {
		return resp, nil
	}
	switch {
	case resp.StatusCode == http.StatusForbidden && ch.Error == "insufficient_scope":
		drainClose(resp)
		e := &validate.InsufficientScopeError{Description: scrub(ch.ErrorDescription, token), URI: scrub(ch.ErrorURI, token)}
		for _, s := range ch.Scope {
			e.Scope = append(e.Scope, scrub(s, token))
		}
		return nil, e
	case resp.StatusCode == http.StatusBadRequest && ch.Error == "invalid_request":
		drainClose(resp)
		return nil, &InvalidRequestError{Description: scrub(ch.ErrorDescription, token), URI: scrub(ch.ErrorURI, token)}
	}
	return resp, nil
}

// scrub removes the token from server text that may echo it.
func scrub(s, token string) string {
	if token == "" || !strings.Contains(s, token) {
		return s
	}
	return strings.ReplaceAll(s, token, safetext.Redacted)
}

// withBearer returns a shallow copy of req with its own header map holding
// the token and no-store. Header value slices of the caller are shared, not
// modified; nothing else of req is written.
func withBearer(req *http.Request, auth []string) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	h := make(http.Header, len(req.Header)+2)
	for k, v := range req.Header {
		if (len(k) == len("Authorization") && strings.EqualFold(k, "Authorization")) ||
			(len(k) == len("Cache-Control") && strings.EqualFold(k, "Cache-Control")) ||
			(len(k) == len("DPoP") && strings.EqualFold(k, "DPoP")) {
			continue
		}
		h[k] = v
	}
	h["Authorization"] = auth
	h["Cache-Control"] = noStore
	r2.Header = h
	return r2
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drainClose reads a little of a discarded body so the connection can be
// reused, then closes it.
func drainClose(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// tokenInURL reports whether tok appears anywhere in u, raw or decoded.
func tokenInURL(u *url.URL, tok string) bool {
	if tok == "" {
		return false
	}
	if strings.Contains(u.Host, tok) || strings.Contains(u.Path, tok) || strings.Contains(u.RawPath, tok) ||
		strings.Contains(u.RawQuery, tok) || strings.Contains(u.Fragment, tok) || strings.Contains(u.RawFragment, tok) ||
		strings.Contains(u.Opaque, tok) {
		return true
	}
	if u.User != nil {
		if strings.Contains(u.User.Username(), tok) {
			return true
		}
		if p, ok := u.User.Password(); ok && strings.Contains(p, tok) {
			return true
		}
	}
	// Percent-encoded copies of the token, even next to malformed escapes
	// elsewhere in the URL (which would make a strict decoder give up).
	for _, part := range []string{u.RawQuery, u.EscapedFragment(), u.EscapedPath()} {
		if strings.IndexByte(part, '%') >= 0 && strings.Contains(lenientUnescape(part), tok) {
			return true
		}
	}
	return false
}

// lenientUnescape decodes every valid %XX escape of s and keeps everything
// else as it is, malformed escapes included.
func lenientUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// hasTokenParam reports whether a query (or fragment) has a parameter named
// access_token, percent-encoded or not, in any case. It scans bytes by hand:
// it runs on every request.
func hasTokenParam(q string) bool {
	start := 0
	for i := 0; i <= len(q); i++ {
		if i == len(q) || q[i] == '&' || q[i] == ';' {
			if isTokenParamName(q[start:i]) {
				return true
			}
			start = i + 1
		}
	}
	return false
}

func isTokenParamName(seg string) bool {
	const name = "access_token"
	if i := strings.IndexByte(seg, '='); i >= 0 {
		seg = seg[:i]
	}
	if len(seg) < len(name) { // encoding only makes the name longer
		return false
	}
	if strings.ContainsAny(seg, "%+") {
		if k, err := url.QueryUnescape(seg); err == nil {
			seg = k
		}
	}
	return strings.EqualFold(strings.TrimSpace(seg), name)
}

var _ http.RoundTripper = (*tokenTransport)(nil)

// policyf makes a *strictnet.PolicyError, which matches strictnet.ErrPolicy.
func policyf(format string, args ...any) error {
	return &strictnet.PolicyError{Reason: fmt.Sprintf(format, args...)}
}

// Format prints a summary that never shows the token (S12), under every
// fmt verb, should a program print a client's Transport.
func (t *tokenTransport) Format(f fmt.State, _ rune) {
	io.WriteString(f, "apiclient.tokenTransport{token="+safetext.Redacted+"}")
}
