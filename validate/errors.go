package validate

import (
	"errors"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Sentinel errors. Every error returned by this package matches at least one
// of them with [errors.Is]; some match two (an unknown key is both
// [ErrKeyNotFound] and [ErrSignature]). No error string returned by this
// package contains a token, a code or a claim value taken from a token.
var (
	// ErrMalformed reports a token or server response that cannot be parsed:
	// wrong number of segments, bad base64 or JSON, too large, a claim of the
	// wrong type, or a "crit" header.
	ErrMalformed = errors.New("validate: malformed token")
	// ErrAlgorithm reports a signing algorithm that is not allowed: "none",
	// any HMAC algorithm, or an algorithm the server does not advertise.
	ErrAlgorithm = errors.New("validate: signing algorithm not allowed")
	// ErrSignature reports a signature that does not verify with any key of
	// the issuer.
	ErrSignature = errors.New("validate: signature invalid")
	// ErrKeyNotFound reports that no key of the issuer's key set matches the
	// token's kid, key type, algorithm and use. It also matches ErrSignature.
	ErrKeyNotFound = errors.New("validate: no matching key in the key set")
	// ErrKeySet reports that the issuer's key set could not be fetched or
	// parsed (network error, status, size bound, bad JSON, too many keys).
	ErrKeySet = errors.New("validate: key set unavailable")
	// ErrIssuer reports an "iss" claim that is missing or not exactly equal
	// to the configured issuer.
	ErrIssuer = errors.New("validate: issuer mismatch")
	// ErrAudience reports an "aud" claim that is missing or does not contain
	// the expected audience.
	ErrAudience = errors.New("validate: audience mismatch")
	// ErrAuthorizedParty reports an "azp" claim that is required (several
	// audiences) but missing, or present but not equal to the client id. It
	// also matches ErrAudience.
	ErrAuthorizedParty = errors.New("validate: authorized party (azp) mismatch")
	// ErrClientID reports an access token whose "client_id" is not the
	// expected client.
	ErrClientID = errors.New("validate: client_id mismatch")
	// ErrExpired reports a token whose "exp" is in the past by more than the
	// leeway.
	ErrExpired = errors.New("validate: token expired")
	// ErrNotYetValid reports a token whose "nbf" or "iat" is in the future by
	// more than the leeway.
	ErrNotYetValid = errors.New("validate: token not yet valid")
	// ErrMissingClaim reports that a required claim ("exp", "iat", "sub") is
	// absent.
	ErrMissingClaim = errors.New("validate: required claim missing")
	// ErrNonce reports a missing or wrong "nonce" claim.
	ErrNonce = errors.New("validate: nonce mismatch")
	// ErrTokenHash reports an "at_hash" or "c_hash" claim that does not match
	// the access token or code it came with.
	ErrTokenHash = errors.New("validate: at_hash or c_hash mismatch")
	// ErrTokenType reports a token of the wrong kind: an ID token offered as
	// an access token, an access token offered as an ID token, or an unknown
	// "typ".
	ErrTokenType = errors.New("validate: wrong token type")
	// ErrInsufficientScope is matched by every [*InsufficientScopeError].
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrInactive reports an introspection response with "active": false (or
	// without "active": true).
	ErrInactive = errors.New("validate: token inactive")
	// ErrIntrospection reports an introspection call that failed: network
	// error, non-200 status, redirect, oversized or unparsable body.
	ErrIntrospection = errors.New("validate: introspection failed")
	// ErrSubject reports a UserInfo "sub" that differs from the ID token's.
	ErrSubject = errors.New("validate: subject mismatch")
	// ErrConfig reports an invalid configuration given to a constructor.
	ErrConfig = cfgerr.ErrConfig
)

// verifyError is a failure with a fixed message and one or two sentinel
// kinds (and, for a failed call, its cause: see failCause). Its message
// never contains values taken from the token.
type verifyError struct {
	msg   string
	kinds []error
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Unwrap() []error { return e.kinds }

// fail returns an error matching kind whose message is kind's message
// followed by detail (a configuration error reads as every package's do). detail must never contain token-derived values.
func fail(kind error, detail string) error {
	if kind == ErrConfig { // the module's one style: "<package>: <what> (invalid configuration)"
		return cfgerr.New("validate", "%s", detail)
	}
	msg := kind.Error()
	if detail != "" {
		msg += ": " + detail
	}
	return &verifyError{msg: msg, kinds: []error{kind}}
}

// failCause is fail for a call the transport refused or could not make:
// the message stays ours, and cause (a TLS or policy refusal of the strict
// transport, a network error) stays reachable with errors.Is and errors.As
// (S19). cause never carries the request body, so no token reaches it.
func failCause(kind error, detail string, cause error) error {
	e := fail(kind, detail).(*verifyError)
	if cause != nil {
		e.kinds = append(e.kinds, cause)
	}
	return e
}

// fail2 is fail for errors that match two sentinels; the message is the
// first's.
func fail2(kind, also error, detail string) error {
	e := fail(kind, detail).(*verifyError)
	e.kinds = append(e.kinds, also)
	return e
}

// InsufficientScopeError reports scope a token lacks, for a resource
// server (RequireScopes: the required scopes the token does not carry)
// and for a client (the apiclient transport: a 403 insufficient_scope
// challenge, RFC 6750 §3.1, naming the scope the API needs). It is the one
// such type of the module. It matches [ErrInsufficientScope] with [errors.Is]. It is a plain
// value and safe to share between goroutines once returned.
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
	s := ErrInsufficientScope.Error()
	if len(e.Scope) > 0 {
		s += ": needs " + safetext.Clean(strings.Join(e.Scope, " "), 200)
	}
	if e.Description != "" {
		s += " (" + safetext.Clean(e.Description, 200) + ")"
	}
	return s
}

// Is reports whether target is [ErrInsufficientScope].
func (e *InsufficientScopeError) Is(target error) bool { return target == ErrInsufficientScope }
