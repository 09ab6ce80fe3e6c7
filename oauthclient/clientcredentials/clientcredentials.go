// Package clientcredentials gets access tokens for a service acting as
// itself: the OAuth 2.0 client credentials grant (RFC 6749 §4.4), with no
// user and no refresh token.
//
// Where to start: a backend service builds its oauthclient.Client with
// oauthclient.New (the client secret, private_key_jwt key or mTLS
// certificate in its Config), takes a token source with [NewSource], and
// calls its APIs through apiclient.New over that source:
//
//	src := clientcredentials.NewSource(client, clientcredentials.Options{Scopes: []string{"orders:read"}})
//	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
//
// Tokens live in memory only; they are never stored.
package clientcredentials

import (
	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
)

// Options are the settings of one token source.
type Options struct {
	// Scopes requested; nil means the client's Config.Scopes.
	Scopes []string
	// Resource lists RFC 8707 resource indicators; nil means none. Each
	// must be an absolute https URL without a fragment; a JWT access token
	// whose aud names none of them is refused.
	Resource []string
	// NoDPoP turns off the DPoP this source uses by itself when the
	// server's metadata lists a proof algorithm it signs with
	// (dpop_signing_alg_values_supported with ES256). DPoP stays on when
	// oauthclient.Config.DPoP is set or the server requires it
	// (dpop_bound_access_tokens, a use_dpop_nonce answer). false (the
	// zero value) proves every token request when the server lists one.
	NoDPoP bool
}

// NewSource returns a cached client-credentials token source for c (no
// user, tokens in memory only), authenticating with the client's one
// method (S17); a client without authentication (AuthNone) gets a
// *strictnet.PolicyError on its first Token call. It is the lifecycle
// engine ([engine.Source]) that user tokens use, with no Store: the
// token is read lock-free, refreshed ahead of expiry by one background
// request, callers without a usable token wait on one shared request
// (bounded by their context with TokenContext), and failures back off
// exponentially with jitter, also for waiting callers. Each request is
// bounded by the client's HTTP timeout. Nothing is fetched until the first
// Token call. The returned *oauth2.Token is shared by all callers: do not
// modify it. Safe for concurrent use.
//
// With DPoP (oauthclient.Config.DPoP, metadata listing
// dpop_signing_alg_values_supported with ES256 unless opts.NoDPoP, metadata
// with dpop_bound_access_tokens, or a token endpoint that answers
// use_dpop_nonce) the source makes one key on its
// first request and proves every token request with it for its whole
// lifetime; each token carries it, so the apiclient transport proves
// possession by itself. The key lives in memory only, as the tokens do.
func NewSource(c *oauthclient.Client, opts Options) *engine.Source {
	return hook.ClientCredentials(c, opts.Scopes, opts.Resource, opts.NoDPoP)
}
