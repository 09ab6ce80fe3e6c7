package oauthtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// This file is RFC 7662 introspection of refresh tokens, which the op
// package does not offer (it introspects access tokens only).

const introspectPath = "/oauth/introspect"

// refreshIntrospection answers introspection requests for refresh tokens:
// a token this server issued as a refresh token (live or spent), or any
// token sent with token_type_hint=refresh_token. The client must be the one
// the token was issued to, authenticated with its registered method (a
// public client by its client_id: it proves itself by holding the token);
// another client, or a token that is spent (rotated or reused), revoked,
// expired or unknown, gets {"active": false}. Introspection is never a use:
// it consumes nothing and never triggers reuse detection
// (Options.RevokeFamilyOnReuse). Other tokens go to the op package's
// introspection of access tokens.
func (s *Server) refreshIntrospection(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != introspectPath {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body) // already bounded and buffered
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
			return
		}
		token := form.Get("token")
		if token == "" || !s.storage.isRefreshToken(token) && form.Get("token_type_hint") != "refresh_token" {
			next.ServeHTTP(w, r)
			return
		}
		clientID, ok := s.introspectingClient(r, form)
		if !ok {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		out := map[string]any{"active": false}
		if rt, ok := s.storage.liveRefreshToken(token); ok && rt.clientID == clientID {
			out = map[string]any{
				"active": true, "client_id": rt.clientID, "sub": rt.subject, "iss": s.Issuer,
				"scope": strings.Join(rt.scopes, " "), "exp": rt.expiry.Unix(),
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	})
}

// introspectingClient returns the client of an introspection request.
// clientAuth (which runs first) has checked that the client uses its
// registered method and verified a private_key_jwt assertion; secrets are
// checked here.
func (s *Server) introspectingClient(r *http.Request, form url.Values) (string, bool) {
	if id, ok := r.Context().Value(assertionKey{}).(string); ok {
		return id, true
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		var err error
		if id, err = url.QueryUnescape(id); err != nil {
			return "", false
		}
		if secret, err = url.QueryUnescape(secret); err != nil {
			return "", false
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	c, ok := s.storage.clients[id]
	switch {
	case !ok:
		return "", false
	case c.authMethod == oidc.AuthMethodNone:
		return id, secret == ""
	case c.authMethod == oidc.AuthMethodBasic || c.authMethod == oidc.AuthMethodPost:
		return id, s.storage.AuthorizeClientIDSecret(r.Context(), id, secret) == nil
	}
	return "", false
}

// isRefreshToken reports whether token was issued as a refresh token by
// this server, live or spent.
func (s *storage) isRefreshToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, live := s.refreshTokens[token]
	_, used := s.usedRefresh[token]
	return live || used
}

// liveRefreshToken returns a copy of a live, unexpired refresh token.
func (s *storage) liveRefreshToken(token string) (refreshToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expiry) {
		return refreshToken{}, false
	}
	c := *rt
	c.scopes = slices.Clone(rt.scopes)
	return c, true
}
