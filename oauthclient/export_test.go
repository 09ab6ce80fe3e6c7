package oauthclient

import (
	"net/http"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"golang.org/x/oauth2"
)

// NewAPITransportOver is NewAPITransport with base in place of the strict
// transport, for benchmarks over a stub RoundTripper.
func NewAPITransportOver(src oauth2.TokenSource, cfg APIConfig, base http.RoundTripper) (*APITransport, error) {
	t, err := NewAPITransport(src, cfg)
	if err != nil {
		return nil, err
	}
	t.base = base
	return t, nil
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
