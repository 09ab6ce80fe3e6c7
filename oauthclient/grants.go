package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"golang.org/x/oauth2"
)

// This file holds the service grants a Client runs for a service with no
// user and no refresh token: client credentials (RFC 6749 §4.4), the
// JWT-bearer grant (RFC 7523 §2.1) and token exchange (RFC 8693), each a
// method returning the lifecycle engine with no Store (machine.go runs
// them), and Client.IDJAG, the assertion source of enterprise-managed
// authorization.

// Token type identifiers (RFC 8693 §3).
const (
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// tokenTypeIDJAG is the ID-JAG's token type
// (draft-ietf-oauth-identity-assertion-authz-grant), which IDJAG asks for.
const tokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"

// errIssuedTokenType: a token-exchange answer whose issued_token_type is
// not the requested type (or is missing); wrapped with
// ErrMalformedResponse.
var errIssuedTokenType = errors.New("oauthclient: issued_token_type is not the requested type")

// errSubject: the subject or actor token source of a token exchange failed.
var errSubject = errors.New("oauthclient: no subject or actor token")

// GrantOptions are the settings of one client-credentials or JWT-bearer
// token source.
type GrantOptions struct {
	// Scopes requested; nil means the client's Config.Scopes.
	Scopes []string
	// Resource lists RFC 8707 resource indicators; nil means none. Each
	// must be an absolute https URL without a fragment; a JWT access token
	// whose aud names none of them is refused.
	Resource []string
	// NoDPoP turns off the DPoP a service source uses by itself when the
	// server's metadata lists a proof algorithm it signs with
	// (dpop_signing_alg_values_supported with ES256). DPoP stays on when
	// Config.DPoP is set or the server requires it
	// (dpop_bound_access_tokens, a use_dpop_nonce answer). false (the
	// zero value) proves every token request when the server lists one.
	NoDPoP bool
}

// ClientCredentials returns a cached token source for the client
// credentials grant (RFC 6749 §4.4): a service acting as itself, no user,
// tokens in memory only (never stored). It authenticates with the client's
// one method (S17); a client without authentication (AuthMethod "none") gets a
// *strictnet.PolicyError on its first Token call. The token is read
// lock-free, fetched again ahead of expiry by one background request;
// callers without a usable token wait on one shared request, and failures
// back off. DPoP: every request is proven with one key held in memory for
// the source's lifetime when DPoP is on (see
// GrantOptions.NoDPoP). Nothing is fetched until the first
// Token call. The returned *oauth2.Token is shared by all callers: do not
// modify it.
func (c *Client) ClientCredentials(opts GrantOptions) *TokenSource {
	return c.clientCredentialsSource(opts.Scopes, opts.Resource, opts.NoDPoP)
}

// JWTBearer returns a cached token source for the JWT-bearer
// authorization grant (RFC 7523 §2.1), for a service that holds no secret:
// a signed JWT (a workload identity a platform issues, an ID-JAG from
// [Client.IDJAG], or one a platform API hands over through assertion.Func) is traded for
// an access token. Tokens live in memory only, in the engine client
// credentials use.
//
// a gives the assertion of each token request; it is asked for one whose
// aud is the client's issuer. It is required: a nil a fails every Token
// call with an error matching oauthsafe.ErrConfig. An assertion is taken
// from a for each token request and parsed at once: one whose exp has
// passed (by Config.Now) is refused before it is sent (an error matching
// assertion.ErrExpired), and so is one that is empty or not a JWT with an
// exp (assertion.ErrSource); it is never logged or printed. A refusal of the
// grant comes back as the *AuthError the server answered (errors.As; Code
// invalid_grant, invalid_scope, unauthorized_client, …) and is not sent
// again: invalid_grant is returned without a request until the source
// gives another assertion (a rotated file), tried once the engine's
// backoff has passed; the other refusals are returned without a request
// (the source is not even asked) for the source's lifetime. A refusal
// never matches tokenstore.ErrLoginRequired: there is no login to redo.
// The source never falls back to another grant (S31). DPoP as for
// ClientCredentials.
func (c *Client) JWTBearer(a assertion.Source, opts GrantOptions) *TokenSource {
	scopes := opts.Scopes
	now := time.Now
	if c != nil {
		if scopes == nil {
			scopes = c.cfg.Scopes
		}
		now = c.cfg.Now
	}
	return c.stickySource(grantSpec{
		Params: func(ctx context.Context, issuer string) (url.Values, error) {
			jwt, err := takeAssertion(ctx, a, issuer, now())
			if err != nil {
				return nil, err
			}
			return url.Values{"grant_type": {grantJWTBearer}, "assertion": {jwt.Reveal()}}, nil
		},
		Scopes: scopes, Resource: opts.Resource, NoDPoP: opts.NoDPoP,
	})
}

// errNoAssertionSource: JWTBearer was given no assertion source.
var errNoAssertionSource = cfgerr.New("oauthclient", "JWTBearer needs an assertion source")

// takeAssertion takes one assertion for audience from src and parses it
// at once, whatever src checked itself: before anything is sent, an empty
// or malformed one is refused (an error matching assertion.ErrSource) and
// one whose exp is not after now too (assertion.ErrExpired). Errors never
// contain the assertion.
func takeAssertion(ctx context.Context, src assertion.Source, audience string, now time.Time) (jwtassert.JWT, error) {
	if src == nil {
		return jwtassert.JWT{}, errNoAssertionSource
	}
	raw, err := src.Assertion(ctx, audience)
	if err != nil {
		return jwtassert.JWT{}, fmt.Errorf("oauthclient: JWT-bearer: %w", err)
	}
	a, err := jwtassert.Parse(raw, now)
	if err != nil {
		return jwtassert.JWT{}, fmt.Errorf("oauthclient: JWT-bearer: %w", err)
	}
	return a, nil
}

// TokenExchangeOptions are the settings of one token-exchange source.
// Printing them shows no token.
type TokenExchangeOptions struct {
	// SubjectToken gives the token to exchange (its AccessToken field is
	// sent) for each request: a user's token source, or
	// oauth2.StaticTokenSource for a token read once. Required.
	SubjectToken oauth2.TokenSource
	// SubjectTokenType is its type identifier (RFC 8693 §3), such as
	// "urn:ietf:params:oauth:token-type:access_token", "…:id_token" or
	// "…:jwt". Required.
	SubjectTokenType string
	// ActorToken gives the token of the party acting for the subject
	// (delegation, RFC 8693 §1.1); nil means none.
	ActorToken oauth2.TokenSource
	// ActorTokenType is its type identifier; required with ActorToken.
	ActorTokenType string
	// Audience lists the logical names of the target services; nil means none.
	Audience []string
	// Resource lists RFC 8707 resource indicators (absolute https URLs);
	// nil means none.
	Resource []string
	// Scopes requested; nil sends no scope parameter.
	Scopes []string
	// RequestedTokenType is the type asked for; "" means
	// urn:ietf:params:oauth:token-type:access_token. A token source serves
	// tokens used as access tokens: that type, or
	// urn:ietf:params:oauth:token-type:jwt (a JWT access token);
	// another type fails every Token call with an error matching
	// oauthsafe.ErrConfig.
	RequestedTokenType string
	// NoDPoP: see GrantOptions.NoDPoP.
	NoDPoP bool
}

// TokenExchange returns a cached token source for OAuth 2.0 Token
// Exchange (RFC 8693): a service acting for a user (delegation, with an
// actor token) or as itself across trust domains. Each token is an
// exchange of the subject (and actor) token the sources give at that
// moment, served from memory by the engine the other service grants use
// and exchanged again ahead of its expiry. The issued_token_type must be
// the requested one (else an error matching
// ErrMalformedResponse). A subject or actor token whose expiry has passed
// (its Expiry, or the exp of a JWT) is refused before it is sent, with an
// error matching assertion.ErrExpired. A refused exchange is returned as
// the *AuthError the server answered (never matching
// tokenstore.ErrLoginRequired) and is not sent again with the same
// subject token, as for JWTBearer. Nothing is fetched until the first
// Token call.
func (c *Client) TokenExchange(opts TokenExchangeOptions) *TokenSource {
	now := time.Now
	if c != nil {
		now = c.cfg.Now
	}
	want := opts.RequestedTokenType
	if want == "" {
		want = tokenTypeAccessToken
	}
	return c.stickySource(grantSpec{
		Params: func(ctx context.Context, _ string) (url.Values, error) {
			if want != tokenTypeAccessToken && want != tokenTypeJWT {
				return nil, cfgerr.New("oauthclient", "a token source serves access tokens; RequestedTokenType %q is not one", want)
			}
			return exchangeParams(opts.SubjectToken, opts.SubjectTokenType, opts.ActorToken, opts.ActorTokenType, now())
		},
		Audience: opts.Audience, Resource: opts.Resource, Scopes: opts.Scopes, NoDPoP: opts.NoDPoP,
		Issued: want,
	})
}

// exchangeParams are a token exchange's own parameters, with the subject
// and actor tokens taken now and refused when expired.
func exchangeParams(subject oauth2.TokenSource, subjectType string, actor oauth2.TokenSource, actorType string, now time.Time) (url.Values, error) {
	if subject == nil || subjectType == "" {
		return nil, cfgerr.New("oauthclient", "SubjectToken and SubjectTokenType are required")
	}
	if actor != nil && actorType == "" {
		return nil, cfgerr.New("oauthclient", "ActorTokenType is required with ActorToken")
	}
	st, err := takeSubject(subject, now)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {st}, "subject_token_type": {subjectType}}
	if actor != nil {
		at, err := takeSubject(actor, now)
		if err != nil {
			return nil, err
		}
		form.Set("actor_token", at)
		form.Set("actor_token_type", actorType)
	}
	return form, nil
}

// takeSubject returns a token's value, refusing it when its Expiry, or
// the exp of a JWT without an Expiry, is not after now. Errors never
// contain the token.
func takeSubject(ts oauth2.TokenSource, now time.Time) (string, error) {
	t, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSubject, err)
	}
	if t == nil || t.AccessToken == "" {
		return "", fmt.Errorf("%w: the source gave an empty token", errSubject)
	}
	if !t.Expiry.IsZero() && !t.Expiry.After(now) {
		return "", fmt.Errorf("oauthclient: token exchange: %w at %s", jwtassert.ErrExpired, t.Expiry.UTC().Format(time.RFC3339))
	}
	if t.Expiry.IsZero() {
		// A JWT carries its own exp: an expired one is not sent either.
		if _, err := jwtassert.Parse(t.AccessToken, now); errors.Is(err, jwtassert.ErrExpired) {
			return "", fmt.Errorf("oauthclient: token exchange: %w", err)
		}
	}
	return t.AccessToken, nil
}

// IDJAG returns the enterprise-managed authorization step at the company's
// identity provider, whose client c is: an assertion.Source whose
// assertions are identity assertion authorization grants (ID-JAG), each
// obtained by one token exchange (RFC 8693) at c with
// requested_token_type urn:ietf:params:oauth:token-type:id-jag, audience
// the authorization server the assertion is asked for (the audience given
// to its Assertion: a JWTBearer source passes its client's issuer), and
// opts' subject token, resources and scopes. Redeem it with
// Client.JWTBearer at that server, which asks for a new one each time it
// needs a token; nothing is cached.
//
// opts.SubjectToken gives the user's token at the identity provider;
// SubjectTokenType "" means urn:ietf:params:oauth:token-type:id_token.
// Audience, ActorToken, ActorTokenType and RequestedTokenType are set by
// the step itself: one that is set, like a nil c or SubjectToken, fails
// every Assertion with an error matching oauthsafe.ErrConfig, before
// anything is sent.
//
// The answer must say issued_token_type id-jag (ErrMalformedResponse) and
// hold a JWT whose exp has not passed (assertion.ErrExpired,
// assertion.ErrSource). The exchange carries no DPoP proof: an ID-JAG is
// redeemed by the client, not bound to it. It is safe for concurrent use
// when SubjectToken is. Printing it shows no token.
func (c *Client) IDJAG(opts TokenExchangeOptions) assertion.Source {
	return idjag{idp: c, opts: opts}
}

// idjag is the assertion.Source of Client.IDJAG.
type idjag struct {
	idp  *Client
	opts TokenExchangeOptions
}

// Assertion exchanges the subject token for an ID-JAG whose audience is
// audience (the authorization server's issuer) and returns it as a compact
// JWS, after parsing it: an expired one is refused (assertion.ErrExpired),
// one that is not a JWT with an exp too (assertion.ErrSource). The
// JWTBearer source it is given to parses it again before sending it.
func (j idjag) Assertion(ctx context.Context, audience string) (string, error) {
	o := j.opts
	switch {
	case j.idp == nil || audience == "":
		return "", cfgerr.New("oauthclient", "IDJAG needs the identity provider's client and an audience")
	case len(o.Audience) > 0 || o.ActorToken != nil || o.ActorTokenType != "" || o.RequestedTokenType != "":
		return "", cfgerr.New("oauthclient", "IDJAG sets Audience, the actor and RequestedTokenType itself; leave them empty")
	}
	now := j.idp.cfg.Now
	typ := o.SubjectTokenType
	if typ == "" {
		typ = tokenTypeIDToken
	}
	g := grantSpec{
		Params: func(context.Context, string) (url.Values, error) {
			return exchangeParams(o.SubjectToken, typ, nil, "", now())
		},
		Audience: []string{audience},
		Resource: o.Resource,
		Scopes:   o.Scopes,
		Issued:   tokenTypeIDJAG,
	}
	is, err := j.idp.grantCall(ctx, grant{grantSpec: g}, nil, nil)
	if err != nil {
		return "", err
	}
	a, err := jwtassert.Parse(is.Token.AccessToken, now())
	if err != nil {
		return "", fmt.Errorf("oauthclient: the identity provider's ID-JAG: %w", err)
	}
	return a.Reveal(), nil
}

func (o TokenExchangeOptions) redact() string {
	return fmt.Sprintf("oauthclient.TokenExchangeOptions{subject_token=%s, subject_token_type=%s, actor_token=%s, actor_token_type=%s, audience=[%s], resource=[%s], scopes=[%s], requested_token_type=%s, no_dpop=%t}",
		safetext.Present(o.SubjectToken != nil), safetext.Clean(o.SubjectTokenType, 100), safetext.Present(o.ActorToken != nil), safetext.Clean(o.ActorTokenType, 100),
		cleanList(o.Audience), cleanList(o.Resource), cleanList(o.Scopes), safetext.Clean(o.RequestedTokenType, 100), o.NoDPoP)
}

// Format implements fmt.Formatter: every verb prints the types and
// parameters, never a token.
func (o TokenExchangeOptions) Format(f fmt.State, _ rune) { io.WriteString(f, o.redact()) }

// Format implements fmt.Formatter: every verb prints the identity
// provider's client and the parameters, never the subject token.
func (j idjag) Format(f fmt.State, _ rune) {
	idp := "none"
	if j.idp != nil {
		idp = fmt.Sprint(j.idp)
	}
	fmt.Fprintf(f, "oauthclient.IDJAG{idp=%s, %s}", idp, j.opts.redact())
}

func cleanList(v []string) string { return safetext.Clean(strings.Join(v, " "), 200) }

// MarshalJSON encodes Format's summary as a JSON string: the token
// sources' own fields are never encoded.
func (o TokenExchangeOptions) MarshalJSON() ([]byte, error) { return json.Marshal(o.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the subject
// token source's own fields are never encoded.
func (j idjag) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprint(j)) }
