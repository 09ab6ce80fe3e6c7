package validate

import (
	"errors"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// The package's sentinel errors: what a caller acts on differently. Every
// error of this package matches one of them with [errors.Is], is an
// [*InsufficientScopeError] (matched with [errors.As]), or is a
// configuration error (matching ErrConfig of the root package oauthsafe).
// No error string of this package contains a token, a code or a value taken
// from a token.
var (
	// ErrInvalidToken reports a token that must not be used (answer 401): it
	// is malformed (shape, size, base64, JSON, a "crit" header), its
	// algorithm is not allowed ("none", HMAC, not advertised), its signature
	// does not verify with a key of the issuer (or no key matches), or a
	// claim check failed, in which case it is also a [*ClaimError] naming
	// the claim.
	ErrInvalidToken = errors.New("validate: invalid token")
	// ErrIssuerUnavailable reports that the issuer could not answer (answer
	// 503, try again later): its key set could not be fetched or parsed, or
	// the introspection call failed (network error, status, redirect,
	// size bound, unparsable body). The token itself may be fine.
	ErrIssuerUnavailable = errors.New("validate: issuer unavailable")
)

// The precise kinds behind the sentinels. They stay unexported: a caller
// acts on the sentinel, or on [ClaimError.Claim]; the kinds give each
// message its words and let this package's tests tell the cases apart.
var (
	errMalformed   = errors.New("validate: malformed token")
	errAlgorithm   = errors.New("validate: signing algorithm not allowed")
	errSignature   = errors.New("validate: signature invalid")
	errKeyNotFound = errors.New("validate: no matching key in the key set")

	errKeySet        = errors.New("validate: key set unavailable")
	errIntrospection = errors.New("validate: introspection failed")

	errIssuer          = errors.New("validate: issuer mismatch")
	errAudience        = errors.New("validate: audience mismatch")
	errAuthorizedParty = errors.New("validate: authorized party (azp) mismatch")
	errClientID        = errors.New("validate: client_id mismatch")
	errExpired         = errors.New("validate: token expired")
	errNotYetValid     = errors.New("validate: token not yet valid")
	errMissingClaim    = errors.New("validate: required claim missing")
	errNonce           = errors.New("validate: nonce mismatch")
	errTokenHash       = errors.New("validate: at_hash or c_hash mismatch")
	errTokenType       = errors.New("validate: wrong token type")
	errInactive        = errors.New("validate: token inactive")
)

// verifyError is a failure with a fixed message and its kinds: the precise
// kind, sometimes a second one, and the sentinel they belong to (and, for
// a failed call, its cause: see failCause). Its message never contains
// values taken from the token.
type verifyError struct {
	msg   string
	kinds []error
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Unwrap() []error { return e.kinds }

// sentinelOf is the exported sentinel a kind belongs to.
func sentinelOf(kind error) error {
	if kind == errKeySet || kind == errIntrospection {
		return ErrIssuerUnavailable
	}
	return ErrInvalidToken
}

// fail returns an error of kind (and so of its sentinel) whose message is
// kind's message followed by detail. detail must never contain
// token-derived values.
func fail(kind error, detail string) error {
	return newVerifyError(kind, detail)
}

func newVerifyError(kind error, detail string) *verifyError {
	msg := kind.Error()
	if detail != "" {
		msg += ": " + detail
	}
	return &verifyError{msg: msg, kinds: []error{kind, sentinelOf(kind)}}
}

// configError is a configuration error, in the module's one style:
// "validate: <what> (invalid configuration)".
func configError(detail string) error {
	return cfgerr.New("validate", "%s", detail)
}

// failCause is fail for a call the transport refused or could not make:
// the message stays ours, and cause (a TLS or policy refusal of the strict
// transport, a network error) stays reachable with errors.Is and errors.As
// (S19). cause never carries the request body, so no token reaches it.
func failCause(kind error, detail string, cause error) error {
	e := newVerifyError(kind, detail)
	if cause != nil {
		e.kinds = append(e.kinds, cause)
	}
	return e
}

// fail2 is fail for errors of two kinds; the message and the sentinel are
// the first's.
func fail2(kind, also error, detail string) error {
	e := newVerifyError(kind, detail)
	e.kinds = append(e.kinds, also)
	return e
}

// ClaimError reports a token whose claims fail a check: it is valid JSON
// signed by the issuer, but not a token for this use now. It matches
// [ErrInvalidToken] with [errors.Is]; find it with [errors.As] to know
// which claim failed, for example "exp" for an expired token. It is a
// plain value; no field holds a value taken from the token.
type ClaimError struct {
	// Claim names what failed: "iss", "aud", "azp", "sub", "client_id",
	// "exp", "nbf", "iat", "nonce", "at_hash", "c_hash", "typ" (the JOSE
	// header's token type, or an ID token's claims on an access token), or
	// "active" (an introspection response saying the token is inactive).
	Claim string
	// Missing is set when the claim is required and absent.
	Missing bool
	// Expected is the configured value the claim had to match (the issuer,
	// the client id, the audience) when the check compares with one; never
	// a secret, never a value from the token.
	Expected string
	// Reason says what was wrong in fixed words (never token values).
	Reason string

	kinds []error // this package's precise kinds, for its messages and tests
}

// Error says what was wrong (naming the claim) and the expected value.
func (e *ClaimError) Error() string {
	var b strings.Builder
	if len(e.kinds) > 0 { // this package's: the kind's words and Reason name the claim
		b.WriteString(e.kinds[0].Error())
	} else {
		b.WriteString(ErrInvalidToken.Error() + ": " + e.Claim)
		if e.Missing {
			b.WriteString(" missing")
		}
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Expected != "" {
		b.WriteString(": expected " + safetext.Clean(e.Expected, 200))
	}
	return b.String()
}

// Is reports whether target is [ErrInvalidToken], or a *ClaimError naming
// the same claim: errors.Is(err, &ClaimError{Claim: "exp"}) asks whether
// err is an expired (or exp-less) token.
func (e *ClaimError) Is(target error) bool {
	if t, ok := target.(*ClaimError); ok {
		return t != nil && t.Claim == e.Claim
	}
	return target == ErrInvalidToken || slices.Contains(e.kinds, target)
}

// claimFail returns a *ClaimError for claim of the given kinds (the first
// gives the message).
func claimFail(claim, reason string, kinds ...error) *ClaimError {
	return &ClaimError{Claim: claim, Reason: reason, kinds: kinds}
}

// missing returns a *ClaimError for a required claim that is absent.
func missing(claim, reason string, kind error) *ClaimError {
	return &ClaimError{Claim: claim, Missing: true, Reason: reason, kinds: []error{kind}}
}

// InsufficientScopeError reports scope a token lacks, for a resource
// server (RequireScopes: the required scopes the token does not carry)
// and for a client (the apiclient transport: a 403 insufficient_scope
// challenge, RFC 6750 §3.1, naming the scope the API needs). It is the one
// such type of the module and the one way to recognise a missing scope:
// match it with [errors.As] (answer 403). It is a plain value and safe to
// share between goroutines once returned.
type InsufficientScopeError struct {
	// Scope lists the scopes needed and not granted: the missing required
	// ones, in the order they were required, or those an API's challenge
	// names (nil when it names none).
	Scope []string
	// Description and URI are an API's error_description and error_uri,
	// with any token it echoed removed; escape before display. "" for a
	// resource server's own check.
	Description string
	URI         string
}

// Error names the scopes (scope names are not secrets) and the API's
// description, cleaned.
func (e *InsufficientScopeError) Error() string {
	s := "validate: insufficient scope"
	if len(e.Scope) > 0 {
		s += ": needs " + safetext.Clean(strings.Join(e.Scope, " "), 200)
	}
	if e.Description != "" {
		s += " (" + safetext.Clean(e.Description, 200) + ")"
	}
	return s
}
