package oauthclient

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// Sentinel errors. Every error returned by this package can be tested with
// errors.Is against one of these, or with errors.As against one of the error
// types below. No error string contains a token, code, verifier or secret.
var (
	// ErrStateMismatch: the callback's state is missing, repeated or wrong,
	// or the pending flow it must match cannot be read.
	ErrStateMismatch = errors.New("oauthclient: state mismatch")
	// ErrFlowExpired: the pending flow is older than its lifetime, or the
	// device code expired before the user approved it.
	ErrFlowExpired = errors.New("oauthclient: authorization flow expired")
	// ErrIssuerMismatch: discovery or the callback's iss names another issuer,
	// or iss is missing although the server promised it (RFC 9207).
	ErrIssuerMismatch = errors.New("oauthclient: issuer mismatch")
	// ErrMalformedResponse: a server answered with something that is not
	// a valid response: HTML, bad JSON, missing fields, a token_type this
	// client does not understand (RFC 6749 §7.1), a callback without
	// exactly one code. An *AuthError with Problem set matches it.
	ErrMalformedResponse = errors.New("oauthclient: malformed server response")
	// ErrNoEndpoint: the server's metadata offers no endpoint for the call
	// (revocation, userinfo, device authorization).
	ErrNoEndpoint = errors.New("oauthclient: the server offers no such endpoint")
	// ErrIDToken: the ID token failed validation; the validate package's error is wrapped too.
	ErrIDToken = errors.New("oauthclient: id token rejected")
	// ErrDPoP matches every refusal of DPoP input from a server: a
	// DPoP-Nonce that is too long or not NQCHAR, a token_type DPoP to a
	// request that sent no proof, a Bearer answer to a DPoP request
	// (unless Config.AllowBearerDowngrade), a second use_dpop_nonce after
	// the one retry. It is the module's one such sentinel.
	ErrDPoP = dpop.ErrDPoP
	// ErrAuthorizationServer matches every *AuthError that is an OAuth
	// error answer (its Problem empty).
	ErrAuthorizationServer = errors.New("oauthclient: authorization server error")
)

// The precise causes behind the sentinels above, unexported: each is
// wrapped with its sentinel (a granted scope wider than requested is a
// policy refusal), so that callers match the sentinel and the tests the
// cause.
var (
	errUnknownTokenType = errors.New("unsupported token_type")
	errMissingCode      = errors.New("authorization code missing or repeated")
	errTrailingData     = errors.New("trailing data after the JSON object")
	errScopeWidened     = &strictnet.PolicyError{Reason: "granted scope wider than requested"}
	errAuthTime         = errors.New("authentication too old for max_age")
	errBadPending       = fmt.Errorf("%w: the pending flow cannot be read", ErrStateMismatch)
	errDeviceExpired    = fmt.Errorf("%w: the device code expired", ErrFlowExpired)
)

// policyf makes a *strictnet.PolicyError, which matches strictnet.ErrPolicy.
func policyf(format string, args ...any) error {
	return &strictnet.PolicyError{Reason: fmt.Sprintf(format, args...)}
}

// AuthError is an error of the authorization server, of one of two kinds.
//
// An OAuth error answer (Problem empty): the server refused, either on the
// redirect (the callback's error parameter) or at an endpoint (RFC 6749
// §5.2). Endpoint, StatusCode (0 for a redirect error), Code, Description
// and URI are set. It matches ErrAuthorizationServer, and
// tokenstore.ErrLoginRequired when Code is invalid_grant on a token
// endpoint call. When it came from an HTTP response, errors.As can reach
// an *oauth2.RetrieveError made for the caller: its Response has the
// status and headers (no Set-Cookie), no Request and no body; Body is nil;
// ErrorCode, ErrorDescription and ErrorURI are the cleaned fields.
//
// A malformed answer (Problem set): a response that could not be
// understood, such as a non-JSON body, a missing field, or an HTTP status
// without an OAuth error. Endpoint, StatusCode (0 when the problem is
// not an HTTP status) and Problem are set; Code, Description and URI are empty. It
// matches ErrMalformedResponse only.
//
// Temporary reports a 5xx or 429 status for both kinds. No value
// reachable from the error holds a request, a body or a token (S19).
type AuthError struct {
	Endpoint    string // "authorization", "token", "revocation", …
	StatusCode  int    // HTTP status, 0 for a redirect error
	Code        string // error code, e.g. "access_denied"
	Description string // error_description, scrubbed of every value we sent; Error() shows it cleaned and quoted; escape before putting it in a page
	URI         string // error_uri
	Problem     string // what was malformed in the answer; empty for an OAuth error answer
	retrieve    *oauth2.RetrieveError
	grant       string // grant_type of the token request, for the hint
}

func (e *AuthError) Error() string {
	if e.Problem != "" {
		s := "oauthclient: malformed " + e.Endpoint + " response"
		if e.StatusCode != 0 {
			s += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
		}
		return s + ": " + e.Problem
	}
	var b strings.Builder
	b.WriteString("oauthclient: ")
	b.WriteString(e.Endpoint)
	b.WriteString(" error")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(safetext.Clean(e.Code, 64))
	}
	// Description is server text: scrubbed of what we sent when the error
	// was made (servers echo the token or secret they refused), cleaned
	// and quoted here (S22).
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(safetext.Quote(e.Description, 300))
	}
	h := authErrorHints[e.Code]
	if e.Code == "invalid_grant" && (e.grant == grantJWTBearer || e.grant == grantTokenExchange) {
		h = "the assertion or subject token was refused; a new one is needed"
	}
	if h != "" && e.Endpoint != "authorization" {
		b.WriteString("; ")
		b.WriteString(h)
	}
	return b.String()
}

// authErrorHints say what to fix for the token endpoint's permanent errors.
var authErrorHints = map[string]string{
	"invalid_client":         "check the client id and its secret, key or certificate, and the authentication method registered for it",
	"unauthorized_client":    "the client is not allowed this grant type at the server; check its registration",
	"invalid_scope":          "ask only for scopes the client is registered for",
	"invalid_target":         "ask only for resources the client and the login were granted",
	"unsupported_grant_type": "the server does not offer this grant",
	"invalid_grant":          "log in again",
}

// Is matches ErrMalformedResponse for a malformed answer (Problem set);
// otherwise ErrAuthorizationServer, tokenstore.ErrLoginRequired for
// invalid_grant from the token endpoint, and ErrDPoP for use_dpop_nonce
// and invalid_dpop_proof.
func (e *AuthError) Is(target error) bool {
	if e.Problem != "" {
		return target == ErrMalformedResponse
	}
	switch target {
	case ErrAuthorizationServer:
		return true
	case tokenstore.ErrLoginRequired:
		return e.Code == "invalid_grant" && e.Endpoint == "token"
	case ErrDPoP:
		return e.Code == "use_dpop_nonce" || e.Code == "invalid_dpop_proof"
	}
	return false
}

// Unwrap gives access to the sanitized *oauth2.RetrieveError of an HTTP
// error response.
func (e *AuthError) Unwrap() error {
	if e.retrieve == nil {
		return nil
	}
	return e.retrieve
}

// Temporary reports whether retrying later may succeed (5xx, 429).
func (e *AuthError) Temporary() bool { return e.StatusCode >= 500 || e.StatusCode == 429 }

// sensitiveParams are the request parameters whose values must never come
// back to the caller inside server-controlled error text.
var sensitiveParams = []string{"code", "code_verifier", "refresh_token", "token", "client_secret", "client_assertion", "device_code", "assertion", "subject_token", "actor_token"}

// scrub removes from the error's server-controlled text every sensitive
// value of the request that caused it, the client secret and any other
// value given.
func (e *AuthError) scrub(form url.Values, clientSecret secret.Value, more ...string) {
	vals := append([]string{clientSecret.Reveal()}, more...)
	for _, k := range sensitiveParams {
		vals = append(vals, form[k]...)
	}
	for _, v := range vals {
		if len(v) < 4 {
			continue
		}
		e.Description = strings.ReplaceAll(e.Description, v, safetext.Redacted)
		e.URI = strings.ReplaceAll(e.URI, v, safetext.Redacted)
		e.Code = strings.ReplaceAll(e.Code, v, safetext.Redacted)
	}
}
