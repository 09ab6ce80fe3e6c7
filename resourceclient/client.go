package resourceclient

import (
	"context"
	"crypto"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// Config configures a [Client]. Resource is required; every other field's
// zero value is documented. New reads it once; it is a plain value.
type Config struct {
	// Resource is the URL of the resource (an MCP server's endpoint, an
	// API's base URL): https, or http on a loopback host with
	// HTTP.AllowLoopbackHTTP. Requests go only to URLs within it.
	Resource string
	// Store keeps the refresh token of each (resource, issuer, client) and
	// the dynamic registrations per issuer: a *keyring.Store, an
	// *tokenstore.EncryptedFile, a vault. nil keeps them in memory only
	// (a new login and registration each run).
	Store tokenstore.Store
	// Credentials are a pre-registered client, used only at the issuer
	// they name. nil means none.
	Credentials *Credentials
	// ClientIDMetadataURL is the https URL of this client's Client ID
	// Metadata Document, used as the client id at servers that advertise
	// client_id_metadata_document_supported. "" means none.
	ClientIDMetadataURL string
	// ClientName is the client_name sent in dynamic registrations. ""
	// means "oauthsafe".
	ClientName string
	// RedirectURL is the redirect URI registered and sent: https, or http
	// on a loopback IP literal. "" means the loopback receiver's
	// http://127.0.0.1/callback (RFC 8252 §7.3: the port is chosen at each
	// login and the server ignores it for loopback URIs). With Browser
	// set, it is required.
	RedirectURL string
	// Browser is the browser step: it gets the authorization URL and
	// returns the redirect URL the browser landed on (with code, state and
	// iss), for a headless caller or a test. nil means the loopback
	// receiver (Loopback).
	Browser func(ctx context.Context, authURL string) (*url.URL, error)
	// Loopback configures the loopback receiver used when Browser is nil
	// (Open, Out, Listen, Timeout, Path); its Client and StartOptions are
	// set here for each login.
	Loopback callback.Loopback
	// ConfirmIssuer is called with the issuer a resource names, before
	// anything is sent to it (registration, browser). An error stops the
	// login and is returned. nil means every issuer the resource names
	// (within AllowedIssuers) is accepted.
	ConfirmIssuer func(ctx context.Context, issuer string) error
	// AllowedIssuers, when not empty, are the only issuers accepted,
	// compared exactly (apiclient.ErrIssuerNotAllowed otherwise).
	AllowedIssuers []string
	// ScopeCeiling, when not nil, bounds every scope request: a scope the
	// resource asks for outside it is not requested. nil means no ceiling.
	ScopeCeiling []string
	// WantRefreshToken asks for offline_access when the authorization
	// server lists it in scopes_supported.
	WantRefreshToken bool
	// MaxStepUps bounds the re-authorizations for one request answered 403
	// insufficient_scope. 0 means 2; negative means none.
	MaxStepUps int
	// Grant, when set, gets tokens without a browser (machine identities:
	// client credentials, JWT bearer, token exchange) once the
	// authorization server is known: one of ClientCredentials, JWTBearer
	// and EnterpriseManaged, or the caller's own. nil means the
	// authorization code flow.
	Grant Grant
	// HTTP configures the strict client of every call: discovery,
	// registration, token requests and the resource itself. With
	// AllowLoopbackHTTP, the Client logs strictnet's warning once (to
	// HTTP.Logger, else slog.Default), however many strict clients it builds.
	HTTP strictnet.Config
	// Logger receives one event per login, registration and step-up
	// (never a token, code or secret). nil means none.
	Logger *slog.Logger
	// Now is the clock. nil means time.Now.
	Now func() time.Time
}

// Credentials are a pre-registered client (S28: used only at Issuer):
// the browser login's client in Config.Credentials, and the client of a
// ready-made Grant ([ClientCredentials], [JWTBearer],
// [EnterpriseManaged]). A plain value; printed or encoded as JSON it
// shows which secret and key are set, never them.
type Credentials struct {
	// Issuer is the authorization server the client is registered at,
	// compared exactly with the issuer a resource names. Required.
	Issuer string
	// ClientID is the registered client id. Required.
	ClientID string
	// ClientSecret is the secret of a confidential client; zero means a
	// public client (or one that signs with PrivateKey).
	ClientSecret secret.Value
	// AuthMethod is the token endpoint authentication method, by its
	// registered name as oauthclient.Config.AuthMethod (an unknown one is
	// refused with ErrConfig). "" picks
	// one as oauthclient.Config.AuthMethod does (private_key_jwt with
	// PrivateKey, else client_secret_basic unless the server lists only
	// client_secret_post).
	AuthMethod string
	// PrivateKey signs private_key_jwt client assertions (aud the
	// issuer), in the browser login's token requests as in a Grant's.
	// nil means none.
	PrivateKey crypto.Signer
	// KeyID is the kid of PrivateKey. "" means none.
	KeyID string
	// NoDPoP turns off the DPoP a Grant built on these Credentials uses
	// because the authorization server's metadata lists a proof algorithm
	// (see oauthclient.GrantOptions.NoDPoP); it does not for a
	// resource that takes DPoP-bound tokens only. The browser login does
	// not read it (its DPoP follows oauthclient.Config.DPoP: on when the
	// resource or the server requires it).
	NoDPoP bool
}

// Server is what discovery found, handed to a [Grant]. A plain value.
type Server struct {
	// Resource is the resource identifier to request tokens for (the
	// resource metadata's resource, verbatim).
	Resource string
	// Issuer is the authorization server's issuer.
	Issuer string
	// Metadata is the authorization server's metadata, checked.
	Metadata oauthclient.Metadata
	// Scopes are the scopes to request (challenge, else scopes_supported,
	// within ScopeCeiling).
	Scopes []string
	// HTTP is Config.HTTP.
	HTTP strictnet.Config
	// DPoP reports a resource that takes DPoP-bound tokens only (its
	// metadata's dpop_bound_access_tokens_required, or a 401 challenging
	// with the DPoP scheme and not Bearer): the Grant's tokens must be
	// DPoP-bound.
	DPoP bool
}

// Grant gets tokens for a resource without a browser (client
// credentials, JWT bearer, token exchange). TokenSource is called once
// the authorization server is known, and again when the resource moves
// to another one or asks for more scopes.
type Grant interface {
	// TokenSource returns the source of the resource's tokens at s.Issuer,
	// with s.Resource as the resource indicator. An error stops the
	// request and is returned; it is not retried with another grant.
	TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error)
}

// Client is a resource-first client. It is safe for concurrent use.
type Client struct {
	cfg        Config
	res        *url.URL          // Config.Resource, parsed
	plain      http.RoundTripper // the strict API transport, for requests without a token
	store      tokenstore.Store
	maxStepUps int

	mu   sync.Mutex // serializes authorizations
	sess atomic.Pointer[session]
}

// New checks cfg and returns a Client. It does no I/O: the chain runs at
// the first request the resource answers with 401, or at Login or Token.
// A Resource that is not https (or http on a loopback host with
// HTTP.AllowLoopbackHTTP), or that has a query or fragment, is refused
// with strictnet.ErrPolicy; other configuration errors match ErrConfig.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if p := netrule.HTTPSProblem(cfg.Resource, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return nil, &strictnet.PolicyError{Field: "Resource", Reason: "resourceclient: Resource " + p}
	}
	res, err := url.Parse(cfg.Resource)
	if err != nil || res.RawQuery != "" || res.ForceQuery {
		return nil, &strictnet.PolicyError{Field: "Resource", Reason: "resourceclient: Resource must not have a query"}
	}
	if cr := cfg.Credentials; cr != nil {
		if cr.ClientID == "" {
			return nil, cfgerr.New("resourceclient", "Credentials.ClientID is required")
		}
		if p := netrule.HTTPSProblem(cr.Issuer, cfg.HTTP.AllowLoopbackHTTP); p != "" {
			return nil, &strictnet.PolicyError{Field: "Credentials.Issuer", Reason: "resourceclient: Credentials.Issuer " + p}
		}
	}
	if cfg.ClientIDMetadataURL != "" {
		if p := netrule.HTTPSProblem(cfg.ClientIDMetadataURL, false); p != "" {
			return nil, &strictnet.PolicyError{Field: "ClientIDMetadataURL", Reason: "resourceclient: ClientIDMetadataURL " + p}
		}
	}
	if cfg.Browser != nil && cfg.RedirectURL == "" {
		return nil, cfgerr.New("resourceclient", "RedirectURL is required with Browser")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "oauthsafe"
	}
	if cfg.HTTP.AllowLoopbackHTTP {
		// One warning for the whole Client, not one per strict client.
		cfg.HTTP.Logger = loopbackLogger(cfg.HTTP.Logger)
	}
	cfg.ScopeCeiling = slices.Clone(cfg.ScopeCeiling)
	cfg.AllowedIssuers = slices.Clone(cfg.AllowedIssuers)
	hc, err := netrule.NewClient(cfg.HTTP, true)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, res: res, plain: hc.Transport, store: cfg.Store, maxStepUps: cfg.MaxStepUps}
	if c.store == nil {
		c.store = new(tokenstore.Memory)
	}
	switch {
	case c.maxStepUps == 0:
		c.maxStepUps = 2
	case c.maxStepUps < 0:
		c.maxStepUps = 0
	}
	return c, nil
}

// HTTPClient returns an *http.Client for the resource: requests go only
// within it, with its token, and redirects are not followed (a 3xx is
// returned as it is). Its Transport is the RoundTripper to give a caller
// that builds its own client: see the package doc for what it does on
// 401 and 403. Safe for concurrent use.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: (*transport)(c), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Login runs the chain now (a CLI's login command): it asks the resource
// for its challenge without a token, discovers, registers and runs a new
// authorization in the browser, replacing any stored token of the
// resource. Safe for concurrent use.
func (c *Client) Login(ctx context.Context) (*Session, error) {
	resp, err := c.probe(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.authorize(ctx, resp, authForce, nil)
	if err != nil {
		return nil, err
	}
	return s.public(), nil
}

// Token returns a valid access token for the resource: from memory, from
// the store (refreshed by the token engine), or, when there is none, a
// new authorization. Safe for concurrent use.
func (c *Client) Token(ctx context.Context) (*oauth2.Token, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := tokenOf(ctx, s.src)
	if err != nil && c.refused(ctx, s, err) {
		resp, perr := c.probe(ctx)
		if perr != nil {
			return nil, perr
		}
		if s, err = c.authorize(ctx, resp, authAuto, s); err != nil {
			return nil, err
		}
		return tokenOf(ctx, s.src)
	}
	return tok, err
}

// Session returns the current authorization of the resource, resuming it
// from the store (discovery, no browser) when there is none in memory.
// Errors match tokenstore.ErrLoginRequired when nothing is stored.
func (c *Client) Session(ctx context.Context) (*Session, error) {
	if s := c.sess.Load(); s != nil {
		return s.public(), nil
	}
	resp, err := c.probe(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.authorize(ctx, resp, authResumeOnly, nil)
	if err != nil {
		return nil, err
	}
	return s.public(), nil
}

// Session describes the resource's current authorization. It holds no
// token; it is a plain value.
type Session struct {
	Resource string   // the resource identifier tokens are requested for
	Issuer   string   // the authorization server
	ClientID string   // the client id in use there
	Scopes   []string // the scopes granted
	StoreKey string   // storekey.Resource(Resource, Issuer, ClientID)
}

// Logout revokes the resource's refresh token at its authorization server
// (RFC 7009) when it has a revocation endpoint, and deletes the stored
// token. The dynamic registration is kept. Errors match
// tokenstore.ErrRevocationFailed when the server did not confirm (the
// stored token is deleted anyway).
func (c *Client) Logout(ctx context.Context) error {
	s, err := c.resumed(ctx)
	if err != nil {
		return err
	}
	c.sess.CompareAndSwap(s, nil)
	if s.oc == nil {
		return nil
	}
	lc := tokenstore.LogoutConfig{Store: c.store, Key: s.key}
	if s.f.md.RevocationEndpoint != "" {
		lc.Revoke = s.revoke
	}
	return tokenstore.Logout(ctx, lc)
}

// tokenOf asks src for a token, honouring ctx when src can.
func tokenOf(ctx context.Context, src oauth2.TokenSource) (*oauth2.Token, error) {
	if cs, ok := src.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		return cs.TokenContext(ctx)
	}
	return src.Token()
}
