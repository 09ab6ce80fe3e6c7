// Package demoapi is a resource server for demos and examples: it accepts a
// token only when the embedded authorization server says, by RFC 7662
// introspection, that it is active, meant for its audience and carries
// the scope a route requires. A DPoP-bound token (introspection cnf.jkt)
// is accepted only as "Authorization: DPoP" with a fresh proof of the
// bound key for this very request (RFC 9449 §7); a bearer use of it is
// refused. It publishes RFC 9728 protected resource metadata and names it
// in its challenges. It is not API of the module.
package demoapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// Audience is the audience the embedded server puts in API tokens.
const Audience = "api"

// API checks bearer tokens for routes. It is safe for concurrent use once
// built; Seen must be set before serving.
type API struct {
	in   *validate.AccessTokenVerifier
	dpop *oauthtest.DPoPVerifier
	// metadata is the RFC 9728 document; metadataURL names it in challenges.
	metadata    map[string]any
	metadataURL string
	// Seen, if not nil, receives every bearer token a route receives, so
	// that tests can check that none was printed.
	Seen func(token string)

	requireDPoP bool
	scope       string // of the 401 challenge
}

// New returns an API that introspects tokens at as, authenticated as the
// resource server client oauthtest.ClientResource.
func New(ctx context.Context, as *oauthtest.Server) (*API, error) {
	return NewResource(ctx, as, ResourceConfig{})
}

// ResourceConfig configures NewResource. The zero value is New's API.
type ResourceConfig struct {
	// Resource is the resource identifier (RFC 8707 / RFC 9728): an https
	// URL, the audience tokens must carry. "" means the audience "api"
	// and no metadata document.
	Resource string
	// DPoPNonce makes the API require a server nonce in proofs (RFC 9449
	// §9): a proof without it gets 401 use_dpop_nonce and a DPoP-Nonce.
	DPoPNonce bool
	// RequireDPoP refuses bearer tokens altogether.
	RequireDPoP bool
	// AuthorizationServers overrides the metadata's authorization_servers
	// (a resource pointing elsewhere, for S28 tests). nil means as.Issuer.
	AuthorizationServers []string
	// ChallengeScope, when set, is the scope of the 401 challenge (the
	// scopes a client should ask for, MCP authorization). nil means none.
	ChallengeScope []string
}

// NewResource is New with a resource identifier, DPoP options and RFC
// 9728 metadata.
func NewResource(ctx context.Context, as *oauthtest.Server, cfg ResourceConfig) (*API, error) {
	secret, err := secret.FromReader(strings.NewReader(oauthtest.ResourceSecret))
	if err != nil {
		return nil, err
	}
	rs, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: as.Issuer, ClientID: oauthtest.ClientResource, ClientSecret: secret,
		HTTP: strictnet.Config{RootCAs: as.RootCAs()},
	})
	if err != nil {
		return nil, err
	}
	aud := Audience
	if cfg.Resource != "" {
		aud = cfg.Resource
	}
	in, err := rs.Introspector(validate.IntrospectionConfig{Audience: aud})
	if err != nil {
		return nil, err
	}
	a := &API{in: in, dpop: oauthtest.NewDPoPVerifier(cfg.DPoPNonce), requireDPoP: cfg.RequireDPoP, scope: strings.Join(cfg.ChallengeScope, " ")}
	if cfg.Resource != "" {
		servers := cfg.AuthorizationServers
		if servers == nil {
			servers = []string{as.Issuer}
		}
		a.metadataURL = MetadataURL(cfg.Resource)
		a.metadata = map[string]any{
			"resource":                          cfg.Resource,
			"authorization_servers":             servers,
			"scopes_supported":                  []string{oauthtest.ScopeAPIRead, oauthtest.ScopeAPIWrite},
			"bearer_methods_supported":          []string{"header"},
			"dpop_signing_alg_values_supported": oauthtest.DPoPAlgs(),
			"dpop_bound_access_tokens_required": cfg.RequireDPoP,
		}
	}
	return a, nil
}

// MetadataURL is where RFC 9728 §3.1 puts the metadata of resource: the
// well-known segment between the host and the resource's path.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + p
}

// ServeMetadata serves the RFC 9728 document (404 when the API has no
// resource identifier). Mount it at the path of MetadataURL.
func (a *API) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	if a.metadata == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.metadata)
}

// DPoP returns the API's proof verifier (nonce rotation in tests).
func (a *API) DPoP() *oauthtest.DPoPVerifier { return a.dpop }

// challenge writes a 401 with the Bearer or DPoP challenge (RFC 6750 §3,
// RFC 9449 §7.1), naming the metadata when there is one.
func (a *API) challenge(w http.ResponseWriter, dpop bool, code, desc string) {
	if dpop || a.requireDPoP {
		a.dpop.WriteDPoPChallenge(w, code, desc, a.metadataURL)
		return
	}
	ch := `Bearer realm="demo"`
	if code != "" {
		ch += `, error="` + code + `"`
	}
	if a.metadataURL != "" {
		ch += `, resource_metadata="` + a.metadataURL + `"`
	}
	if a.scope != "" {
		ch += `, scope="` + a.scope + `"`
	}
	w.Header().Set("WWW-Authenticate", ch)
	w.WriteHeader(http.StatusUnauthorized)
}

// Require wraps h: it runs only for a request whose bearer token is active
// and has scope. Otherwise it answers the RFC 6750 challenge: 401 without a
// token or with an invalid one, 403 insufficient_scope naming the scope.
func (a *API) Require(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auths := r.Header.Values("Authorization")
		var raw string
		var dpop, ok bool
		if len(auths) == 1 {
			if raw, ok = strings.CutPrefix(auths[0], "Bearer "); !ok {
				raw, ok = strings.CutPrefix(auths[0], "DPoP ")
				dpop = ok
			}
		}
		if !ok || raw == "" {
			a.challenge(w, false, "", "")
			return
		}
		if a.Seen != nil {
			a.Seen(raw)
		}
		at, err := a.in.Verify(r.Context(), raw)
		if err != nil {
			a.challenge(w, dpop, "invalid_token", "token is not active or not for this resource")
			return
		}
		var cnf struct {
			Cnf struct {
				JKT string `json:"jkt"`
			} `json:"cnf"`
		}
		_ = at.Claims(&cnf)
		switch {
		case cnf.Cnf.JKT == "" && (dpop || a.requireDPoP):
			// A bearer token presented as DPoP (or to a DPoP-only API).
			a.challenge(w, true, "invalid_token", "token is not DPoP-bound")
			return
		case cnf.Cnf.JKT != "" && !dpop:
			// RFC 9449 §7.2: a bound token used as a bearer token.
			a.challenge(w, true, "invalid_token", "DPoP-bound token presented as Bearer")
			return
		case cnf.Cnf.JKT != "":
			p, err := a.dpop.Verify(r, "https://"+r.Host+r.URL.Path, raw)
			if err != nil {
				code, desc := oauthtest.DPoPInvalidProof, "proof refused"
				if de, ok := err.(*oauthtest.DPoPError); ok {
					code, desc = de.Code, de.Description
				}
				a.challenge(w, true, code, desc)
				return
			}
			if p.JKT != cnf.Cnf.JKT {
				a.challenge(w, true, "invalid_token", "proof key is not the key the token is bound to")
				return
			}
		}
		if at.RequireScopes(scope) != nil {
			scheme := "Bearer"
			if dpop {
				scheme = "DPoP"
			}
			w.Header().Set("WWW-Authenticate", scheme+` error="insufficient_scope", scope="`+scope+`"`)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h(w, r)
	}
}
