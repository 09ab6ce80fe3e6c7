// Package hook lets the subpackages of oauthclient reach what oauthclient
// keeps unexported, without making it part of oauthclient's API. The
// functions are set by oauthclient's init; a subpackage imports oauthclient
// for its types, so they are always set before use.
package hook

import (
	"context"
	"errors"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"golang.org/x/oauth2"
)

// ClientCredentials returns the client-credentials token source of c, an
// *oauthclient.Client, for the scopes (nil: the client's) and RFC 8707
// resource indicators given; noDPoP leaves DPoP off unless the client's
// Config or the server requires it.
var ClientCredentials func(c any, scopes, resource []string, noDPoP bool) *engine.Source

// Grant is one token request of a service grant that a subpackage
// describes and oauthclient runs (DPoP, nonces, client authentication,
// the checks of the answer).
type Grant struct {
	// Params returns the grant's own parameters for one request
	// (grant_type, assertion, subject_token, …), given the issuer of the
	// client's server. It is called before each request.
	Params func(ctx context.Context, issuer string) (url.Values, error)
	// Scopes requested (nil: none); Resource: RFC 8707 indicators.
	Scopes, Resource []string
	// Audience: RFC 8693 audience values (token exchange).
	Audience []string
	// NoDPoP leaves DPoP off unless the Config or the server requires it.
	NoDPoP bool
	// Issued, when not "", is the RFC 8693 requested_token_type: the
	// answer's issued_token_type must equal it.
	Issued string
}

// Issued is one answer of a grant.
type Issued struct {
	Token  *oauth2.Token // the issued token; TokenType "N_A" for a token that is not an access token
	Type   string        // RFC 8693 issued_token_type, "" when absent
	Scopes []string      // granted scopes
}

// Source returns the lifecycle engine over a service grant of c (an
// *oauthclient.Client): memory only, one DPoP key for its lifetime when
// DPoP is on; a grant refusal is not retried with the same parameters.
var Source func(c any, g Grant) *engine.Source

// Call runs one request of a grant without the engine (an ID-JAG that is
// an assertion, not an access token, proven with no DPoP key).
var Call func(ctx context.Context, c any, g Grant) (*Issued, error)

// ErrIssuedType is matched by an RFC 8693 answer whose issued_token_type
// is not the requested one (tokenexchange.ErrIssuedTokenType).
var ErrIssuedType = errors.New("tokenexchange: issued_token_type is not the requested type")
