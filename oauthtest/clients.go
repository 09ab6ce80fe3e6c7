package oauthtest

import (
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The registered clients. Each one is fixed at Start; only the redirect
// URIs of the web clients can grow (Options.RedirectURIs and
// Server.AddRedirectURI).
const (
	// ClientWeb is a confidential web client that authenticates with
	// client_secret_basic (secret WebSecret). It may use the
	// authorization_code and refresh_token grants; redirect URIs must match
	// exactly.
	ClientWeb = "web"
	// ClientWebPost is like ClientWeb but authenticates with
	// client_secret_post (secret WebPostSecret).
	ClientWebPost = "web-post"
	// ClientWebJWTAccess is like ClientWeb (client_secret_basic, secret
	// WebJWTAccessSecret) but receives access tokens that are JWTs signed
	// by the server key, as zitadel's op package produces them (header
	// typ "JWT", not the RFC 9068 "at+jwt").
	ClientWebJWTAccess = "web-jwt-access"
	// ClientNative is a public native client (token endpoint auth method
	// "none"), authorization_code and refresh_token grants. Its registered
	// redirect URI is NativeRedirectURI; any loopback port is accepted for it
	// (RFC 8252 §7.3), the path must match.
	ClientNative = "native"
	// ClientService uses the client_credentials grant with
	// client_secret_basic (secret ServiceSecret).
	ClientService = "service"
	// ClientServicePost uses the client_credentials grant with
	// client_secret_post (secret ServicePostSecret).
	ClientServicePost = "service-post"
	// ClientPrivateKeyJWT authenticates with private_key_jwt (RFC 7523):
	// assertions must be RS256-signed with Server.ClientKey and carry
	// Server.ClientKeyID as kid, iss = sub = ClientPrivateKeyJWT and aud
	// containing the issuer. It may use client_credentials,
	// authorization_code and refresh_token; an assertion's jti may be used
	// only once.
	ClientPrivateKeyJWT = "service-jwt"
	// ClientDevice is a public client (auth method "none") for the device
	// authorization grant (RFC 8628); with offline_access it also receives
	// a refresh token.
	ClientDevice = "device"
	// ClientResource is a resource server (API) that may call the
	// introspection endpoint with client_secret_basic (secret
	// ResourceSecret) and see every access token. It has no grant.
	ClientResource = "api"
)

// Client secrets. They are constants because this server only ever runs in
// tests and in the demo.
const (
	// WebSecret is the client secret of ClientWeb.
	WebSecret = "web-secret-3c1f0f0e9a6b4f7d"
	// WebPostSecret is the client secret of ClientWebPost.
	WebPostSecret = "web-post-secret-51d2a7c0b8e94e36"
	// WebJWTAccessSecret is the client secret of ClientWebJWTAccess.
	WebJWTAccessSecret = "web-jwt-access-secret-0a8d4c1e"
	// ServiceSecret is the client secret of ClientService.
	ServiceSecret = "service-secret-9f4e2b7a1c3d5e60"
	// ServicePostSecret is the client secret of ClientServicePost.
	ServicePostSecret = "service-post-secret-6b2e8d0f4a1c"
	// ResourceSecret is the client secret of ClientResource.
	ResourceSecret = "resource-secret-e7c3a9b1d5f20846"
)

// Redirect URIs and scopes.
const (
	// WebRedirectURI is registered for every web client in addition to
	// Options.RedirectURIs. Nothing listens there.
	WebRedirectURI = "https://127.0.0.1/callback"
	// NativeRedirectURI is the loopback redirect URI registered for
	// ClientNative; the port is ignored when matching (RFC 8252 §7.3).
	NativeRedirectURI = "http://127.0.0.1/callback"
	// ScopeAPIRead is a custom API scope every client may request.
	ScopeAPIRead = "api.read"
	// ScopeAPIWrite is a second custom API scope every client may request.
	ScopeAPIWrite = "api.write"
)

// client implements op.Client. Every field but redirectURIs is fixed after
// construction; redirectURIs is guarded by mu.
type client struct {
	id         string
	secret     string
	appType    op.ApplicationType
	authMethod oidc.AuthMethod
	grants     []oidc.GrantType
	tokenType  op.AccessTokenType

	mu           sync.RWMutex
	redirectURIs []string
	idLifetime   time.Duration // Options.IDTokenLifetime
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string { return c.id }

func (c *client) RedirectURIs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.redirectURIs)
}

func (c *client) addRedirectURI(uri string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.redirectURIs, uri) {
		c.redirectURIs = append(c.redirectURIs, uri)
	}
}

func (c *client) PostLogoutRedirectURIs() []string     { return nil }
func (c *client) ApplicationType() op.ApplicationType  { return c.appType }
func (c *client) AuthMethod() oidc.AuthMethod          { return c.authMethod }
func (c *client) GrantTypes() []oidc.GrantType         { return c.grants }
func (c *client) LoginURL(id string) string            { return loginPath + "?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return c.tokenType }
func (c *client) IDTokenLifetime() time.Duration       { return c.idLifetime }
func (c *client) DevMode() bool                        { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == ScopeAPIRead || scope == ScopeAPIWrite
}
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// ResponseTypes allows only "code": the implicit and hybrid flows do not
// exist on this server.
func (c *client) ResponseTypes() []oidc.ResponseType {
	if slices.Contains(c.grants, oidc.GrantTypeCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}

// redirectAllowed: an exact match, or for a native client a loopback URI
// whose path matches a registered one, any port (RFC 8252 §7.3).
func (c *client) redirectAllowed(uri string) bool {
	regs := c.RedirectURIs()
	if slices.Contains(regs, uri) {
		return true
	}
	if c.appType != op.ApplicationTypeNative {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" {
		return false
	}
	for _, r := range regs {
		if ru, err := url.Parse(r); err == nil && ru.Scheme == "http" && ru.Hostname() == "127.0.0.1" && ru.Path == u.Path {
			return true
		}
	}
	return false
}

func (c *client) hasGrant(g oidc.GrantType) bool { return slices.Contains(c.grants, g) }

// newClients builds the fixed client registry.
func newClients(extraRedirects []string, idLifetime time.Duration) map[string]*client {
	web := func(id, secret string, method oidc.AuthMethod, tt op.AccessTokenType) *client {
		return &client{
			id: id, secret: secret, appType: op.ApplicationTypeWeb, authMethod: method,
			grants:       []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
			tokenType:    tt,
			redirectURIs: append([]string{WebRedirectURI}, extraRedirects...),
		}
	}
	cs := []*client{
		web(ClientWeb, WebSecret, oidc.AuthMethodBasic, op.AccessTokenTypeBearer),
		web(ClientWebPost, WebPostSecret, oidc.AuthMethodPost, op.AccessTokenTypeBearer),
		web(ClientWebJWTAccess, WebJWTAccessSecret, oidc.AuthMethodBasic, op.AccessTokenTypeJWT),
		{
			id: ClientNative, appType: op.ApplicationTypeNative, authMethod: oidc.AuthMethodNone,
			grants:       []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
			tokenType:    op.AccessTokenTypeBearer,
			redirectURIs: append([]string{NativeRedirectURI}, extraRedirects...),
		},
		{
			id: ClientService, secret: ServiceSecret, appType: op.ApplicationTypeWeb, authMethod: oidc.AuthMethodBasic,
			grants: []oidc.GrantType{oidc.GrantTypeClientCredentials}, tokenType: op.AccessTokenTypeBearer,
		},
		{
			id: ClientServicePost, secret: ServicePostSecret, appType: op.ApplicationTypeWeb, authMethod: oidc.AuthMethodPost,
			grants: []oidc.GrantType{oidc.GrantTypeClientCredentials}, tokenType: op.AccessTokenTypeBearer,
		},
		{
			id: ClientPrivateKeyJWT, appType: op.ApplicationTypeWeb, authMethod: oidc.AuthMethodPrivateKeyJWT,
			grants:       []oidc.GrantType{oidc.GrantTypeClientCredentials, oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
			tokenType:    op.AccessTokenTypeBearer,
			redirectURIs: append([]string{WebRedirectURI}, extraRedirects...),
		},
		{
			id: ClientDevice, appType: op.ApplicationTypeNative, authMethod: oidc.AuthMethodNone,
			grants:    []oidc.GrantType{oidc.GrantTypeDeviceCode, oidc.GrantTypeRefreshToken},
			tokenType: op.AccessTokenTypeBearer,
		},
		{
			id: ClientResource, secret: ResourceSecret, appType: op.ApplicationTypeWeb, authMethod: oidc.AuthMethodBasic,
			tokenType: op.AccessTokenTypeBearer,
		},
	}
	m := make(map[string]*client, len(cs))
	for _, c := range cs {
		c.idLifetime = idLifetime
		m[c.id] = c
	}
	return m
}
