package oauthclient

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file runs the grants that issue tokens to a service with no user
// and no refresh token (client credentials, the JWT-bearer grant of RFC
// 7523 §2.1, token exchange of RFC 8693) through one engine: the
// lifecycle engine with no Store, DPoP on every request when it is on,
// the same checks of every answer.

// The grant types and token types of RFC 7523 and RFC 8693 this package
// names.
const (
	grantJWTBearer      = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeNotApplied = "N_A" // RFC 8693 §2.2.1: the issued token is not an access token
)

// grantSpec is what a service grant sends: its own parameters (made for
// each request, for the issuer asked), and the scope, resource, audience
// and requested_token_type of RFC 6749, 8707 and 8693.
type grantSpec struct {
	Params           func(ctx context.Context, issuer string) (url.Values, error)
	Scopes, Resource []string
	Audience         []string
	NoDPoP           bool
	Issued           string // requested_token_type; "" for none
}

// issued is a token a service grant got.
type issued struct {
	Token  *oauth2.Token // the issued token; TokenType "N_A" for a token that is not an access token
	Type   string        // RFC 8693 issued_token_type, "" when absent
	Scopes []string      // granted scopes
}

// stickySource is grantSource for a JWT-bearer or token-exchange grant: a
// refusal is not sent again with the same parameters. A nil c gives a
// source whose every Token call fails with oauthsafe.ErrConfig.
func (c *Client) stickySource(g grantSpec) *TokenSource {
	if c == nil {
		c = new(Client)
	}
	return c.grantSource(grant{grantSpec: g, sticky: true})
}

// grant is a service grant with how this package runs it.
type grant struct {
	grantSpec
	needsAuth bool // client credentials: the client must authenticate
	sticky    bool // a refusal is not sent again with the same parameters
}

// serviceDPoP reports whether a service grant starts with a DPoP key: the
// Config or metadata asks for it (dpopOn), or the metadata lists a proof
// algorithm this client signs with, unless noDPoP.
func (c *Client) serviceDPoP(noDPoP bool) bool {
	if c.dpopOn() || c.cfg.DPoPKey != nil {
		return true
	}
	algs := c.md.DPoPSigningAlgValuesSupported
	return !noDPoP && len(algs) > 0 && dpop.AlgSupported(algs)
}

// serviceKey is the DPoP key of a service source: Config.DPoPKey, or a
// new one.
func (c *Client) serviceKey() (*dpop.Key, error) {
	if c.cfg.DPoPKey == nil {
		return dpop.NewKey()
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.cfg.DPoPKey)
	if err != nil {
		return nil, cfgerr.New("oauthclient", "DPoPKey cannot be used")
	}
	k, err := dpop.Unmarshal(der)
	if err != nil {
		return nil, cfgerr.New("oauthclient", "DPoPKey cannot be used")
	}
	return k, nil
}

// refusal is a grant refusal kept by a sticky source: the error, and the
// digest of the parameters it answered (nil: whatever they are).
type refusal struct {
	err    error
	params []byte
}

// permanentRefusal returns the refusal to keep for err, if it is one: the
// server refused the grant itself (invalid_grant: the assertion or the
// subject token; kept for those parameters) or the client's right to it
// (invalid_scope, unauthorized_client, unsupported_grant_type,
// invalid_target: kept whatever the parameters). Retrying either with the
// same request cannot succeed, and another grant is never tried (S31).
func permanentRefusal(err error, digest []byte) *refusal {
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Endpoint != "token" || ae.Temporary() {
		return nil
	}
	switch ae.Code {
	case "invalid_grant":
		return &refusal{err: err, params: digest}
	case "invalid_scope", "unauthorized_client", "unsupported_grant_type", "invalid_target":
		return &refusal{err: err}
	}
	return nil
}

// grantSource is the lifecycle engine with no Store over g, proven with
// one DPoP key for the source's lifetime when DPoP is on. With g.sticky,
// a refusal of the grant (permanentRefusal) is returned again without a
// request: for invalid_grant until the grant's parameters change (a
// rotated assertion), for the others for the source's lifetime.
func (c *Client) grantSource(g grant) *TokenSource {
	g.Scopes, g.Resource, g.Audience = slices.Clone(g.Scopes), slices.Clone(g.Resource), slices.Clone(g.Audience)
	timeout := netrule.DefaultTimeout
	if c.http != nil && c.http.Timeout > 0 {
		timeout = c.http.Timeout
	}
	var keep func(error) // with g.sticky: keeps a permanent refusal
	g.sticky = g.sticky && g.Params != nil
	if g.sticky {
		g.Params, keep = stickyParams(g.Params)
	}
	// NewSource fails only without Fetch or with a negative duration.
	s, _ := engine.NewSource(engine.SourceConfig{
		Fetch:          c.grantFetch(g, keep),
		Now:            c.cfg.Now,
		RefreshTimeout: timeout,
	}, nil)
	return newTokenSource(s)
}

// stickyParams wraps a sticky grant's params. The wrapped one returns a
// kept refusal again instead of parameters: at once when the refusal
// holds whatever the parameters are (the source is not even asked: an
// ID-JAG would cost an exchange), else when they are the ones refused.
// keep keeps err when it is a permanent refusal of the last parameters.
func stickyParams(params func(context.Context, string) (url.Values, error)) (wrapped func(context.Context, string) (url.Values, error), keep func(err error)) {
	var mu sync.Mutex
	var refused *refusal
	var last []byte // digest of the parameters of the last request
	wrapped = func(ctx context.Context, issuer string) (url.Values, error) {
		mu.Lock()
		r := refused
		mu.Unlock()
		if r != nil && r.params == nil {
			return nil, r.err
		}
		form, err := params(ctx, issuer)
		if err != nil {
			return nil, err
		}
		d := digest(form)
		mu.Lock()
		last = d
		mu.Unlock()
		if r != nil && subtle.ConstantTimeCompare(r.params, d) == 1 {
			return nil, r.err
		}
		return form, nil
	}
	keep = func(err error) {
		mu.Lock()
		if r := permanentRefusal(err, last); r != nil {
			refused = r
		}
		mu.Unlock()
	}
	return wrapped, keep
}

// grantFetch is the engine.FetchFunc of a service grant: one grant call,
// proven with the source's one DPoP key when DPoP is on. A sticky grant
// keeps a refusal (keep) and does not call it a login error (notLogin).
func (c *Client) grantFetch(g grant, keep func(error)) engine.FetchFunc {
	key := sync.OnceValues(c.serviceKey) // one key for the source's lifetime
	return func(ctx context.Context, _ *engine.Refresh) (*engine.Result, error) {
		var k *dpop.Key
		if c.http != nil && c.serviceDPoP(g.NoDPoP) {
			var err error
			if k, err = key(); err != nil {
				return nil, err
			}
		}
		is, err := c.grantCall(ctx, g, k, key)
		if err != nil {
			if g.sticky {
				keep(err)
				err = notLogin(err)
			}
			return nil, fetchError(err)
		}
		return &engine.Result{Token: is.Token, Scopes: is.Scopes}, nil
	}
}

// machineRefusal is an error of a machine grant (JWT-bearer, token
// exchange) that is everything its cause is (errors.Is, errors.As: the
// *AuthError, the *oauth2.RetrieveError) except tokenstore.ErrLoginRequired: a
// refused assertion or subject token is no lost login, and the engine
// then backs off, as for any permanent failure, instead of trying again
// on every call.
type machineRefusal struct{ err error }

func (e *machineRefusal) Error() string { return e.err.Error() }

// Is matches what the cause matches, except tokenstore.ErrLoginRequired.
func (e *machineRefusal) Is(target error) bool {
	return target != tokenstore.ErrLoginRequired && errors.Is(e.err, target)
}

// As finds what the cause holds.
func (e *machineRefusal) As(target any) bool { return errors.As(e.err, target) }

// notLogin wraps an invalid_grant refusal in a machineRefusal (the err
// returned again by a sticky source, so made once).
func notLogin(err error) error {
	var mr *machineRefusal
	if err == nil || !errors.Is(err, tokenstore.ErrLoginRequired) || errors.As(err, &mr) {
		return err
	}
	return &machineRefusal{err}
}

// digest is a SHA-256 of a grant's parameters (so that a refused
// assertion is recognised without being kept).
func digest(form url.Values) []byte {
	h := sha256.Sum256([]byte(form.Encode()))
	return h[:]
}

// grantCall runs one request of g, proven with key when not nil; with no
// key, a server that answers use_dpop_nonce gets a proof of newKey's key
// (nil newKey: the error is returned). The answer is checked: token_type
// (S11), granted scope (S10), the audience of a JWT access token
// (RFC 8707), and issued_token_type against g.Issued (RFC 8693). No
// refresh token is kept.
func (c *Client) grantCall(ctx context.Context, g grant, key *dpop.Key, newKey func() (*dpop.Key, error)) (*issued, error) {
	if c.http == nil {
		return nil, cfgerr.New("oauthclient", "the Client was not made by New")
	}
	if g.needsAuth && c.method == authNone {
		return nil, policyf("client credentials need client authentication")
	}
	if g.Params == nil {
		return nil, cfgerr.New("oauthclient", "a grant without parameters")
	}
	form, err := g.Params(ctx, c.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(g.Scopes, " "))
	}
	for _, r := range g.Resource {
		if err := checkResource(r); err != nil {
			return nil, err
		}
		form.Add("resource", r)
	}
	for _, a := range g.Audience {
		form.Add("audience", a)
	}
	if g.Issued != "" {
		form.Set("requested_token_type", g.Issued)
	}
	tr, key, err := c.tokenCall(ctx, form, key, newKey, nil)
	if err != nil {
		return nil, err
	}
	if g.Issued != "" && tr.issuedType != g.Issued {
		return nil, fmt.Errorf("%w: %w: asked for %s, issued %q", ErrMalformedResponse, errIssuedTokenType, g.Issued, safetext.Clean(tr.issuedType, 100))
	}
	if tr.token.TokenType == tokenTypeNotApplied && (g.Issued == "" || g.Issued == tokenTypeAccessToken || g.Issued == tokenTypeJWT) {
		return nil, fmt.Errorf("%w: %w %q for an access token", ErrMalformedResponse, errUnknownTokenType, tokenTypeNotApplied)
	}
	granted, err := c.checkScope(g.Scopes, tr)
	if err != nil {
		return nil, err
	}
	if tr.token.TokenType != tokenTypeNotApplied {
		if err := checkAudience(tr.token.AccessToken, g.Resource); err != nil {
			return nil, err
		}
	}
	tr.token.RefreshToken = "" // a service keeps no refresh token (RFC 6749 §4.4.3, RFC 8693 §2.2.1)
	tr.token = dpop.WithKey(tr.token, key)
	return &issued{Token: tr.token, Type: tr.issuedType, Scopes: granted}, nil
}
