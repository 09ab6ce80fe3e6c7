// Package apiclient calls APIs with OAuth access tokens (RFC 6750, and
// RFC 9449 DPoP for bound tokens) under the rules of S14: the token goes
// only in the Authorization header, only to the origins the caller allowed,
// only over the strict client, never in a URL, never through a redirect to
// another origin.
//
// Where to start: a service or a CLI tool makes one client with [New] over
// its token source (oauthclient.Client.ClientCredentials, Client.TokenSource).
// A web backend calling an API for many users makes one [Transport] at
// start-up with [NewTransport] and, per request, a client for the user's
// source with [Transport.Client]. A tool that meets an API it does not
// know yet asks it which issuer and scopes it wants with [Discover] (RFC
// 9728), which never yields an issuer the caller did not allow (S28).
//
// # Errors
//
//   - Every refusal (a token for another origin, for plain http, in a URL,
//     through a redirect to another origin; a resource leading to an issuer
//     the caller did not allow, [ErrIssuerNotAllowed], or metadata naming
//     another resource) is a *strictnet.PolicyError matching
//     strictnet.ErrPolicy, returned before anything is sent.
//   - The API's answers: a 403 insufficient_scope is a
//     *validate.InsufficientScopeError, a 400 invalid_request an
//     [*InvalidRequestError] (match both with errors.As).
//   - [ErrDiscovery]: the resource metadata could not be had.
//   - The module's ErrConfig: a configuration error, or a token source
//     that gave a token this package cannot send.
//
// Errors of the token source are returned wrapped. No error contains the
// token. Names like S14 are the security invariants of
// docs/architecture.md.
package apiclient
