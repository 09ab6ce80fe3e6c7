// Package apiclient calls APIs with OAuth access tokens (RFC 6750, and
// RFC 9449 DPoP for bound tokens) under the rules of S14: the token goes
// only in the Authorization header, only to the origins the caller allowed,
// only over the strict client, never in a URL, never through a redirect to
// another origin.
//
// Where to start: a service or a CLI tool makes one client with [New] over
// its token source (clientcredentials.NewSource, oauthclient.Client.TokenSource).
// A web backend calling an API for many users makes one [Transport] at
// start-up with [NewTransport] and, per request, a client for the user's
// source with [Transport.Client]. A tool that meets an API it does not
// know yet asks it which issuer and scopes it wants with [Discover] (RFC
// 9728), which never yields an issuer the caller did not allow (S28).
//
// Errors match the sentinels of this package ([ErrTokenInURL],
// [ErrOriginNotAllowed], [ErrRedirectRefused], [ErrBadToken],
// [ErrInvalidRequest], [ErrIssuerNotAllowed], [ErrDiscovery]),
// validate.ErrInsufficientScope, strictnet.ErrPolicy (every refusal) or
// the module's ErrConfig. No error contains the token. Names like S14 are
// the security invariants of docs/architecture.md.
package apiclient
