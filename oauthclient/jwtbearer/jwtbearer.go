// Package jwtbearer gets access tokens for a service that holds no secret:
// the JWT-bearer authorization grant (RFC 7523 §2.1), where a signed JWT
// (a workload identity a platform issues, an identity assertion grant
// from an enterprise identity provider, or one this process signs) is
// traded for an access token.
//
// Where to start: a workload builds its oauthclient.Client for the
// authorization server (with client authentication if the server wants
// one, which may itself be an assertion: oauthclient.Config.ClientAssertion),
// takes a token source with [NewSource] and an assertion source from
// package assertion, and calls its APIs through apiclient.New:
//
//	src := jwtbearer.NewSource(client, jwtbearer.Options{
//		Assertion: assertion.File("/var/run/secrets/tokens/oauth"),
//		Scopes:    []string{"orders:read"},
//	})
//	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
//
// Enterprise-managed authorization (an ID-JAG from the company's identity
// provider, redeemed here) is the same source with
// tokenexchange.IDJAG as the Assertion.
//
// # What it guarantees
//
//   - Tokens live in memory only, in the lifecycle engine that client
//     credentials use (refreshed ahead of expiry by one request, callers
//     waiting on one shared request, failures backing off).
//   - An assertion is taken from its source for each token request, and
//     one whose exp has passed is refused before it is sent (an error
//     matching assertion.ErrExpired); it is never logged or printed.
//   - A refusal of the grant comes back as the *oauthclient.AuthError the
//     server answered (errors.As; Code invalid_grant, invalid_scope,
//     unauthorized_client, …) and is not sent again: invalid_grant is
//     returned without a request until the source gives another assertion
//     (a rotated file), tried once the engine's backoff has passed; the
//     other refusals are returned without a request (the source is not
//     even asked) for the source's lifetime. A refusal never matches
//     oauthclient.ErrLoginRequired: there is no login to redo. The source
//     never falls back to another grant (S31).
//   - DPoP: as for client credentials, every request is proven with one
//     key held in memory for the source's lifetime when the server lists a
//     proof algorithm (unless Options.NoDPoP), when oauthclient.Config.DPoP
//     is set, or when the server requires it.
package jwtbearer

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// GrantType is the grant_type of the JWT-bearer grant (RFC 7523 §2.1).
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Options are the settings of one token source.
type Options struct {
	// Assertion gives the assertion of each token request; it is asked
	// for one whose aud is the client's issuer. Required: a source
	// without one fails every Token call with an error matching
	// oauthclient.ErrConfig.
	Assertion assertion.Source
	// Scopes requested; nil means the client's Config.Scopes.
	Scopes []string
	// Resource lists RFC 8707 resource indicators; nil means none. Each
	// must be an absolute https URL without a fragment; a JWT access token
	// whose aud names none of them is refused.
	Resource []string
	// NoDPoP turns off the DPoP the source uses by itself when the
	// server's metadata lists a proof algorithm it signs with; see
	// clientcredentials.Options.NoDPoP.
	NoDPoP bool
}

// NewSource returns a cached JWT-bearer token source for c (tokens in
// memory only), with the guarantees of the package doc. Nothing is
// fetched until the first Token call. The returned *oauth2.Token is shared
// by all callers: do not modify it. Safe for concurrent use.
func NewSource(c *oauthclient.Client, opts Options) *tokenstore.Source {
	scopes := opts.Scopes
	now := time.Now
	if c != nil {
		cfg := c.Config()
		if scopes == nil {
			scopes = cfg.Scopes
		}
		now = cfg.Now
	}
	src := opts.Assertion
	return hook.Source(c, hook.Grant{
		Params: func(ctx context.Context, issuer string) (url.Values, error) {
			a, err := take(ctx, src, issuer, now())
			if err != nil {
				return nil, err
			}
			return url.Values{"grant_type": {GrantType}, "assertion": {a.Reveal()}}, nil
		},
		Scopes:   scopes,
		Resource: opts.Resource,
		NoDPoP:   opts.NoDPoP,
	})
}

// errNoSource: Options.Assertion is nil.
var errNoSource = cfgerr.New("jwtbearer", "Options.Assertion is required")

// take takes one assertion for audience from src and refuses it,
// before anything is sent, when its exp is not after now (an error
// matching assertion.ErrExpired), whatever src checked itself. Errors
// never contain the assertion.
func take(ctx context.Context, src assertion.Source, audience string, now time.Time) (assertion.JWT, error) {
	if src == nil {
		return assertion.JWT{}, errNoSource
	}
	a, err := src.Assertion(ctx, audience)
	if err != nil {
		return assertion.JWT{}, fmt.Errorf("jwtbearer: %w", err)
	}
	if a.Reveal() == "" {
		return assertion.JWT{}, fmt.Errorf("jwtbearer: %w: the source gave an empty assertion", assertion.ErrSource)
	}
	if !a.Expiry().After(now) {
		return assertion.JWT{}, fmt.Errorf("jwtbearer: %w at %s", assertion.ErrExpired, a.Expiry().UTC().Format(time.RFC3339))
	}
	return a, nil
}
