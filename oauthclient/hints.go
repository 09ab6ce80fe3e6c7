package oauthclient

import (
	"fmt"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// issuerMismatch is an issuer other than Config.Issuer where exactly it is
// required: in the discovery document, or as the authorization response's
// iss (RFC 9207). It matches ErrIssuerMismatch, and its Hint says what to
// do (strictnet.Hint finds it in any error's chain). The issuer the server
// named is server text: it is cleaned before it is shown (S22).
type issuerMismatch struct {
	where      string // "metadata" or "callback"
	named      string // cleaned
	configured string
}

func newIssuerMismatch(where, named, configured string) *issuerMismatch {
	return &issuerMismatch{where: where, named: safetext.Clean(named, 200), configured: configured}
}

func (e *issuerMismatch) Error() string {
	if e.where == "callback" {
		return ErrIssuerMismatch.Error() + ": authorization response iss does not match"
	}
	return fmt.Sprintf("%s: metadata names issuer %q, configured %q", ErrIssuerMismatch.Error(), e.named, e.configured)
}

func (e *issuerMismatch) Is(target error) bool { return target == ErrIssuerMismatch }

// Hint says what to do: when discovery names an issuer that differs only
// by a trailing slash, the exact value to configure.
func (e *issuerMismatch) Hint() string {
	// Only discovery's issuer may suggest a value: the discovery document
	// came from the configured issuer's own well-known URL, while a
	// callback's iss is whatever reached the redirect URI (RFC 9207).
	if e.where == "metadata" && e.named != "" && e.named != e.configured && strings.TrimSuffix(e.named, "/") == strings.TrimSuffix(e.configured, "/") {
		return fmt.Sprintf("the server's issuer differs from the configured one only by a trailing slash: set the issuer to exactly %q (issuers are compared exactly)", e.named)
	}
	if e.where == "callback" {
		return "the authorization response came from another issuer than this client's (a mix-up attack, or two providers sharing one redirect URI): give each provider its own redirect URI, and sign in again"
	}
	return "the configured issuer must be exactly the one your provider documents (scheme, host, path, trailing slash): compare it with the issuer of its /.well-known/openid-configuration"
}
