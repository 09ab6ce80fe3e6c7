package oauthclient

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"golang.org/x/oauth2"
)

// stateBytes is the entropy of state and nonce values: 256 bits (S3).
const stateBytes = 32

// Pending is one authorization-code flow in progress: the state, the PKCE
// verifier, the nonce, the issuer, the redirect URL and an expiry. It is
// created by [Client.Start] and consumed by [Client.Exchange].
//
// Its values are secrets of the flow: printing a Pending with any fmt verb,
// slog or JSON shows nothing of them. [Pending.MarshalBinary] is the one way
// to serialise it, for sealing into a cookie or a server-side store; the
// callback package does that. A Pending is immutable and safe for concurrent use.
type Pending struct {
	p    pendingWire
	dpop *dpop.Key // the flow's DPoP key (RFC 9449), nil without DPoP
}

type pendingWire struct {
	V        int       `json:"v"`
	State    string    `json:"s"`
	Verifier string    `json:"pv"`
	Nonce    string    `json:"n,omitempty"`
	Issuer   string    `json:"iss"`
	ClientID string    `json:"cid"`
	Redirect string    `json:"ru"`
	Scopes   []string  `json:"sc,omitempty"`
	Resource []string  `json:"rs,omitempty"`
	Expires  time.Time `json:"exp"`
	MaxAge   *int64    `json:"ma,omitempty"` // max_age sent, in seconds
	DPoPKey  []byte    `json:"dk,omitempty"` // PKCS #8, set only by MarshalBinary
}

// State returns the flow's state value. The callback package uses it to name
// the flow's cookie; do not log it.
func (p *Pending) State() string { return p.p.State }

// Expiry returns when the flow stops being accepted.
func (p *Pending) Expiry() time.Time { return p.p.Expires }

func (p Pending) redact() string {
	return fmt.Sprintf("oauthclient.Pending{issuer=%s, expires=%s, state=%s, verifier=%s, nonce=%s}",
		p.p.Issuer, p.p.Expires.UTC().Format(time.RFC3339), safetext.Redacted, safetext.Redacted, safetext.Redacted)
}

// Format prints the flow with its secrets redacted, under every fmt verb;
// slog's text handler prints the same. encoding/json sees no field:
// Pending encodes as {} (use MarshalBinary to serialise it).
func (p Pending) Format(f fmt.State, verb rune) { io.WriteString(f, p.redact()) }

// MarshalBinary serialises the flow, secrets included, for sealing. The
// output must only be stored encrypted and authenticated (as the callback
// package's cookies are) or server-side.
// A flow with DPoP carries its private key there too (S27: it then leaves
// the process only sealed).
func (p *Pending) MarshalBinary() ([]byte, error) {
	w := p.p
	if p.dpop != nil {
		b, err := p.dpop.Marshal()
		if err != nil {
			return nil, err
		}
		w.DPoPKey = b
	}
	return json.Marshal(w)
}

// UnmarshalBinary restores a flow serialised by MarshalBinary.
func (p *Pending) UnmarshalBinary(b []byte) error {
	var w pendingWire
	if len(b) > 16<<10 || json.Unmarshal(b, &w) != nil || w.V != 1 ||
		len(w.State) < 43 || len(w.Verifier) < 43 || w.Issuer == "" || w.Redirect == "" || w.Expires.IsZero() {
		return errBadPending
	}
	var k *dpop.Key
	if w.DPoPKey != nil {
		var err error
		if k, err = dpop.Unmarshal(w.DPoPKey); err != nil {
			return errBadPending
		}
		w.DPoPKey = nil
	}
	p.p, p.dpop = w, k
	return nil
}

// StartOptions are per-flow settings for [Client.Start]. The zero value is
// fine. Parameters that the security profile fixes (response_type, state,
// PKCE, nonce, redirect_uri, client_id, scope) cannot be set here.
type StartOptions struct {
	// RedirectURL overrides Config.RedirectURL for this flow, as the
	// loopback receiver does with its ephemeral port. It must pass the same
	// check (https, or http on a loopback IP literal).
	RedirectURL string
	// Prompt, LoginHint and MaxAge are the OpenID Connect parameters of
	// those names. Empty/zero means not sent. When MaxAge is sent (whole
	// seconds), Exchange requires the ID token's auth_time, no older than
	// MaxAge plus Config.Leeway (OIDC Core 3.1.2.1, 3.1.3.7), or fails
	// with an error matching ErrIDToken.
	Prompt    string
	LoginHint string
	MaxAge    time.Duration
	// Resource lists RFC 8707 resource indicators: absolute URIs without
	// a fragment, sent on the authorization request and again on the code
	// exchange, so that the access token is meant for them. nil means none.
	Resource []string
}

// Start begins an authorization-code flow: it creates the state and nonce
// (256 bits each from crypto/rand), a PKCE S256 verifier, and returns the
// Pending flow with the authorization URL to send the user to.
//
// With DPoP (Config.DPoP, or server metadata asking for it) the flow gets
// a new key, whose thumbprint goes out as dpop_jkt (RFC 9449 §10) so that
// the code can only be redeemed with it.
//
// When the server has a pushed_authorization_request_endpoint, Start
// pushes the request there (RFC 9126), authenticated with the client's one
// method, and the returned URL carries only client_id and request_uri; the
// parameters never travel through the browser. This is the only I/O Start
// does, bounded by ctx and the strict client. A server that sets
// require_pushed_authorization_requests without an endpoint is refused
// (strictnet.ErrPolicy).
//
// Start refuses (strictnet.ErrPolicy) when the server does not support PKCE S256 or
// response_type=code, so no flow can run without them (S4, S7). It is
// safe for concurrent use.
func (c *Client) Start(ctx context.Context, opts StartOptions) (*Pending, string, error) {
	if err := c.checkAuthCodeSupport(); err != nil {
		return nil, "", err
	}
	p, err := c.newPending(opts)
	if err != nil {
		return nil, "", err
	}
	u, err := url.Parse(c.md.AuthorizationEndpoint)
	if err != nil {
		return nil, "", policyf("authorization endpoint is not a URL")
	}
	q := c.authorizationQuery(u.Query(), p, opts)
	if q, err = c.pushIfOffered(ctx, q); err != nil {
		return nil, "", err
	}
	u.RawQuery = q.Encode()
	return p, u.String(), nil
}

// flowRedirect is the flow's redirect URL: opts' override or the
// configured one, checked.
func (c *Client) flowRedirect(opts StartOptions) (string, error) {
	redirect := c.cfg.RedirectURL
	if opts.RedirectURL != "" {
		redirect = opts.RedirectURL
	}
	if redirect == "" {
		return "", cfgerr.New("oauthclient", "no RedirectURL configured")
	}
	if err := checkRedirectURL(redirect); err != nil {
		return "", err
	}
	return redirect, nil
}

// newPending creates the flow's secrets (state, PKCE verifier, nonce with
// OpenID Connect, DPoP key when on) and settings, after checking the
// redirect URL and the resource indicators.
func (c *Client) newPending(opts StartOptions) (*Pending, error) {
	redirect, err := c.flowRedirect(opts)
	if err != nil {
		return nil, err
	}
	state, err := randomString()
	if err != nil {
		return nil, err
	}
	p := &Pending{p: pendingWire{
		V:        1,
		State:    state,
		Verifier: oauth2.GenerateVerifier(),
		Issuer:   c.cfg.Issuer,
		ClientID: c.cfg.ClientID,
		Redirect: redirect,
		Scopes:   slices.Clone(c.cfg.Scopes),
		Resource: slices.Clone(opts.Resource),
		Expires:  c.cfg.Now().Add(c.cfg.FlowLifetime),
	}}
	for _, r := range opts.Resource {
		if err := checkResource(r); err != nil {
			return nil, err
		}
	}
	if c.dpopOn() {
		if p.dpop, err = dpop.NewKey(); err != nil {
			return nil, err
		}
	}
	if c.openID() {
		if p.p.Nonce, err = randomString(); err != nil {
			return nil, err
		}
	}
	if opts.MaxAge > 0 {
		secs := int64(opts.MaxAge / time.Second)
		p.p.MaxAge = &secs
	}
	return p, nil
}

// authorizationQuery sets the authorization request's parameters on q (the
// endpoint's own query), replacing any the security profile fixes.
func (c *Client) authorizationQuery(q url.Values, p *Pending, opts StartOptions) url.Values {
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode", "request", "request_uri", "dpop_jkt", "resource"} {
		q.Del(k)
	}
	q.Set("response_type", "code")
	q.Set("client_id", c.cfg.ClientID)
	q.Set("redirect_uri", p.p.Redirect)
	if len(c.cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(c.cfg.Scopes, " "))
	}
	q.Set("state", p.p.State)
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(p.p.Verifier))
	q.Set("code_challenge_method", "S256")
	if p.p.Nonce != "" {
		q.Set("nonce", p.p.Nonce)
	}
	if opts.Prompt != "" {
		q.Set("prompt", opts.Prompt)
	}
	if opts.LoginHint != "" {
		q.Set("login_hint", opts.LoginHint)
	}
	if p.p.MaxAge != nil {
		q.Set("max_age", fmt.Sprint(*p.p.MaxAge))
	}
	for _, r := range opts.Resource {
		q.Add("resource", r)
	}
	if p.dpop != nil {
		q.Set("dpop_jkt", p.dpop.JKT())
	}
	return q
}

// pushIfOffered pushes the request when the server has a PAR endpoint
// (RFC 9126) and returns the query that remains for the browser; it
// refuses a server that requires PAR without an endpoint.
func (c *Client) pushIfOffered(ctx context.Context, q url.Values) (url.Values, error) {
	if c.md.PushedAuthorizationRequestEndpoint != "" {
		ru, err := c.push(ctx, q)
		if err != nil {
			return nil, err
		}
		return url.Values{"client_id": {c.cfg.ClientID}, "request_uri": {ru}}, nil
	}
	if c.md.RequirePushedAuthorizationRequests {
		return nil, policyf("server requires pushed authorization requests but has no pushed_authorization_request_endpoint")
	}
	return q, nil
}

func randomString() (string, error) {
	b := make([]byte, stateBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("oauthclient: crypto/rand: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
