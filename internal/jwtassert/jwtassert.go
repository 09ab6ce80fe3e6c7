// Package jwtassert is the library's one reading of an assertion (a
// workload token, a client assertion, an ID-JAG): a compact JWS whose exp
// is read, unverified (the authorization server checks the signature),
// and which redacts itself (S31). Every place that receives an assertion
// from a source (oauthclient's client authentication and JWT-bearer
// grant, the ID-JAG source, package assertion's File and Func) parses it
// here at once and keeps the JWT, never the string.
//
// Its sentinels are package assertion's ErrExpired and ErrSource, which
// re-export them; their messages say "assertion:" because that is the
// package a caller meets.
package jwtassert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

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
// JSON. The zero value is no assertion (Reveal returns ""). A JWT is
// immutable and safe for concurrent use.
type JWT struct {
	raw string
	exp time.Time
}

// Parse reads raw (surrounding white space trimmed) as an assertion: a
// compact JWS whose payload has a numeric exp claim. The signature is not
// verified: the authorization server does that. An assertion whose exp is
// not after now is refused with an error matching ErrExpired; anything
// else that is not such a JWT (the empty string included) with ErrSource.
// Errors never contain raw.
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

// Reveal returns the assertion. Call it only to put it on the wire (or
// to hand it to a caller of a Source).
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
