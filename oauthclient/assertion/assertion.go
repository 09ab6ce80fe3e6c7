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
//   - An assertion is a secret with a clock (S31): a [JWT] redacts itself
//     under every fmt verb, slog and JSON, and no error string holds it.
//   - Its exp is read (without verifying the signature: the server does
//     that) and an assertion that has expired is refused before it is
//     sent, with an error matching [ErrExpired]; one that is not a JWT
//     with an exp, with [ErrSource].
//   - No source keeps an assertion past its exp. A [File] is read again
//     when it changes (platforms rotate projected tokens), and gets the
//     checks of a secret file (secret.FromFile: a regular file of this
//     user, mode 0600 or 0400).
package assertion

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Errors. Every error of this package matches one of them (a file the
// secret-file checks refuse also matches secret.ErrSource and
// strictnet.ErrPolicy).
var (
	// ErrExpired: the assertion's exp has passed; it was not sent.
	ErrExpired = errors.New("assertion: expired")
	// ErrSource: the source gave no usable assertion: it could not (a
	// file that cannot be read, a callback that failed) or what it gave is
	// not a compact JWS with a numeric exp claim, or is too large.
	ErrSource = errors.New("assertion: no usable assertion from the source")
)

// errMalformed: the assertion is not a compact JWS with a numeric exp
// claim, or is too large.
var errMalformed = fmt.Errorf("%w: malformed", ErrSource)

// maxSize bounds an assertion (platform tokens are a few KiB).
const maxSize = 16 << 10

// JWT is one assertion: a compact JWS and its exp. It never shows its
// value when printed with any fmt verb, logged with slog or encoded as
// JSON. The zero value is no assertion (Reveal returns ""). A JWT is immutable and safe for
// concurrent use.
type JWT struct {
	raw string
	exp time.Time
}

// Parse reads raw (surrounding white space trimmed) as an assertion: a
// compact JWS whose payload has a numeric exp claim. The signature is not
// verified: the authorization server does that. An assertion whose exp is
// not after now is refused with an error matching ErrExpired; anything
// else that is not such a JWT with ErrSource. Errors never contain raw.
func Parse(raw string, now time.Time) (JWT, error) {
	raw = strings.TrimSpace(raw)
	exp, err := expiry(raw)
	if err != nil {
		return JWT{}, err
	}
	if !exp.After(now) {
		return JWT{}, fmt.Errorf("%w at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
	}
	return JWT{raw: raw, exp: exp}, nil
}

// expiry returns the exp claim of a compact JWS, unverified.
func expiry(raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, fmt.Errorf("%w: empty", errMalformed)
	}
	if len(raw) > maxSize {
		return time.Time{}, fmt.Errorf("%w: longer than %d bytes", errMalformed, maxSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return time.Time{}, fmt.Errorf("%w: not a compact JWS (three non-empty parts)", errMalformed)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: payload is not base64url", errMalformed)
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(&claims); err != nil {
		return time.Time{}, fmt.Errorf("%w: payload is not a JSON object with a numeric exp", errMalformed)
	}
	if _, err := d.Token(); err != io.EOF {
		return time.Time{}, fmt.Errorf("%w: trailing data after the payload", errMalformed)
	}
	if claims.Exp == nil {
		return time.Time{}, fmt.Errorf("%w: no exp claim (an assertion without one would never expire)", errMalformed)
	}
	// A NumericDate is a JSON number (RFC 7519 §2), not a string or null.
	var num float64
	if b := claims.Exp[0]; b != '-' && (b < '0' || b > '9') || json.Unmarshal(claims.Exp, &num) != nil {
		return time.Time{}, fmt.Errorf("%w: exp is not a NumericDate", errMalformed)
	}
	f := num
	if math.IsNaN(f) || f <= 0 || f >= 1<<40 {
		return time.Time{}, fmt.Errorf("%w: exp is not a plausible NumericDate", errMalformed)
	}
	return time.Unix(int64(f), 0), nil
}

// Reveal returns the assertion. Call it only to put it on the wire.
func (a JWT) Reveal() string { return a.raw }

// Expiry returns the assertion's exp.
func (a JWT) Expiry() time.Time { return a.exp }

// Format redacts the assertion under every verb: it prints
// "Assertion(redacted, exp <RFC 3339>)", or "Assertion(empty)" for the
// zero JWT. (JSON has no field of it to show.)
func (a JWT) Format(f fmt.State, _ rune) {
	if a.raw == "" {
		io.WriteString(f, "Assertion(empty)")
		return
	}
	io.WriteString(f, "Assertion(redacted, exp "+a.exp.UTC().Format(time.RFC3339)+")")
}

// Source gives assertions. audience is the issuer identifier of the
// authorization server the assertion is for (RFC 7523 §3: its aud); a
// source whose assertions are made elsewhere with a fixed audience (a
// token file) ignores it. Each call returns an assertion whose exp has not
// passed, or an error. Implementations must be safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, audience string) (JWT, error)
}

// Func returns a Source that calls f for each assertion (a platform API
// that issues a token per audience, such as a CI job's OIDC token endpoint
// or a cloud metadata server; or a function returning the one assertion a
// workload was handed). Its answer is parsed and an expired one refused
// (ErrExpired) before it is used; nothing is cached: every call calls f.
// An error of f is wrapped with ErrSource, and so is a nil f. The source
// is safe for concurrent use when f is.
func Func(f func(ctx context.Context, audience string) (string, error)) Source {
	return funcSource(f)
}

// funcSource is the Source of Func.
type funcSource func(ctx context.Context, audience string) (string, error)

// Assertion calls f and checks its answer.
func (f funcSource) Assertion(ctx context.Context, audience string) (JWT, error) {
	if f == nil {
		return JWT{}, fmt.Errorf("%w: nil Func", ErrSource)
	}
	raw, err := f(ctx, audience)
	if err != nil {
		return JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return Parse(raw, time.Now())
}
