// Package assertion supplies the signed JWTs a service presents instead of
// a stored secret: a client assertion (private_key_jwt, RFC 7523 §2.2) or
// an authorization grant (the JWT-bearer grant, RFC 7523 §2.1) that a
// platform issues to a workload (a Kubernetes projected service-account
// token, a CI job's OIDC token, a cloud's instance identity), that a
// callback fetches, or that this process signs with its own key.
//
// Where to start: a workload whose platform writes a token file uses a
// [File]; one that asks a platform API for a token per audience uses a
// [Func]; one that holds a private key uses [Signed]. The source goes to
// oauthclient.Config.ClientAssertion (client authentication) or to
// oauthclient.JWTBearerOptions.Assertion (the grant).
//
// # What it guarantees
//
//   - An assertion is a secret with a clock (S31): a [JWT] redacts itself
//     under every fmt verb, slog and JSON, and no error string holds it.
//   - Its exp is read (without verifying the signature: the server does
//     that) and an assertion that has expired, or has no exp, is refused
//     before it is sent, with an error matching [ErrExpired] or
//     [ErrMalformed].
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
	"log/slog"
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
	// ErrMalformed: the assertion is not a compact JWS with a numeric
	// exp claim, or is too large.
	ErrMalformed = errors.New("assertion: malformed")
	// ErrSource: the source could not give an assertion (a file that
	// cannot be read, a callback that failed, a key that cannot sign).
	ErrSource = errors.New("assertion: no assertion from the source")
)

// maxSize bounds an assertion (platform tokens are a few KiB).
const maxSize = 16 << 10

// JWT is one assertion: a compact JWS and its exp. It never shows its
// value when printed with any fmt verb, logged with slog or encoded as
// JSON. The zero value is no assertion. A JWT is immutable and safe for
// concurrent use.
type JWT struct {
	raw string
	exp time.Time
}

// Parse reads raw (surrounding white space trimmed) as an assertion: a
// compact JWS whose payload has a numeric exp claim. The signature is not
// verified: the authorization server does that. An assertion whose exp is
// not after now is refused with an error matching ErrExpired; anything
// else that is not such a JWT with ErrMalformed. Errors never contain raw.
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
		return time.Time{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(raw) > maxSize {
		return time.Time{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return time.Time{}, fmt.Errorf("%w: not a compact JWS (three non-empty parts)", ErrMalformed)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(&claims); err != nil {
		return time.Time{}, fmt.Errorf("%w: payload is not a JSON object with a numeric exp", ErrMalformed)
	}
	if _, err := d.Token(); err != io.EOF {
		return time.Time{}, fmt.Errorf("%w: trailing data after the payload", ErrMalformed)
	}
	if claims.Exp == nil {
		return time.Time{}, fmt.Errorf("%w: no exp claim (an assertion without one would never expire)", ErrMalformed)
	}
	// A NumericDate is a JSON number (RFC 7519 §2), not a string or null.
	var num float64
	if b := claims.Exp[0]; b != '-' && (b < '0' || b > '9') || json.Unmarshal(claims.Exp, &num) != nil {
		return time.Time{}, fmt.Errorf("%w: exp is not a NumericDate", ErrMalformed)
	}
	f := num
	if math.IsNaN(f) || f <= 0 || f >= 1<<40 {
		return time.Time{}, fmt.Errorf("%w: exp is not a plausible NumericDate", ErrMalformed)
	}
	return time.Unix(int64(f), 0), nil
}

// Reveal returns the assertion. Call it only to put it on the wire.
func (a JWT) Reveal() string { return a.raw }

// Expiry returns the assertion's exp.
func (a JWT) Expiry() time.Time { return a.exp }

// IsZero reports whether a holds no assertion.
func (a JWT) IsZero() bool { return a.raw == "" }

func (a JWT) redact() string {
	if a.raw == "" {
		return "Assertion(empty)"
	}
	return "Assertion(redacted, exp " + a.exp.UTC().Format(time.RFC3339) + ")"
}

// String redacts the assertion.
func (a JWT) String() string { return a.redact() }

// GoString redacts the assertion.
func (a JWT) GoString() string { return a.redact() }

// Format redacts the assertion under every verb.
func (a JWT) Format(f fmt.State, _ rune) { io.WriteString(f, a.redact()) }

// LogValue redacts the assertion.
func (a JWT) LogValue() slog.Value { return slog.StringValue(a.redact()) }

// MarshalJSON redacts the assertion.
func (a JWT) MarshalJSON() ([]byte, error) { return json.Marshal(a.redact()) }

// MarshalText redacts the assertion.
func (a JWT) MarshalText() ([]byte, error) { return []byte(a.redact()), nil }

// Assertion makes a JWT a Source of itself (an assertion handed over once,
// such as a platform token passed in the environment): it returns a while
// its exp has not passed, then an error matching ErrExpired; the zero JWT
// gives an error matching ErrSource. The audience is ignored.
func (a JWT) Assertion(context.Context, string) (JWT, error) {
	if a.raw == "" {
		return JWT{}, fmt.Errorf("%w: empty assertion", ErrSource)
	}
	if !a.exp.After(time.Now()) {
		return JWT{}, fmt.Errorf("%w at %s", ErrExpired, a.exp.UTC().Format(time.RFC3339))
	}
	return a, nil
}

// Source gives assertions. audience is the issuer identifier of the
// authorization server the assertion is for (RFC 7523 §3: its aud); a
// source whose assertions are made elsewhere with a fixed audience (a
// token file) ignores it. Each call returns an assertion whose exp has not
// passed, or an error. Implementations must be safe for concurrent use.
type Source interface {
	Assertion(ctx context.Context, audience string) (JWT, error)
}

// Func is a Source that calls a function for each assertion (a platform
// API that issues a token per audience, such as a CI job's OIDC token
// endpoint or a cloud metadata server). Its answer is parsed and an
// expired one refused (ErrExpired) before it is used; nothing is cached:
// every call calls the function. An error of the function is wrapped with
// ErrSource. It is safe for concurrent use when the function is.
type Func func(ctx context.Context, audience string) (string, error)

// Assertion calls f and checks its answer.
func (f Func) Assertion(ctx context.Context, audience string) (JWT, error) {
	if f == nil {
		return JWT{}, fmt.Errorf("%w: nil Func", ErrSource)
	}
	raw, err := f(ctx, audience)
	if err != nil {
		return JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return Parse(raw, time.Now())
}
