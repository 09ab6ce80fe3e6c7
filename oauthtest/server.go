// Package oauthtest runs a real OpenID Provider in process, for your own
// tests of code built on oauthsafe (as go-oidc's oidctest does for go-oidc),
// for oauthsafe's tests and for the `oauthsafe demo` command. It is its own
// module, so the library's consumers do not pull in the provider unless
// their tests import it.
//
// Where to start: a test calls Start with the Options of the provider it
// wants to resemble (rotation, reuse detection that revokes the grant,
// narrowing, DPoP, PAR, fault injection), builds its oauthclient.Client on
// srv.Issuer with srv.RootCAs(), and signs users in with srv.Login:
//
//	srv, err := oauthtest.Start(oauthtest.Options{RevokeFamilyOnReuse: true})
//	defer srv.Close()
//	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer,
//		ClientID: oauthtest.ClientNative, RedirectURL: oauthtest.NativeRedirectURI,
//		HTTP: strictnet.Config{RootCAs: srv.RootCAs()}})
//	pending, authURL, err := client.Start(ctx, oauthclient.StartOptions{})
//	callbackURL, err := srv.Login(ctx, authURL, oauthtest.UserAlice) // signs in, no browser
//
// It behaves the way real providers do, on demand: refresh tokens rotate,
// and a spent one presented again can revoke the whole grant
// (RevokeFamilyOnReuse); scopes can be withheld (WithheldScopes, granular
// consent); access and ID tokens can be short-lived; DPoP (with server
// nonces), PAR (optional or required), RFC 8707 resources (optionally
// required on refresh) and the device grant are there; every request is
// counted (Count, TokenRequests) and can be intercepted (SetInterceptor)
// to inject faults. It is for tests only: its CA and keys are made at
// Start and live in memory.
//
// The provider is github.com/zitadel/oidc/v3/pkg/op (OpenID certified) with
// an in-memory storage of this package, served over TLS on 127.0.0.1 with a
// certificate signed by a private CA created at Start. Only clients that are
// given Server.RootCAs (or CACertPEM) trust it.
//
// # What the server guarantees
//
//   - Only the authorization code flow exists (response_type=code, response
//     mode query), and every authorization request must carry a PKCE S256
//     code_challenge; anything else is refused before a login page is shown.
//   - Every authorization response, success or error, carries iss (RFC 9207)
//     and the metadata says authorization_response_iss_parameter_supported.
//   - Codes are single use and live one minute. Refresh tokens rotate: a
//     refresh token is consumed by its first use, and a second use fails with
//     invalid_grant (optionally revoking its whole family).
//   - Each client must authenticate with exactly its registered method
//     (client_secret_basic, client_secret_post, private_key_jwt or none);
//     another method is refused with invalid_client. A private_key_jwt
//     assertion's jti is accepted once.
//   - Every request is counted before it is handled (Count, TokenRequests),
//     so tests can prove that a request was, or was not, made.
//
// Discovery is at Issuer + "/.well-known/openid-configuration" and also at
// "/.well-known/oauth-authorization-server" (RFC 8414).
//
// # Logging
//
// This package logs only to Options.Logger. The zitadel op package logs
// some errors through slog.Default (to stderr), which this package cannot
// redirect without changing process-wide state.
package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Options configures Start. The zero value is a usable configuration.
// Start only reads it.
type Options struct {
	// AccessTokenLifetime is the lifetime of access tokens. Zero means 5
	// minutes. Tests use short lifetimes to force refreshes; the token
	// response's expires_in is rounded down to whole seconds.
	AccessTokenLifetime time.Duration
	// IDTokenLifetime is the lifetime of ID tokens. Zero means 1 hour.
	IDTokenLifetime time.Duration
	// RefreshTokenLifetime is the lifetime of each refresh token, counted
	// from its issue (rotation issues a new one). Zero means 1 hour.
	RefreshTokenLifetime time.Duration
	// RevokeFamilyOnReuse, when true, makes the reuse of a consumed refresh
	// token revoke every token of the same grant, the current refresh token
	// included (RFC 9700 §4.14.2). False means only the reused token fails.
	RevokeFamilyOnReuse bool
	// RedirectURIs are extra redirect URIs registered for the web clients,
	// ClientPrivateKeyJWT and ClientNative (for which the port of a loopback
	// URI is ignored). Nil means only WebRedirectURI and NativeRedirectURI.
	// More can be added later with Server.AddRedirectURI.
	RedirectURIs []string
	// DevicePollInterval is the polling interval announced by the device
	// authorization endpoint, in whole seconds. Zero means 1 second.
	DevicePollInterval time.Duration
	// WithheldScopes are scopes users never consent to: they are removed
	// from the granted set of every authorization request (and so from the
	// token response's scope, the tokens and refresh requests' allowed
	// set), as providers with granular consent do. Nil means every
	// requested scope is granted.
	WithheldScopes []string
	// RequireResource makes a refresh of a grant made for RFC 8707
	// resources name one of them, as providers that issue one audience
	// per access token do: a refresh without a resource is answered
	// invalid_request (invalid_target). False means a refresh without one
	// keeps the granted audience.
	RequireResource bool
	// DPoPNonce makes the token endpoint require a server nonce in DPoP
	// proofs (RFC 9449 §8): a proof without the current one is answered
	// 400 use_dpop_nonce with a DPoP-Nonce header. False means proofs
	// need no nonce.
	DPoPNonce bool
	// PAR advertises the pushed authorization request endpoint (RFC 9126)
	// in the metadata, so that clients push their requests. False leaves
	// it out (the endpoint still answers). RequirePAR implies PAR.
	PAR bool
	// RequirePAR sets require_pushed_authorization_requests (RFC 9126
	// §5): the authorization endpoint then refuses any request without a
	// request_uri. It can be switched later with Server.SetRequirePAR.
	RequirePAR bool
	// Logger receives one debug line per request and the server's errors.
	// Nil means nothing is logged.
	Logger *slog.Logger
}

// Server is a running authorization server. Its exported fields are set by
// Start and must not be changed; its methods are safe for concurrent use.
type Server struct {
	// Issuer is "https://127.0.0.1:PORT", with no trailing slash.
	Issuer string
	// CACertPEM is the PEM-encoded certificate of the CA that signed the
	// server's TLS certificate.
	CACertPEM []byte

	// AuthURL is the authorization endpoint.
	AuthURL string
	// TokenURL is the token endpoint.
	TokenURL string
	// JWKSURL is the JWK Set of the ID token (and JWT access token) keys.
	JWKSURL string
	// UserinfoURL is the OIDC userinfo endpoint.
	UserinfoURL string
	// RevocationURL is the RFC 7009 revocation endpoint.
	RevocationURL string
	// IntrospectionURL is the RFC 7662 introspection endpoint.
	IntrospectionURL string
	// DeviceURL is the RFC 8628 device authorization endpoint.
	DeviceURL string
	// DeviceVerificationURL is the page where a user enters a user code.
	DeviceVerificationURL string

	// ClientKey is the private key of ClientPrivateKeyJWT; tests sign client
	// assertions with it (RS256).
	ClientKey *rsa.PrivateKey
	// ClientKeyID is the key id ("kid") registered for ClientKey.
	ClientKeyID string

	ts       *httptest.Server
	storage  *storage
	certs    *certs
	logger   *slog.Logger
	browser  *http.Client
	jwtCheck *op.JWTProfileVerifier
	// metadataClient fetches client metadata documents (registration.go).
	metadataClient *http.Client

	counters    counters
	hook        atomic.Pointer[func(*http.Request)]
	interceptor atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]

	jtiMu sync.Mutex
	jtis  map[string]time.Time

	front front // DPoP, PAR, resource indicators (frontchannel.go)

	machine machine // JWT-bearer and token exchange trust (machine.go)
}

// Start creates the CA, the keys and the provider, and starts serving on
// 127.0.0.1 with an ephemeral port. Call Close when done.
func Start(opts Options) (*Server, error) {
	if opts.AccessTokenLifetime < 0 || opts.RefreshTokenLifetime < 0 || opts.DevicePollInterval < 0 {
		return nil, errors.New("oauthtest: negative duration in Options")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// The three keys are independent; generate them concurrently.
	var (
		wg                   sync.WaitGroup
		sigKey, cliKey       *rsa.PrivateKey
		sigErr, cliErr, cErr error
		cs                   *certs
	)
	wg.Go(func() { sigKey, sigErr = rsa.GenerateKey(rand.Reader, 2048) })
	wg.Go(func() { cliKey, cliErr = rsa.GenerateKey(rand.Reader, 2048) })
	wg.Go(func() { cs, cErr = newCerts(time.Now()) })
	wg.Wait()
	if err := errors.Join(sigErr, cliErr, cErr); err != nil {
		return nil, fmt.Errorf("oauthtest: generate keys: %w", err)
	}

	s := &Server{
		CACertPEM:   cs.caPEM,
		ClientKey:   cliKey,
		ClientKeyID: "client-key-" + randomToken(6),
		certs:       cs,
		logger:      logger,
		jtis:        make(map[string]time.Time),
	}
	s.front.dpop = NewDPoPVerifier(opts.DPoPNonce)
	s.front.requirePAR = opts.RequirePAR
	s.front.advertisePAR = opts.PAR || opts.RequirePAR
	s.front.par = make(map[string]parEntry)
	s.storage = &storage{
		now:             time.Now,
		accessLifetime:  orDefault(opts.AccessTokenLifetime, 5*time.Minute),
		refreshLifetime: orDefault(opts.RefreshTokenLifetime, time.Hour),
		revokeFamily:    opts.RevokeFamilyOnReuse,
		requireResource: opts.RequireResource,
		withheld:        slices.Clone(opts.WithheldScopes),
		clients:         newClients(opts.RedirectURIs, orDefault(opts.IDTokenLifetime, time.Hour)),
		users:           newUsers(),
		clientKeys: map[string]map[string]*rsa.PublicKey{
			ClientPrivateKeyJWT: {s.ClientKeyID: &cliKey.PublicKey},
		},
		authRequests:  make(map[string]*authRequest),
		codes:         make(map[string]codeEntry),
		accessTokens:  make(map[string]*accessToken),
		refreshTokens: make(map[string]*refreshToken),
		refreshByID:   make(map[string]string),
		usedRefresh:   make(map[string]string),
		devices:       make(map[string]*deviceEntry),
		userCodes:     make(map[string]string),
		keys:          []*signingKey{{id: "sig-" + randomToken(6), key: sigKey}},
	}

	s.ts = httptest.NewUnstartedServer(nil)
	s.ts.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise from untrusting clients
	if opts.Logger != nil {
		s.ts.Config.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	}
	s.Issuer = "https://" + s.ts.Listener.Addr().String()

	provider, err := s.newProvider(opts)
	if err != nil {
		s.ts.Listener.Close()
		return nil, err
	}
	eps := provider.Endpoints()
	s.AuthURL = eps.Authorization.Absolute(s.Issuer)
	s.TokenURL = eps.Token.Absolute(s.Issuer)
	s.JWKSURL = eps.JwksURI.Absolute(s.Issuer)
	s.UserinfoURL = eps.Userinfo.Absolute(s.Issuer)
	s.RevocationURL = eps.Revocation.Absolute(s.Issuer)
	s.IntrospectionURL = eps.Introspection.Absolute(s.Issuer)
	s.DeviceURL = eps.DeviceAuthorization.Absolute(s.Issuer)
	s.DeviceVerificationURL = s.Issuer + devicePath
	s.jwtCheck = op.NewJWTProfileVerifier(s.storage, s.Issuer, time.Hour, time.Second)

	s.ts.Config.Handler = s.handler(provider)
	s.ts.TLS = &tls.Config{
		Certificates: []tls.Certificate{cs.leaf},
		MinVersion:   tls.VersionTLS12,
	}
	s.ts.StartTLS()
	s.browser = s.newBrowser()
	s.metadataClient = s.HTTPClient()
	s.storage.dynamic.fetch = s.fetchClientMetadata
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (s *Server) newProvider(opts Options) (*op.Provider, error) {
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("oauthtest: token key: %w", err)
	}
	poll := orDefault(opts.DevicePollInterval, time.Second).Truncate(time.Second)
	if poll < time.Second {
		poll = time.Second
	}
	cfg := &op.Config{
		CryptoKey:               cryptoKey,
		CryptoKeyId:             "token-key",
		CodeMethodS256:          true,
		AuthMethodPost:          true,
		AuthMethodPrivateKeyJWT: true,
		GrantTypeRefreshToken:   true,
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess,
			ScopeAPIRead, ScopeAPIWrite,
		},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: poll,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}
	p, err := op.NewProvider(cfg, s.storage, op.StaticIssuer(s.Issuer))
	if err != nil {
		return nil, fmt.Errorf("oauthtest: create provider: %w", err)
	}
	return p, nil
}

// Close stops the server and waits for its in-flight requests.
func (s *Server) Close() {
	s.browser.CloseIdleConnections()
	s.ts.Close()
}

// RootCAs returns a new pool holding only the server's CA certificate.
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM)
	return pool
}

// HTTPClient returns a new client, with its own Transport, that trusts only
// the server's CA, with TLS 1.2 as minimum, a 10 s timeout and the default
// redirect policy. The caller owns it and may change it.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: s.RootCAs(), MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: false,
		},
	}
}

// AddRedirectURI registers one more redirect URI for the web clients,
// ClientPrivateKeyJWT and ClientNative, e.g. the address of a callback server
// a test started after Start.
func (s *Server) AddRedirectURI(uri string) {
	for _, id := range []string{ClientWeb, ClientWebPost, ClientWebJWTAccess, ClientPrivateKeyJWT, ClientNative} {
		s.storage.clients[id].addRedirectURI(uri)
	}
}

// RotateKey generates a new RSA signing key and signs every later token
// with it, while the earlier keys stay published in the JWK Set. It returns
// the new key id.
func (s *Server) RotateKey() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("oauthtest: generate signing key: %w", err)
	}
	k := &signingKey{id: "sig-" + randomToken(6), key: key}
	s.storage.addSigningKey(k)
	return k.id, nil
}

// SigningKeyID returns the key id that signs new tokens.
func (s *Server) SigningKeyID() string { return s.storage.currentKeyID() }
