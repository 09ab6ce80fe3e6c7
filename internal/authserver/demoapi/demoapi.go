// Package demoapi is a resource server for demos and examples: it accepts a
// bearer token only when the embedded authorization server says, by RFC 7662
// introspection, that it is active, meant for the "api" audience and carries
// the scope a route requires. It is not API of the module.
package demoapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/authserver"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/validate"
)

// Audience is the audience the embedded server puts in API tokens.
const Audience = "api"

// API checks bearer tokens for routes. It is safe for concurrent use once
// built; Seen must be set before serving.
type API struct {
	in *validate.Introspector
	// Seen, if not nil, receives every bearer token a route receives, so
	// that tests can check that none was printed.
	Seen func(token string)
}

// New returns an API that introspects tokens at as, authenticated as the
// resource server client authserver.ClientResource.
func New(ctx context.Context, as *authserver.Server) (*API, error) {
	secret, err := oauthclient.SecretFromReader(strings.NewReader(authserver.ResourceSecret))
	if err != nil {
		return nil, err
	}
	rs, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: as.Issuer, ClientID: authserver.ClientResource, ClientSecret: secret,
		HTTP: oauthclient.HTTPConfig{RootCAs: as.RootCAs()},
	})
	if err != nil {
		return nil, err
	}
	in, err := rs.Introspector(validate.IntrospectionConfig{Audience: Audience})
	if err != nil {
		return nil, err
	}
	return &API{in: in}, nil
}

// Require wraps h: it runs only for a request whose bearer token is active
// and has scope. Otherwise it answers the RFC 6750 challenge: 401 without a
// token or with an invalid one, 403 insufficient_scope naming the scope.
func (a *API) Require(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="demo"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if a.Seen != nil {
			a.Seen(raw)
		}
		at, err := a.in.Introspect(r.Context(), raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if at.RequireScopes(scope) != nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h(w, r)
	}
}
