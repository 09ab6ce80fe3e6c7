// Package oauthclient is the client side of OAuth 2.0 and OpenID Connect
// with the insecure paths removed: one [Client] per provider, the flows
// that log a user in, the grants of services and workloads, and the token
// lifecycle engine that serves every token from memory ([TokenSource],
// [UserPool]).
//
// Where to start: every kind of user builds one [Client] with [New].
//
//   - A web backend logs users in with package callback, keeps their
//     refresh tokens in tokenstore/sqlstore and serves them from
//     [Client.UserPool], calling APIs through package apiclient
//     (apiclient.NewTransport, then Transport.Client per request).
//   - A backend service gets its own tokens from
//     [Client.ClientCredentials] and calls APIs with apiclient.New.
//   - A workload with no stored secret trades a platform token with
//     [Client.JWTBearer] (an assertion from package assertion) or
//     [Client.TokenExchange]; enterprise-managed authorization redeems an
//     [Client.IDJAG] with JWTBearer.
//   - A desktop or CLI tool logs in with callback.Loopback (or
//     [Client.DeviceAuth] on a machine without a browser) and keeps the
//     login with [Client.TokenSource] over tokenstore/keyring.
//
// The client secret is a secret.Value (package secret); the TLS settings
// (roots, pins, client certificates, proxy, tracing wrapper, logger) are a
// strictnet.Config. Names like S23 in the docs are the security invariants
// of docs/architecture.md.
//
// # Guarantees
//
//   - Every server call goes through the one strict HTTP/TLS client of
//     package strictnet: https only, TLS 1.2+, verified certificates,
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
//   - With DPoP (RFC 9449; Config.DPoP, or a server asking for it) tokens
//     are bound to an ES256 key from crypto/rand that never prints: every
//     token and API request carries a fresh proof (jti, iat, htm, htu
//     without query, ath), a server nonce is honoured with exactly one
//     retry and kept per origin, token_type DPoP is accepted only after a
//     proof and a Bearer answer to a proof is refused unless
//     Config.AllowBearerDowngrade. The key is kept with the refresh token
//     it binds, in the same store record (S27): a source resumed from the
//     Store in a new process refreshes with it. UserInfo and the apiclient
//     transport prove possession.
//   - [Client.Start] pushes the authorization request when the server has
//     a PAR endpoint (RFC 9126): the browser sees only client_id and
//     request_uri. RFC 8707 resource indicators go on the authorization,
//     token and refresh requests.
//   - [Tokens], [Pending], [DeviceAuthorization], [Client] and [Config]
//     print redacted under every fmt verb and slog's text handler; their
//     secrets are unexported or redact themselves, so encoding/json and
//     slog's JSON handler see none of them. A [TokenSource] or [UserPool]
//     holds only the engine's pointers and prints none of its tokens.
//
// # Errors
//
// Every error of this package matches one of its sentinels with errors.Is
// (strictnet.ErrPolicy, oauthsafe.ErrConfig, ErrStateMismatch, ErrFlowExpired,
// ErrIssuerMismatch, ErrMalformedResponse, ErrIDToken, ErrDPoP,
// ErrNoEndpoint, tokenstore.ErrLoginRequired, ErrAuthorizationServer), or is a
// context error, a *tokenstore.TemporaryError for a failure worth retrying,
// or one of the types *AuthError (an error answer, or Problem set for a
// malformed one) and *strictnet.PolicyError
// (errors.As). No error string contains a token, code, verifier or secret.
package oauthclient
