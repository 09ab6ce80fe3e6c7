// Package oauthclient is the client side of OAuth 2.0 and OpenID Connect
// with the insecure paths removed.
//
// # Guarantees
//
//   - Every server call goes through one strict HTTP/TLS profile
//     ([NewHTTPClient]): https only, TLS 1.2+, verified certificates,
//     optional SPKI pins, timeouts, 1 MiB response bound, no redirects.
//   - The only user-facing grant is the authorization-code flow with PKCE
//     S256, a 256-bit state and (for OpenID Connect) a 256-bit nonce; there
//     is no API for the implicit or password grants or any response_type
//     other than code.
//   - [Client.Exchange] checks state, then the error parameter, then the
//     RFC 9207 iss, before the code is ever sent to the token endpoint.
//   - Token responses are parsed strictly: unknown token types, errors
//     inside 200 responses, HTML, oversized bodies and odd expires_in values
//     give typed errors or safe defaults.
//   - Exactly one client authentication method is used per client.
//   - Secrets and tokens redact themselves in every fmt verb, slog and JSON.
//
// # Errors
//
// Errors match the sentinels (ErrPolicy, ErrStateMismatch,
// ErrIssuerMismatch, ErrLoginRequired, …) with errors.Is, or the types
// *AuthError, *PolicyError and *ResponseError with errors.As. No error
// string contains a token, code, verifier or secret.
package oauthclient
