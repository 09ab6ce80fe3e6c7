// Package tokenexchange trades one token for another at an authorization
// server: OAuth 2.0 Token Exchange (RFC 8693), for a service acting for a
// user (delegation, with an actor token) or as itself across trust
// domains, and enterprise-managed authorization, where a user's single
// sign-on token becomes an identity assertion authorization grant
// (ID-JAG) for a third-party server without another login.
//
// Where to start: [NewSource] exchanges a subject token (any
// oauth2.TokenSource: a user's token source, a platform token) for access
// tokens, served by the lifecycle engine the other service grants use:
//
//	src := tokenexchange.NewSource(client, tokenexchange.Options{
//		SubjectToken:     userTokens,
//		SubjectTokenType: tokenexchange.AccessToken,
//		Audience:         []string{"https://orders.example.com"},
//	})
//
// For enterprise-managed authorization, [IDJAG] is the assertion source of
// a jwtbearer token source at the resource's authorization server:
//
//	src := jwtbearer.NewSource(asClient, jwtbearer.Options{
//		Assertion: tokenexchange.IDJAG{IdP: idpClient, SubjectToken: idToken, Resource: resource, Scopes: scopes},
//		Scopes:    scopes,
//	})
//
// # What it guarantees
//
//   - The issued_token_type of every answer is the one asked for (access
//     tokens for NewSource, an ID-JAG for IDJAG), or the answer is refused
//     with an error matching [ErrIssuedTokenType] (and
//     oauthclient.ErrMalformedResponse).
//   - A subject or actor token whose expiry has passed (its Expiry, or
//     the exp of a JWT) is refused before it is sent, with an error
//     matching assertion.ErrExpired.
//   - Access tokens live in memory only; the key of DPoP, on as for
//     client credentials, too. A refused exchange (invalid_grant,
//     invalid_scope, invalid_target, unauthorized_client) is returned as
//     the *oauthclient.AuthError the server answered (never matching
//     oauthclient.ErrLoginRequired) and is not sent again with the same
//     subject token; another one is tried once the engine's backoff has
//     passed (see package jwtbearer).
package tokenexchange

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
	"golang.org/x/oauth2"
)

// GrantType is the grant_type of token exchange (RFC 8693 §2.1).
const GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 §3), and the ID-JAG's
// (draft-ietf-oauth-identity-assertion-authz-grant).
const (
	AccessToken = "urn:ietf:params:oauth:token-type:access_token"
	IDToken     = "urn:ietf:params:oauth:token-type:id_token"
	JWT         = "urn:ietf:params:oauth:token-type:jwt"
	IDJAGType   = "urn:ietf:params:oauth:token-type:id-jag"
)

// ErrIssuedTokenType is matched by an answer whose issued_token_type is
// not the requested type (or is missing).
var ErrIssuedTokenType = hook.ErrIssuedType

// errSubject: the subject or actor token source failed.
var errSubject = errors.New("tokenexchange: no subject or actor token")

// Options are the settings of one token source.
type Options struct {
	// SubjectToken gives the token to exchange (its AccessToken field is
	// sent) for each request: a user's token source, or
	// oauth2.StaticTokenSource for a token read once. Required.
	SubjectToken oauth2.TokenSource
	// SubjectTokenType is its type identifier, such as AccessToken,
	// IDToken or JWT. Required.
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
	// RequestedTokenType is the type asked for; "" means AccessToken. A
	// token source serves tokens used as access tokens: AccessToken, or JWT
	// (a JWT access token); another type fails every Token call with an
	// error matching oauthclient.ErrConfig.
	RequestedTokenType string
	// NoDPoP turns off the DPoP the source uses by itself when the
	// server's metadata lists a proof algorithm it signs with; see
	// clientcredentials.Options.NoDPoP.
	NoDPoP bool
}

// NewSource returns a cached token-exchange source for c: each token is
// an exchange of the subject (and actor) token the sources give at that
// moment, served from memory by the lifecycle engine and exchanged again
// ahead of its expiry. The issued_token_type must be the requested one
// (ErrIssuedTokenType). Nothing is fetched until the first Token call.
// The returned *oauth2.Token is shared by all callers: do not modify it.
// Safe for concurrent use.
func NewSource(c *oauthclient.Client, opts Options) *engine.Source {
	now := time.Now
	if c != nil {
		now = c.Config().Now
	}
	want := opts.RequestedTokenType
	if want == "" {
		want = AccessToken
	}
	return hook.Source(c, hook.Grant{
		Params: func(ctx context.Context, _ string) (url.Values, error) {
			if want != AccessToken && want != JWT {
				return nil, cfgerr.New("tokenexchange", "a token source serves access tokens; RequestedTokenType %q is not one", want)
			}
			return params(opts.SubjectToken, opts.SubjectTokenType, opts.ActorToken, opts.ActorTokenType, now())
		},
		Audience: opts.Audience,
		Resource: opts.Resource,
		Scopes:   opts.Scopes,
		NoDPoP:   opts.NoDPoP,
		Issued:   want,
	})
}

// params are the exchange's own parameters, with the subject and actor
// tokens taken now and refused when expired.
func params(subject oauth2.TokenSource, subjectType string, actor oauth2.TokenSource, actorType string, now time.Time) (url.Values, error) {
	if subject == nil || subjectType == "" {
		return nil, cfgerr.New("tokenexchange", "SubjectToken and SubjectTokenType are required")
	}
	if actor != nil && actorType == "" {
		return nil, cfgerr.New("tokenexchange", "ActorTokenType is required with ActorToken")
	}
	st, err := take(subject, now)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {GrantType}, "subject_token": {st}, "subject_token_type": {subjectType}}
	if actor != nil {
		at, err := take(actor, now)
		if err != nil {
			return nil, err
		}
		form.Set("actor_token", at)
		form.Set("actor_token_type", actorType)
	}
	return form, nil
}

// take returns a token's value, refusing it when its Expiry, or the exp
// of a JWT without an Expiry, is not after now. Errors never contain the
// token.
func take(ts oauth2.TokenSource, now time.Time) (string, error) {
	t, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSubject, err)
	}
	if t == nil || t.AccessToken == "" {
		return "", fmt.Errorf("%w: the source gave an empty token", errSubject)
	}
	if !t.Expiry.IsZero() && !t.Expiry.After(now) {
		return "", fmt.Errorf("tokenexchange: %w at %s", assertion.ErrExpired, t.Expiry.UTC().Format(time.RFC3339))
	}
	if t.Expiry.IsZero() {
		// A JWT carries its own exp: an expired one is not sent either.
		if _, err := assertion.Parse(t.AccessToken, now); errors.Is(err, assertion.ErrExpired) {
			return "", fmt.Errorf("tokenexchange: %w", err)
		}
	}
	return t.AccessToken, nil
}
