package oauthtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// This file adds the grants that issue tokens to machines, which the op
// package offers only in forms that do not fit (its JWT profile grant
// wants iss == sub and keys per client; its token exchange issues no
// custom token type): the JWT-bearer grant (RFC 7523 §2.1) with
// assertions of trusted workload issuers and ID-JAGs of trusted identity
// providers, and token exchange (RFC 8693) of this server's access and ID
// tokens, issuing access tokens or an ID-JAG (enterprise-managed
// authorization). Access tokens are made by op.CreateAccessToken through
// the storage, so introspection, DPoP binding (cnf.jkt) and resource
// indicators work as for the other grants.

// Grant types and token types of RFC 7523, RFC 8693 and the ID-JAG draft.
const (
	GrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeID        = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDJAG     = "urn:ietf:params:oauth:token-type:id-jag"
	// IDJAGType is the typ header of an ID-JAG.
	IDJAGType = "oauth-id-jag+jwt"
)

// idJAGLifetime is the lifetime of the ID-JAGs this server issues.
const idJAGLifetime = 5 * time.Minute

// machineClients may use the JWT-bearer grant and token exchange; any
// other client is answered unauthorized_client.
var machineClients = []string{ClientService, ClientServicePost, ClientPrivateKeyJWT, ClientNative}

// machine is the server's trust for machine grants.
type machine struct {
	mu       sync.Mutex
	workload map[string]*WorkloadIssuer // by issuer
	idps     []*Server                  // identity providers whose ID-JAGs are redeemed
}

// WorkloadIssuer is a stand-in for a platform that issues workload
// identity tokens (a Kubernetes cluster, a CI system): an ES256 key the
// server trusts for the JWT-bearer grant. Make one with
// Server.NewWorkloadIssuer. It is safe for concurrent use.
type WorkloadIssuer struct {
	// Issuer is the iss of its tokens.
	Issuer string
	key    *ecdsa.PrivateKey
	kid    string
}

// NewWorkloadIssuer makes a workload issuer named issuer and makes the
// server accept its tokens as JWT-bearer assertions (aud must name the
// server's issuer or token endpoint, exp must not have passed).
func (s *Server) NewWorkloadIssuer(issuer string) (*WorkloadIssuer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: workload key: %w", err)
	}
	w := &WorkloadIssuer{Issuer: issuer, key: k, kid: "wl-" + randomToken(6)}
	s.machine.mu.Lock()
	defer s.machine.mu.Unlock()
	if s.machine.workload == nil {
		s.machine.workload = map[string]*WorkloadIssuer{}
	}
	s.machine.workload[issuer] = w
	return w, nil
}

// Sign returns a workload token (typ JWT) for subject with aud audience,
// issued now and expiring after lifetime (a negative lifetime makes one
// that has already expired).
func (w *WorkloadIssuer) Sign(subject, audience string, lifetime time.Duration) (string, error) {
	now := time.Now()
	return signJWT(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: w.key, KeyID: w.kid}}, "JWT", map[string]any{
		"iss": w.Issuer, "sub": subject, "aud": audience, "jti": randomToken(12),
		"iat": now.Add(min(lifetime, 0) - time.Minute).Unix(), "exp": now.Add(lifetime).Unix(),
	})
}

// TrustIdentityProvider makes the server redeem the ID-JAGs that idp
// issues (enterprise-managed authorization): a JWT-bearer assertion with
// typ oauth-id-jag+jwt, signed by idp, aud this server's issuer, and a
// client_id claim naming the client that presents it.
func (s *Server) TrustIdentityProvider(idp *Server) {
	s.machine.mu.Lock()
	defer s.machine.mu.Unlock()
	s.machine.idps = append(s.machine.idps, idp)
}

func signJWT(key jose.SigningKey, typ string, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// machineGrants serves the JWT-bearer and token-exchange grants at the
// token endpoint; every other request goes to next. It runs after the
// client authentication and DPoP middleware.
func (s *Server) machineGrants(p *op.Provider, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tokenPath || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body) // already bounded and buffered
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, err := url.ParseQuery(string(body))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		grant := form.Get("grant_type")
		if grant != GrantJWTBearer && grant != GrantTokenExchange {
			next.ServeHTTP(w, r)
			return
		}
		c, ok := s.machineClient(w, r, form)
		if !ok {
			return
		}
		if grant == GrantJWTBearer {
			s.serveJWTBearer(w, r, p, c, form)
		} else {
			s.serveTokenExchange(w, r, p, c, form)
		}
	})
}

// machineClient authenticates the client of a machine grant (the
// clientAuth middleware has checked the method and any assertion) and
// checks that it may use these grants.
func (s *Server) machineClient(w http.ResponseWriter, r *http.Request, form url.Values) (*client, bool) {
	id := form.Get("client_id")
	secret := form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(bid)
		secret, _ = url.QueryUnescape(bsecret)
	}
	if v, _ := r.Context().Value(assertionKey{}).(string); v != "" {
		id = v
	}
	c, ok := s.storage.clients[id]
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return nil, false
	}
	switch c.authMethod {
	case oidc.AuthMethodBasic, oidc.AuthMethodPost:
		if s.storage.AuthorizeClientIDSecret(r.Context(), id, secret) != nil {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return nil, false
		}
	case oidc.AuthMethodPrivateKeyJWT:
		if v, _ := r.Context().Value(assertionKey{}).(string); v != id {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return nil, false
		}
	}
	if !slices.Contains(machineClients, id) {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "this client may not use this grant")
		return nil, false
	}
	return c, true
}

// machineScopes are the scopes a machine grant may ask for.
func machineScopes(w http.ResponseWriter, form url.Values) ([]string, bool) {
	scopes := strings.Fields(form.Get("scope"))
	for _, sc := range scopes {
		if sc != ScopeAPIRead && sc != ScopeAPIWrite {
			writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "scope not allowed for this grant")
			return nil, false
		}
	}
	return scopes, true
}

// machineRequest is the op.TokenRequest of a machine grant.
type machineRequest struct {
	clientID string
	subject  string
	scopes   []string
	audience []string // nil: audienceFor(clientID, scopes)
}

// GetSubject is the subject with each ':' written '|': the op package's
// opaque access tokens encode "id:subject" and cannot hold a subject with
// a colon (workload subjects such as system:serviceaccount:ns:name have
// them); introspection shows it so written.
func (r *machineRequest) GetSubject() string  { return strings.ReplaceAll(r.subject, ":", "|") }
func (r *machineRequest) GetScopes() []string { return r.scopes }
func (r *machineRequest) GetAudience() []string {
	if r.audience != nil {
		return r.audience
	}
	return audienceFor(r.clientID, r.scopes)
}

// serveJWTBearer is RFC 7523 §2.1: the assertion is a workload token of
// a trusted issuer, or an ID-JAG of a trusted identity provider.
func (s *Server) serveJWTBearer(w http.ResponseWriter, r *http.Request, p *op.Provider, c *client, form url.Values) {
	raw := form.Get("assertion")
	if raw == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "assertion is missing")
		return
	}
	claims, typ, err := s.verifyAssertion(raw)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	scopes, ok := machineScopes(w, form)
	if !ok {
		return
	}
	req := &machineRequest{clientID: c.id, subject: claims.Subject, scopes: scopes}
	if strings.EqualFold(typ, IDJAGType) {
		if claims.ClientID != c.id {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the ID-JAG was issued for another client")
			return
		}
		if claims.Resource != "" {
			req.audience = []string{claims.Resource}
		}
		if scopes == nil {
			req.scopes = strings.Fields(claims.Scope)
		}
	}
	s.issueAccessToken(w, r, p, c, req, "")
}

// assertionClaims are the claims this server reads from assertions and
// tokens it is given.
type assertionClaims struct {
	Issuer   string        `json:"iss"`
	Subject  string        `json:"sub"`
	Audience oidc.Audience `json:"aud"`
	Expiry   oidc.Time     `json:"exp"`
	ClientID string        `json:"client_id"`
	Resource string        `json:"resource"`
	Scope    string        `json:"scope"`
}

// verifyAssertion checks a JWT-bearer assertion: its signature by a
// trusted workload issuer or identity provider, aud, exp and sub.
func (s *Server) verifyAssertion(raw string) (*assertionClaims, string, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, "", errors.New("the assertion is not a signed JWT")
	}
	typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	var unverified assertionClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, "", errors.New("the assertion's claims are not a JSON object")
	}
	var keys []jose.JSONWebKey
	s.machine.mu.Lock()
	if strings.EqualFold(typ, IDJAGType) {
		for _, idp := range s.machine.idps {
			if idp.Issuer == unverified.Issuer {
				keys = idp.storage.publicJWKs()
			}
		}
	} else if wl, ok := s.machine.workload[unverified.Issuer]; ok {
		keys = []jose.JSONWebKey{{Key: &wl.key.PublicKey, KeyID: wl.kid, Algorithm: string(jose.ES256)}}
	}
	s.machine.mu.Unlock()
	kid := jws.Signatures[0].Header.KeyID
	var payload []byte
	for _, k := range keys {
		if k.KeyID == kid {
			payload, err = jws.Verify(k)
			break
		}
	}
	if payload == nil || err != nil {
		return nil, "", errors.New("the assertion is not signed by a trusted issuer")
	}
	var cl assertionClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, "", errors.New("the assertion's claims are not a JSON object")
	}
	aud := []string(cl.Audience)
	if strings.EqualFold(typ, IDJAGType) {
		if len(aud) != 1 || aud[0] != s.Issuer {
			return nil, "", errors.New("the ID-JAG is for another authorization server")
		}
	} else if !slices.Contains(aud, s.Issuer) && !slices.Contains(aud, s.TokenURL) {
		return nil, "", errors.New("the assertion's audience is not this server")
	}
	if !cl.Expiry.AsTime().After(time.Now()) {
		return nil, "", errors.New("the assertion has expired")
	}
	if cl.Subject == "" {
		return nil, "", errors.New("the assertion has no subject")
	}
	return &cl, typ, nil
}

// publicJWKs are the public keys of the server's signing keys.
func (s *storage) publicJWKs() []jose.JSONWebKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]jose.JSONWebKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.id, Algorithm: string(jose.RS256)})
	}
	return out
}

// issueAccessToken answers a machine grant with an access token made by
// the op package through the storage (bound to the DPoP key the token
// middleware verified, with the resources asked for).
func (s *Server) issueAccessToken(w http.ResponseWriter, r *http.Request, p *op.Provider, c *client, req *machineRequest, issuedType string) {
	at, _, validity, err := op.CreateAccessToken(r.Context(), req, op.AccessTokenTypeBearer, p, c, "")
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			writeOAuthError(w, http.StatusBadRequest, string(oe.ErrorType), oe.Description)
			return
		}
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "token not issued")
		return
	}
	resp := map[string]any{"access_token": at, "token_type": oidc.BearerToken, "expires_in": int64(validity / time.Second)}
	if len(req.scopes) > 0 {
		resp["scope"] = strings.Join(req.scopes, " ")
	}
	if issuedType != "" {
		resp["issued_token_type"] = issuedType
	}
	writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// serveTokenExchange is RFC 8693: the subject (and actor) token is an
// access or ID token of this server, or a workload token of a trusted
// issuer; the server issues access tokens (for requested_token_type
// access_token, and for any other type but id-jag: it says so in
// issued_token_type, as RFC 8693 §2.2.1 lets it) or an ID-JAG.
func (s *Server) serveTokenExchange(w http.ResponseWriter, r *http.Request, p *op.Provider, c *client, form url.Values) {
	subject, err := s.exchangeSubject(r.Context(), p, form.Get("subject_token"), form.Get("subject_token_type"))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "subject_token: "+err.Error())
		return
	}
	if form.Has("actor_token") {
		if _, err := s.exchangeSubject(r.Context(), p, form.Get("actor_token"), form.Get("actor_token_type")); err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "actor_token: "+err.Error())
			return
		}
	}
	scopes, ok := machineScopes(w, form)
	if !ok {
		return
	}
	if form.Get("requested_token_type") == TokenTypeIDJAG {
		s.issueIDJAG(w, c, subject, form)
		return
	}
	req := &machineRequest{clientID: c.id, subject: subject, scopes: scopes}
	if aud := form["audience"]; len(aud) > 0 && len(form["resource"]) == 0 {
		req.audience = slices.Clone(aud)
	}
	s.issueAccessToken(w, r, p, c, req, TokenTypeAccess)
}

// exchangeSubject verifies a subject or actor token and returns its subject.
func (s *Server) exchangeSubject(ctx context.Context, p *op.Provider, token, typ string) (string, error) {
	if token == "" {
		return "", errors.New("missing")
	}
	switch typ {
	case TokenTypeAccess:
		plain, err := p.Crypto().Decrypt(token)
		if err != nil {
			return "", errors.New("not an access token of this server")
		}
		id, sub, ok := strings.Cut(plain, ":")
		if !ok {
			return "", errors.New("not an access token of this server")
		}
		at, err := s.storage.liveAccessToken(id)
		if err != nil || at.subject != sub {
			return "", errors.New("inactive")
		}
		return sub, nil
	case TokenTypeID:
		jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil || len(jws.Signatures) != 1 {
			return "", errors.New("not a signed JWT")
		}
		var payload []byte
		for _, k := range s.storage.publicJWKs() {
			if k.KeyID == jws.Signatures[0].Header.KeyID {
				payload, err = jws.Verify(k)
			}
		}
		var cl assertionClaims
		if payload == nil || err != nil || json.Unmarshal(payload, &cl) != nil || cl.Issuer != s.Issuer {
			return "", errors.New("not an ID token of this server")
		}
		if !cl.Expiry.AsTime().After(time.Now()) {
			return "", errors.New("expired")
		}
		return cl.Subject, nil
	case TokenTypeJWT:
		cl, typ, err := s.verifyAssertion(token)
		if err != nil || strings.EqualFold(typ, IDJAGType) {
			return "", errors.New("not a trusted workload token for this server")
		}
		return cl.Subject, nil
	}
	return "", errors.New("unsupported token type")
}

// issueIDJAG answers a token exchange with an ID-JAG for one audience
// (the authorization server that will redeem it), signed with the
// server's current key.
func (s *Server) issueIDJAG(w http.ResponseWriter, c *client, subject string, form url.Values) {
	aud := form["audience"]
	if len(aud) != 1 || aud[0] == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_target", "an ID-JAG needs exactly one audience")
		return
	}
	if len(form["resource"]) > 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_target", "an ID-JAG names at most one resource")
		return
	}
	s.storage.mu.Lock()
	k := s.storage.keys[len(s.storage.keys)-1]
	s.storage.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": s.Issuer, "sub": subject, "aud": aud[0], "client_id": c.id, "jti": randomToken(12),
		"iat": now.Unix(), "exp": now.Add(idJAGLifetime).Unix(),
	}
	if res := form.Get("resource"); res != "" {
		claims["resource"] = res
	}
	if sc := form.Get("scope"); sc != "" {
		claims["scope"] = sc
	}
	jag, err := signJWT(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}}, IDJAGType, claims)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "ID-JAG not signed")
		return
	}
	writeJSON(w, map[string]any{
		"access_token": jag, "issued_token_type": TokenTypeIDJAG, "token_type": "N_A",
		"expires_in": int64(idJAGLifetime / time.Second),
	})
}
