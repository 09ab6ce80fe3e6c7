// Package resourceclient is the resource-first client for agents, MCP
// clients and tools that know only the URL of what they call: given a
// resource URL, a store and a browser step, it yields an *http.Client (or
// an http.RoundTripper) that gets, keeps and refreshes a token for that
// resource, following the MCP authorization specification (2025-11-25 and
// 2026-07-28, with the 2025-03-26 fallbacks).
//
// Where to start: [New] with a [Config] naming the Resource, then call the
// resource with [Client.HTTPClient]. The first call that the resource
// answers with 401 runs the whole chain once; a CLI may run it up front
// with [Client.Login].
//
// # The chain
//
//   - Discovery: the protected resource metadata (RFC 9728) at the
//     resource_metadata URL of the 401 challenge, else at the well-known
//     URL with the resource's path inserted, then at the root. The
//     document's resource must equal the URL it was found for (the
//     resource, or its origin for the root document), else
//     [ErrResourceMismatch] and nothing more is requested. The authorization
//     server's metadata is found by RFC 8414 path insertion, then OpenID
//     Connect discovery with the path inserted, then appended; its issuer
//     must equal the issuer named by the resource, compared as strings
//     (oauthclient.ErrIssuerMismatch). A resource that publishes no
//     metadata at all (the 2025-03-26 revision) is served by the
//     authorization server metadata at its own origin, else by the
//     default endpoints /authorize, /token and /register at that origin,
//     and only there.
//   - Registration, in this order: the pre-registered [Credentials] when
//     they name the issuer (never sent to another); a Client ID Metadata
//     Document URL when the server advertises
//     client_id_metadata_document_supported; RFC 7591 dynamic
//     registration, kept in the Store (sealed like a refresh token) under
//     the issuer, reused on the next run, used at no other issuer, and
//     redone once after invalid_client. The token endpoint authentication
//     method is the one registered, among those the server supports
//     (client_secret_basic, client_secret_post, none).
//   - Scopes: the challenge's scope, else the resource's scopes_supported,
//     else none; offline_access only when the server lists it and
//     WantRefreshToken is set; never a scope beyond ScopeCeiling.
//   - Authorization: the authorization code flow of package oauthclient
//     (PKCE S256, state, RFC 9207 iss compared exactly and required when
//     advertised) with the resource (RFC 8707) in the authorization and the
//     token requests, the same string in both: the resource metadata's
//     resource. The issuer is passed to ConfirmIssuer before the browser
//     opens.
//   - Step-up: a 403 insufficient_scope re-authorizes with the granted and
//     the required scopes, at most MaxStepUps times per request, then the
//     request fails with a [*StepUpError].
//   - Tokens: stored under (resource, issuer, client id)
//     (a key derived from the resource, issuer and client), refreshed by the token engine, and sent
//     only to URLs within the resource: its origin and a path under the
//     resource's path by whole segments ([ErrNotWithinResource]).
//
// # Machine clients
//
// A service or workload (no user, no browser) sets Config.Grant to a
// ready-made [Grant] built on the [Credentials] of its client at the
// issuer: [ClientCredentials] (a client secret or private_key_jwt),
// [JWTBearer] (a workload assertion) or [EnterpriseManaged] (an ID-JAG
// from the company's identity provider, redeemed with the JWT-bearer
// grant). The chain is the same up to the authorization server; then the
// Grant gets the token there, with the resource and the scopes chosen as
// above, in memory only. A Grant is bound to the issuer its Credentials
// name and is refused with [ErrGrantIssuer], before anything is sent, at
// any other the resource names (S28). DPoP is on when the server's
// metadata lists an algorithm the client signs with (unless
// Credentials.NoDPoP), and always when the resource takes DPoP-bound
// tokens only.
//
// Plain http is refused unless HTTP.AllowLoopbackHTTP is set, and then
// only for localhost, 127.0.0.0/8 and ::1 (see strictnet.Config).
//
// # Errors
//
// Errors match [ErrResourceMismatch], [ErrNotWithinResource],
// a [*StepUpError], [ErrRegistration], [ErrGrantIssuer],
// apiclient.ErrDiscovery, apiclient.ErrIssuerNotAllowed,
// oauthclient.ErrIssuerMismatch and the other errors of oauthclient and
// apiclient; every refusal matches strictnet.ErrPolicy. No error contains
// a token, a code or a client secret.
package resourceclient
