package apiclient

import (
	"net/http"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"golang.org/x/oauth2"
)

// The refusals of the API transport, for the tests that tell them apart
// (callers match strictnet.ErrPolicy).
var (
	ErrTokenInURL       = errTokenInURL
	ErrOriginNotAllowed = errOriginNotAllowed
	ErrRedirectRefused  = errRedirectRefused
	ErrBadToken         = errBadToken // matches oauthsafe.ErrConfig
)

// NewTransportOver is the RoundTripper of a client of src, over base in
// place of the strict transport, for benchmarks over a stub RoundTripper.
func NewTransportOver(src oauth2.TokenSource, cfg Config, base http.RoundTripper) (http.RoundTripper, error) {
	t, err := NewTransport(cfg)
	if err != nil {
		return nil, err
	}
	t.base = base
	return &tokenTransport{Transport: t, src: src}, nil
}

// DPoPBound returns a copy of t bound to a new DPoP key, as a DPoP token
// endpoint answer would be, for benchmarks of the API transport.
func DPoPBound(t *oauth2.Token) *oauth2.Token {
	k, err := dpop.NewKey()
	if err != nil {
		panic(err)
	}
	c := *t
	c.TokenType = "DPoP"
	return dpop.WithKey(&c, k)
}

// SourceRecheck is sourceRecheck, for tests.
const SourceRecheck = sourceRecheck
