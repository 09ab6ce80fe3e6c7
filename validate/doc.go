// Package validate checks ID tokens and access tokens before anything uses
// them.
//
// Where to start: a resource server checks the access tokens it receives
// with [NewAccessTokenVerifier] (JWT, RFC 9068) or [NewIntrospector]
// (opaque tokens, RFC 7662), over the key set of [NewJWKS]; clients get ID token
// checks from oauthclient without calling this package. Names like S8 in
// the docs are the security invariants of docs/architecture.md.
//
// # Guarantees
//
// [IDTokenVerifier] (S8) accepts a token only when all of these hold: it is
// a compact JWS of at most 64 KiB; its alg is an allow-listed
// asymmetric algorithm (RS*, PS*, ES*, EdDSA) that the server advertises,
// never "none" or HS*; its signature verifies with a key from the
// configured key set (jwk, jku, x5u and x5c header parameters are never used
// to find a key and never fetched); typ is absent or JWT; iss equals the
// issuer exactly; aud contains the client id; azp equals the client id when
// present or when there are several audiences; exp is present and not past,
// nbf and iat are not in the future (each with a leeway of 60 s by default,
// at most 5 min); the nonce matches; at_hash and c_hash match when present
// and the access token or code is given.
//
// [AccessTokenVerifier] (S9, RFC 9068) requires typ at+jwt, the same
// signature and issuer rules, aud containing the resource, exp/nbf, and
// client_id when configured; scopes come from "scope" or "scp" and are
// checked with [AccessToken.RequireScopes]. An ID token is never accepted as
// an access token, nor the reverse. [NewIntrospector] (RFC 7662) does the same
// for opaque tokens through the introspection endpoint.
//
// [NewJWKS] (S20) caches the issuer's keys for at most MaxAge, fetches again for
// an unknown kid at most once per Cooldown with every concurrent caller
// sharing that one fetch, bounds the response to 1 MiB and the number of
// keys, and uses a key only when kty, alg and use fit.
//
// # Errors
//
// A caller acts on two sentinels, matched with [errors.Is], and one typed
// error, matched with [errors.As]:
//   - [ErrInvalidToken]: refuse the token (401). A failed claim check is
//     also a [*ClaimError] naming the claim (find it with [errors.As], or
//     ask errors.Is(err, &ClaimError{Claim: "exp"})): "exp" for an expired
//     token the client should refresh, "active" for an inactive one;
//     anything else (malformed, algorithm, signature, unknown key) is not
//     a token of the issuer.
//   - [ErrIssuerUnavailable]: the key set or the introspection endpoint
//     could not answer; try again later (503).
//   - [*InsufficientScopeError]: the token lacks a scope (403); its Scope
//     names the missing ones.
//
// A constructor given a bad configuration returns a configuration error
// (the module's one ErrConfig). No error string contains a token, a code
// or a value copied from a token.
package validate
