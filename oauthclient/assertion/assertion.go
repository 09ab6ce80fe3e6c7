// Package assertion supplies the signed JWTs a service presents instead of
// a stored secret: a client assertion (private_key_jwt, RFC 7523 §2.2) or
// an authorization grant (the JWT-bearer grant, RFC 7523 §2.1) that a
// platform issues to a workload (a Kubernetes projected service-account
// token, a CI job's OIDC token, a cloud's instance identity), that a
// callback fetches, or that this process signs with its own key.
//
// Where to start: a workload whose platform writes a token file uses
// [File]; one that asks a platform API for a token per audience, or that
// was handed one assertion, uses [Func]. A service that holds a private
// key sets oauthclient.Config.PrivateKey instead: the client signs its own
// assertions. The source goes to oauthclient.Config.ClientAssertion
// (client authentication) or to oauthclient.Client.JWTBearer (the grant).
//
// # What it guarantees
//
//   - An assertion is a secret with a clock (S31). A [Source] hands it
//     over as the compact JWS string, and the library reads it at once:
//     every place that receives one (File and Func themselves, client
//     authentication, the JWT-bearer grant, oauthclient.Client.IDJAG) parses it,
//     refuses it, and keeps from then on a value of its own that redacts
//     itself under every fmt verb, slog and JSON. No error string holds
//     an assertion.
//   - Its exp is read (without verifying the signature: the server does
//     that) and an assertion that has expired is refused before it is
//     sent, with an error matching [ErrExpired]; one that is empty or not
//     a compact JWS with a numeric exp, with [ErrSource]. This holds for a
//     custom Source too: what it returns gets the same checks.
//   - No source keeps an assertion past its exp. A [File] is read again
//     when it changes (platforms rotate projected tokens), and gets the
//     checks of a secret file (secret.FromFile: a regular file of this
//     user, mode 0600 or 0400).
package assertion

import (
	"context"
	"fmt"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
)

// Errors. Every error of this package, and every refusal of an assertion
// by the library, matches one of them (a file the secret-file checks
// refuse also matches secret.ErrSource and strictnet.ErrPolicy).
var (
	// ErrExpired: the assertion's exp has passed; it was not sent.
	ErrExpired = jwtassert.ErrExpired
	// ErrSource: the source gave no usable assertion: it could not (a
	// file that cannot be read, a callback that failed) or what it gave is
	// empty, not a compact JWS with a numeric exp claim, or too large.
	ErrSource = jwtassert.ErrSource
)

// Source gives assertions. audience is the issuer identifier of the
// authorization server the assertion is for (RFC 7523 §3: its aud); a
// source whose assertions are made elsewhere with a fixed audience (a
// token file) ignores it. Each call returns one assertion, a compact JWS
// whose exp has not passed, or an error. The library parses what it
// returns at once: an empty string or one that is not a JWS with a
// numeric exp is refused with ErrSource, an expired one with ErrExpired,
// and neither is sent. Implementations must be safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, audience string) (string, error)
}

// Func returns a Source that calls f for each assertion (a platform API
// that issues a token per audience, such as a CI job's OIDC token endpoint
// or a cloud metadata server; or a function returning the one assertion a
// workload was handed). Its answer is parsed and an expired one refused
// (ErrExpired), one that is not a JWS with a numeric exp refused
// (ErrSource), before it is returned; the answer is returned with
// surrounding white space trimmed. Nothing is cached: every call calls f.
// An error of f is wrapped with ErrSource, and so is a nil f. The source
// is safe for concurrent use when f is.
func Func(f func(ctx context.Context, audience string) (string, error)) Source {
	return funcSource(f)
}

// funcSource is the Source of Func.
type funcSource func(ctx context.Context, audience string) (string, error)

// Assertion calls f and checks its answer.
func (f funcSource) Assertion(ctx context.Context, audience string) (string, error) {
	if f == nil {
		return "", fmt.Errorf("%w: nil Func", ErrSource)
	}
	raw, err := f(ctx, audience)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSource, err)
	}
	a, err := jwtassert.Parse(raw, time.Now())
	if err != nil {
		return "", err
	}
	return a.Reveal(), nil
}
