package oauthclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/validate"
)

// authMethod is a client authentication method at the token endpoint
// (S17), by its registered name (the IANA OAuth Token Endpoint
// Authentication Methods registry), as Config.AuthMethod gives it.
type authMethod string

// The supported client authentication methods. Exactly one is used per
// client; there is never a second attempt with another.
const (
	authNone              authMethod = "none"                // public client: client_id only
	authClientSecretBasic authMethod = "client_secret_basic" // HTTP Basic (RFC 6749 §2.3.1)
	authClientSecretPost  authMethod = "client_secret_post"  // secret in the form body
	authPrivateKeyJWT     authMethod = "private_key_jwt"     // RFC 7523 assertion
	authTLSClientAuth     authMethod = "tls_client_auth"     // RFC 8705 mutual TLS
)

// Metadata is the authorization server metadata this client uses (OpenID
// Connect Discovery 1.0 and RFC 8414 names). [New] fetches it by discovery
// unless Config.Metadata is set.
type Metadata struct {
	Issuer                            string            `json:"issuer"`
	AuthorizationEndpoint             string            `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string            `json:"token_endpoint,omitempty"`
	JWKSURI                           string            `json:"jwks_uri,omitempty"`
	UserinfoEndpoint                  string            `json:"userinfo_endpoint,omitempty"`
	RevocationEndpoint                string            `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint             string            `json:"introspection_endpoint,omitempty"`
	DeviceAuthorizationEndpoint       string            `json:"device_authorization_endpoint,omitempty"`
	EndSessionEndpoint                string            `json:"end_session_endpoint,omitempty"`
	ResponseTypesSupported            []string          `json:"response_types_supported,omitempty"`
	GrantTypesSupported               []string          `json:"grant_types_supported,omitempty"`
	ScopesSupported                   []string          `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported     []string          `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string          `json:"token_endpoint_auth_methods_supported,omitempty"`
	IDTokenSigningAlgValuesSupported  []string          `json:"id_token_signing_alg_values_supported,omitempty"`
	AuthorizationResponseIssParameter bool              `json:"authorization_response_iss_parameter_supported,omitempty"`
	ResponseModesSupported            []string          `json:"response_modes_supported,omitempty"`
	MTLSEndpointAliases               map[string]string `json:"mtls_endpoint_aliases,omitempty"`
	// RFC 9126: where Start pushes authorization requests, and whether the
	// server accepts no others.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests,omitempty"`
	// RFC 9449: the proof algorithms the server accepts (nil: not said),
	// and whether it binds every access token of this client to a DPoP
	// key (the client registration's dpop_bound_access_tokens, which a
	// static Config.Metadata may carry). Either one makes New check that
	// ES256 is accepted; the second turns DPoP on.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokens         bool     `json:"dpop_bound_access_tokens,omitempty"`
	// RFC 7591 dynamic registration, and Client ID Metadata Documents
	// (a client id that is the https URL of the client's metadata).
	RegistrationEndpoint              string `json:"registration_endpoint,omitempty"`
	ClientIDMetadataDocumentSupported bool   `json:"client_id_metadata_document_supported,omitempty"`
}

// Config configures a [Client]. Zero values are documented per field; the
// zero Config is not usable (Issuer and ClientID are required).
type Config struct {
	// Issuer is the authorization server's issuer identifier, an https URL
	// compared exactly (no trailing-slash or case folding).
	Issuer string
	// ClientID is the client identifier registered at the server.
	ClientID string
	// ClientSecret authenticates a confidential client. The zero value means
	// no secret (a public client, or private_key_jwt / mTLS).
	ClientSecret secret.Value
	// AuthMethod is the one client authentication method to use, by its
	// registered name, as in the server's
	// token_endpoint_auth_methods_supported: "client_secret_basic",
	// "client_secret_post", "private_key_jwt", "tls_client_auth" or "none".
	// "" picks one: tls_client_auth when ClientCertificate is set,
	// private_key_jwt when PrivateKey or ClientAssertion is set, a secret
	// method when ClientSecret is set (client_secret_basic unless the
	// server lists only client_secret_post), none otherwise. Another name
	// is a configuration error, and a method the server does not list is
	// refused; both at New.
	AuthMethod string
	// PrivateKey signs private_key_jwt assertions (RSA, ECDSA or Ed25519).
	// nil means none.
	PrivateKey crypto.Signer
	// KeyID is the kid of PrivateKey, sent in the assertion header. "" means none.
	KeyID string
	// ClientAssertion supplies private_key_jwt client assertions made
	// elsewhere, instead of signing them with PrivateKey: a platform's
	// workload token file (assertion.File, read again when it rotates), or
	// a callback (assertion.Func). Each request asks it for an assertion
	// whose aud is Issuer and parses what it returns at once: one whose exp
	// has passed (by Now) is refused before it is sent (an error matching
	// assertion.ErrExpired), and so is one that is empty or not a JWT with
	// an exp (assertion.ErrSource). nil means none; it cannot be combined
	// with PrivateKey.
	ClientAssertion assertion.Source
	// ClientCertificate is the certificate for tls_client_auth. nil means none.
	ClientCertificate *tls.Certificate
	// RedirectURL is the registered redirect URI: https, or http on a
	// loopback IP literal. "" is allowed for clients that never run the
	// authorization-code flow (services, device grant).
	RedirectURL string
	// Scopes are requested in every flow; "openid" turns on OpenID Connect
	// (nonce and ID token required). nil requests no scope parameter.
	Scopes []string
	// AcceptWiderGrant allows a token whose granted scope exceeds the
	// requested one. The zero value refuses such a grant (S10).
	AcceptWiderGrant bool
	// Metadata configures endpoints statically and skips discovery. nil
	// means discovery (OIDC, then RFC 8414). Static metadata is checked
	// exactly like discovered metadata.
	Metadata *Metadata
	// HTTP configures the strict HTTP/TLS profile (root CAs, pins, a base
	// client, the timeout). The zero value uses the system roots.
	HTTP strictnet.Config
	// Now is the clock. nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew tolerated when checking token times. 0 means
	// 60 s; more than 5 minutes is refused.
	Leeway time.Duration
	// FlowLifetime bounds how long an authorization-code flow may take. 0 means 10 minutes.
	FlowLifetime time.Duration
	// DPoP binds the tokens of every flow to a key only this process
	// holds (RFC 9449): a new ES256 key per login (sent as dpop_jkt, kept
	// with the refresh token it binds), per device authorization and per
	// service token source, with a fresh proof on every token and API
	// request. false uses DPoP only when the server asks: metadata with
	// dpop_bound_access_tokens, or (client credentials) a token endpoint
	// answering use_dpop_nonce.
	DPoP bool
	// DPoPKey, when not nil, is the key that service token sources
	// (clientcredentials, jwtbearer, tokenexchange) bind their tokens to,
	// instead of a new in-memory key per source, and turns DPoP on for
	// them: for a workload whose platform keeps its key, or a tool that
	// hands the token to a caller who proves possession itself. It must be
	// ECDSA P-256 (ES256); another key is refused at New. User logins
	// always make their own key. nil means a new key per source.
	DPoPKey *ecdsa.PrivateKey
	// AllowBearerDowngrade accepts a Bearer token answered to a request
	// that carried a DPoP proof; the token is then used as a bearer token.
	// false refuses such an answer with an error matching ErrDPoP.
	AllowBearerDowngrade bool
}

// Client is a configured OAuth 2.0 / OpenID Connect client. It is safe for
// concurrent use and holds no per-user state.
type Client struct {
	cfg      Config
	md       Metadata
	http     *http.Client
	method   authMethod
	verifier *validate.IDTokenVerifier // nil when the server has no jwks_uri
	keys     oidc.KeySet               // from validate.NewJWKS
	nonces   *dpop.NonceStore          // DPoP-Nonce per server origin (RFC 9449 §8)
}

// New checks cfg, fetches and checks the server metadata (unless
// cfg.Metadata is set), and returns a Client. Errors match strictnet.ErrPolicy for
// policy refusals and ErrIssuerMismatch for a discovery document naming
// another issuer.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTP
	if cfg.ClientCertificate != nil {
		hc.Certificates = append(hc.Certificates, *cfg.ClientCertificate)
	}
	httpc, err := netrule.NewClient(hc, false)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, http: httpc, nonces: new(dpop.NonceStore)}
	if cfg.Metadata != nil {
		c.md = *cfg.Metadata
	} else if c.md, err = discover(ctx, httpc, cfg.Issuer); err != nil {
		return nil, err
	}
	if err := c.checkMetadata(); err != nil {
		return nil, err
	}
	if c.method, err = c.pickAuthMethod(); err != nil {
		return nil, err
	}
	if c.md.JWKSURI != "" {
		if err := c.setIDTokenVerifier(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkConfig refuses a Config that cannot work and returns it with its
// defaults filled in (Leeway, FlowLifetime, Now) and Scopes copied.
func checkConfig(cfg Config) (Config, error) {
	if cfg.ClientID == "" {
		return cfg, cfgerr.New("oauthclient", "ClientID is required")
	}
	if err := checkAuthMethod(cfg); err != nil {
		return cfg, err
	}
	if err := checkHTTPS("issuer", cfg.Issuer, cfg.HTTP.AllowLoopbackHTTP); err != nil {
		return cfg, err
	}
	if cfg.RedirectURL != "" {
		if err := checkRedirectURL(cfg.RedirectURL); err != nil {
			return cfg, err
		}
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return cfg, cfgerr.New("oauthclient", "Leeway must be between 0 and 5 minutes")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 60 * time.Second
	}
	if cfg.FlowLifetime <= 0 {
		cfg.FlowLifetime = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Scopes = slices.Clone(cfg.Scopes)
	if cfg.DPoPKey != nil && cfg.DPoPKey.Curve != elliptic.P256() {
		return cfg, cfgerr.New("oauthclient", "DPoPKey must be an ECDSA P-256 key (ES256)")
	}
	return cfg, nil
}

// setIDTokenVerifier builds the server's key set (from jwks_uri, through
// the strict client) and the ID token verifier that uses it.
func (c *Client) setIDTokenVerifier() error {
	var err error
	c.keys, err = validate.NewJWKS(validate.JWKSConfig{URL: c.md.JWKSURI, HTTPClient: c.http, Now: c.cfg.Now})
	if err != nil {
		return err
	}
	c.verifier, err = validate.NewIDTokenVerifier(validate.IDTokenConfig{
		Issuer:     c.cfg.Issuer,
		ClientID:   c.cfg.ClientID,
		Algorithms: c.md.IDTokenSigningAlgValuesSupported,
		KeySet:     c.keys,
		Leeway:     c.cfg.Leeway,
		Now:        c.cfg.Now,
	})
	return err
}

// Metadata returns a copy of the server metadata in use.
func (c *Client) Metadata() Metadata {
	m := c.md
	m.MTLSEndpointAliases = nil
	for k, v := range c.md.MTLSEndpointAliases {
		if m.MTLSEndpointAliases == nil {
			m.MTLSEndpointAliases = map[string]string{}
		}
		m.MTLSEndpointAliases[k] = v
	}
	return m
}

// HTTPClient returns a copy of the strict client the Client uses for
// server calls (same transport, roots, pins, wrapper and logger), for
// example for validate.NewIntrospector. Changing the copy's fields does not
// change the Client's calls.
func (c *Client) HTTPClient() *http.Client {
	cp := *c.http
	return &cp
}

// Config returns a copy of the configuration, with defaults applied and
// AuthMethod set to the one client authentication method in use (S17).
func (c *Client) Config() Config {
	cfg := c.cfg
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.AuthMethod = string(c.method)
	return cfg
}

// Discover fetches the authorization server metadata of issuer, in the
// order of the MCP authorization specification: RFC 8414 with the path
// inserted, then OpenID Connect discovery with the path inserted, then
// appended (for an issuer without a path: RFC 8414, then OpenID Connect).
// The first document found is used (a 404 moves to the next URL); its
// issuer must equal issuer exactly (ErrIssuerMismatch) and its endpoints
// must be https (or http on a loopback host with hc.AllowLoopbackHTTP).
// New runs the same discovery when Config.Metadata is nil. It is safe for
// concurrent use.
func Discover(ctx context.Context, issuer string, hc strictnet.Config) (*Metadata, error) {
	if err := checkHTTPS("issuer", issuer, hc.AllowLoopbackHTTP); err != nil {
		return nil, err
	}
	httpc, err := netrule.NewClient(hc, false)
	if err != nil {
		return nil, err
	}
	md, err := discover(ctx, httpc, issuer)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: Config{Issuer: issuer, HTTP: hc}, md: md}
	if err := c.checkMetadata(); err != nil {
		return nil, err
	}
	return &md, nil
}

// discoveryURLs are the metadata URLs of issuer, in the MCP
// specification's order (RFC 8414 §3.1 and OpenID Connect Discovery).
func discoveryURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	}
}

func discover(ctx context.Context, hc *http.Client, issuer string) (Metadata, error) {
	var lastErr error = &AuthError{Endpoint: "discovery", Problem: "no metadata document"}
	for _, u := range discoveryURLs(issuer) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return Metadata{}, err
		}
		req.Header.Set("Accept", "application/json")
		resp, body, err := do(ctx, hc, req, "discovery")
		if err != nil {
			return Metadata{}, err
		}
		if resp.StatusCode == http.StatusNotFound {
			lastErr = &AuthError{Endpoint: "discovery", StatusCode: resp.StatusCode, Problem: "no metadata document"}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return Metadata{}, &AuthError{Endpoint: "discovery", StatusCode: resp.StatusCode, Problem: "unexpected status"}
		}
		var md Metadata
		if err := json.Unmarshal(body, &md); err != nil {
			return Metadata{}, &AuthError{Endpoint: "discovery", StatusCode: resp.StatusCode, Problem: "body is not a JSON metadata document"}
		}
		return md, nil // checkMetadata compares the issuer exactly
	}
	return Metadata{}, lastErr
}

func (c *Client) checkMetadata() error {
	md := &c.md
	if md.Issuer != c.cfg.Issuer {
		return newIssuerMismatch("metadata", md.Issuer, c.cfg.Issuer)
	}
	for name, u := range map[string]string{
		"authorization_endpoint":                md.AuthorizationEndpoint,
		"token_endpoint":                        md.TokenEndpoint,
		"jwks_uri":                              md.JWKSURI,
		"userinfo_endpoint":                     md.UserinfoEndpoint,
		"revocation_endpoint":                   md.RevocationEndpoint,
		"introspection_endpoint":                md.IntrospectionEndpoint,
		"device_authorization_endpoint":         md.DeviceAuthorizationEndpoint,
		"end_session_endpoint":                  md.EndSessionEndpoint,
		"pushed_authorization_request_endpoint": md.PushedAuthorizationRequestEndpoint,
		"registration_endpoint":                 md.RegistrationEndpoint,
	} {
		if u == "" {
			continue
		}
		if err := checkHTTPS(name, u, c.cfg.HTTP.AllowLoopbackHTTP); err != nil {
			return err
		}
	}
	for name, u := range md.MTLSEndpointAliases {
		if err := checkHTTPS("mtls alias "+safetext.Clean(name, 64), u, c.cfg.HTTP.AllowLoopbackHTTP); err != nil {
			return err
		}
	}
	if md.TokenEndpoint == "" {
		return &AuthError{Endpoint: "discovery", Problem: "no token_endpoint"}
	}
	if (c.dpopOn() || c.cfg.DPoPKey != nil) && !dpop.AlgSupported(md.DPoPSigningAlgValuesSupported) {
		return policyf("server accepts no DPoP proof algorithm this client signs with (ES256)")
	}
	if c.cfg.RedirectURL != "" {
		if err := c.checkAuthCodeSupport(); err != nil {
			return err
		}
	}
	return nil
}

// checkAuthCodeSupport: S4 and S7 preconditions of the authorization-code flow.
func (c *Client) checkAuthCodeSupport() error {
	md := &c.md
	if md.AuthorizationEndpoint == "" {
		return &AuthError{Endpoint: "discovery", Problem: "no authorization_endpoint"}
	}
	if len(md.ResponseTypesSupported) > 0 && !slices.Contains(md.ResponseTypesSupported, "code") {
		return policyf("server does not support response_type=code")
	}
	if len(md.CodeChallengeMethodsSupported) > 0 && !slices.Contains(md.CodeChallengeMethodsSupported, "S256") {
		return policyf("server does not support PKCE S256")
	}
	return nil
}

func (c *Client) pickAuthMethod() (authMethod, error) {
	supported := c.md.TokenEndpointAuthMethodsSupported
	m := c.cfg.authMethod(supported)
	if len(supported) > 0 && !slices.Contains(supported, string(m)) {
		return "", policyf("server does not list client authentication method %s", m)
	}
	return m, nil
}

// authMethod is the configured method, or for "" the one the credentials
// call for (client_secret_post for a secret only when the server's list
// has it and not client_secret_basic).
func (cfg Config) authMethod(supported []string) authMethod {
	if cfg.AuthMethod != "" {
		return authMethod(cfg.AuthMethod)
	}
	switch {
	case cfg.ClientCertificate != nil:
		return authTLSClientAuth
	case cfg.PrivateKey != nil, cfg.ClientAssertion != nil:
		return authPrivateKeyJWT
	case cfg.ClientSecret.IsZero():
		return authNone
	case len(supported) > 0 && !slices.Contains(supported, string(authClientSecretBasic)) && slices.Contains(supported, string(authClientSecretPost)):
		return authClientSecretPost
	}
	return authClientSecretBasic
}

// checkAuthMethod refuses, before any request, a method that is not a
// known name or that cfg lacks the credentials for (S17).
func checkAuthMethod(cfg Config) error {
	switch m := cfg.authMethod(nil); m {
	case authNone:
	case authClientSecretBasic, authClientSecretPost:
		if cfg.ClientSecret.IsZero() {
			return cfgerr.New("oauthclient", "%s needs a ClientSecret", m)
		}
	case authPrivateKeyJWT:
		if cfg.PrivateKey == nil && cfg.ClientAssertion == nil {
			return cfgerr.New("oauthclient", "private_key_jwt needs a PrivateKey or a ClientAssertion")
		}
		if cfg.PrivateKey != nil && cfg.ClientAssertion != nil {
			return cfgerr.New("oauthclient", "PrivateKey and ClientAssertion are two sources of client assertions; set one")
		}
	case authTLSClientAuth:
		if cfg.ClientCertificate == nil {
			return cfgerr.New("oauthclient", "tls_client_auth needs a ClientCertificate")
		}
	default:
		return cfgerr.New("oauthclient", "unknown client authentication method %q (none, client_secret_basic, client_secret_post, private_key_jwt or tls_client_auth)", safetext.Clean(cfg.AuthMethod, 64))
	}
	return nil
}

// dpopOn reports whether flows of this client start with a DPoP key.
func (c *Client) dpopOn() bool { return c.cfg.DPoP || c.md.DPoPBoundAccessTokens }

func (c *Client) openID() bool { return slices.Contains(c.cfg.Scopes, "openid") }
