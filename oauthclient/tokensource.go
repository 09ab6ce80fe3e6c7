package oauthclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TokenSourceConfig configures [Client.TokenSource] (one user's engine)
// and [Client.UserPool] (an engine per user, each configured alike). Zero
// values are documented per field; a field applies to both unless its doc
// names one.
type TokenSourceConfig struct {
	// Store keeps the record (refresh token, subject, granted scopes, and
	// the DPoP key the refresh token is bound to, sealed with it): a
	// *keyring.Store (package tokenstore/keyring) for desktop tools, an
	// explicitly configured *tokenstore.EncryptedFile on headless machines,
	// a server-side vault (a *sqlstore.Store, package tokenstore/sqlstore,
	// for a web backend's UserPool). TokenSource: nil keeps the record in
	// memory only (OnRecordChange still sees every rotation). UserPool:
	// required, it holds every user's record.
	Store tokenstore.Store
	// Key is the store key, TokenSource only. "" means tokenstore.Key(issuer,
	// client id, subject of the login), which needs a login with a
	// subject. UserPool refuses a non-empty Key (an error matching
	// oauthsafe.ErrConfig): each user's key is given to its methods.
	Key string
	// Scopes narrows refresh requests to a subset of the granted scopes.
	// nil sends no scope parameter (RFC 6749 §6: as granted). A scope
	// outside the granted set is refused before any request, with an error
	// matching strictnet.ErrPolicy.
	Scopes []string
	// Margin is the refresh-ahead margin. 0 means 60 s.
	Margin time.Duration
	// OnRecordChange is called inside the refresh transaction with each
	// changed record (a rotated refresh token, also from a response
	// refused afterwards; new granted scopes), once it is in Store; for a
	// UserPool, with the records of every user. Its error fails the
	// refresh (the record written stays). nil means none.
	OnRecordChange func(ctx context.Context, rec *tokenstore.Record) error
	// Resource lists RFC 8707 resource indicators sent on every refresh,
	// narrowing the new access token's audience. nil sends the resources
	// the login was started with, as kept in the record (none for a login
	// without any: the server keeps the audience granted at login).
	Resource []string
	// ReuseGrace is the provider's refresh-token reuse grace period, if it
	// has one (some providers accept a spent refresh token again for a
	// short while after rotating it). A record left with an interrupted
	// refresh that began less than ReuseGrace ago is refreshed again with
	// its stored token; older, or with zero (the default, for providers
	// without a grace period), the source reports an error matching
	// tokenstore.ErrLoginRequired instead of sending it.
	ReuseGrace time.Duration
	// ResolveMarkersByIntrospection resolves a refresh interrupted before
	// its outcome was stored (a process killed between marking the record
	// and sending the request, a connection that failed on the way) by
	// asking the provider whether the stored refresh token is still active,
	// through its introspection endpoint (RFC 7662, authenticated as this
	// client), once the interrupted request has surely ended (its
	// deadline or its failure, plus 5 s), instead of reporting an error
	// matching tokenstore.ErrLoginRequired: active, the user keeps working;
	// inactive, that error. Until the request has surely ended, refreshes
	// fail with a *tokenstore.TemporaryError whose RetryAfter says when.
	// Ignored when the provider's metadata names no introspection
	// endpoint. False (the default) never asks.
	//
	// WARNING: turn it on only for a provider known to report a spent
	// (rotated) refresh token as inactive to the client it was issued to,
	// without counting the introspection as a use. A provider that
	// reported a spent token as active would have it sent again, and its
	// reuse detection would revoke the whole grant. Known to answer
	// correctly: this project's test provider (package oauthtest).
	ResolveMarkersByIntrospection bool
	// Logger, if not nil, gets one event per refresh (debug on success,
	// warn on failure) naming the store key's first 8 characters, the
	// outcome and the record generation; never a token or a key.
	Logger *slog.Logger
	// MaxUsers is for UserPool only (TokenSource ignores it): it bounds
	// how many users' engines, and so access tokens, the pool keeps in
	// memory; past it the least recently used is dropped and resumes from
	// Store on its next use. 0 means 10,000.
	MaxUsers int
}

// TokenSource returns the lifecycle engine for a user's tokens
// ([TokenSource]): the access token is served from memory (lock-free
// while valid) and refreshed ahead of expiry by a single flight; each
// refresh is one Store transaction, so a refresh token is sent once across
// every goroutine, process and replica sharing the Store. A rotated refresh
// token is written inside the transaction whatever the checks of the
// response decide; invalid_grant deletes the record and returns an error
// matching tokenstore.ErrLoginRequired; 5xx, timeouts and network errors keep it and
// return a *tokenstore.TemporaryError, backing off.
//
// Refresh requests carry no scope unless cfg.Scopes narrows them; the
// granted scopes of each response are recorded (see Source.Scopes). Every
// refreshed ID token must name the record's subject.
//
// With DPoP the record holds the key the tokens are bound to (S27): the
// login's key is written with its refresh token, every refresh is proven
// with the record's key, and a source resumed from the Store (a new
// process) refreshes with the stored key. A record without a key gets one
// when DPoP is on or the server answers use_dpop_nonce, stored in the same
// write as the refresh token the server binds to it.
//
// login is the result of a completed flow: its record is written to Store
// before TokenSource returns. login may be nil to resume from a record
// already in Store (cfg.Store and cfg.Key are then required); the first
// Token call refreshes, bound to the stored subject. The returned source is
// safe for concurrent use; the API clients of apiclient drop a token an
// API refused through it (its Rejected method).
func (c *Client) TokenSource(ctx context.Context, cfg TokenSourceConfig, login *Tokens) (*TokenSource, error) {
	key, err := c.sourceKey(cfg, login)
	if err != nil {
		return nil, err
	}
	sc := engine.SourceConfig{
		Store:      cfg.Store,
		Key:        key,
		Fetch:      c.refreshFetch(cfg.Scopes, cfg.Resource),
		Margin:     cfg.Margin,
		Now:        c.cfg.Now,
		ReuseGrace: cfg.ReuseGrace,
		Logger:     cfg.Logger,
	}
	if on := cfg.OnRecordChange; on != nil {
		sc.OnRecordChange = func(ctx context.Context, rec *engine.Record) error { return on(ctx, rec.Public()) }
	}
	if cfg.ResolveMarkersByIntrospection {
		sc.ResolveMarkersByIntrospection = c.refreshTokenActive()
	}
	var initialToken *oauth2.Token
	if login != nil {
		if sc.Record, err = c.saveLogin(ctx, cfg, key, login); err != nil {
			return nil, err
		}
		initialToken = login.OAuth2Token()
	}
	src, err := engine.NewSource(sc, initialToken)
	if err != nil {
		return nil, err
	}
	return newTokenSource(src), nil
}

// sourceKey is the record key of a source: cfg.Key, or with a Store and
// no Key, the key of the login's issuer, client and subject.
func (c *Client) sourceKey(cfg TokenSourceConfig, login *Tokens) (string, error) {
	key := cfg.Key
	if login == nil && (cfg.Store == nil || key == "") {
		return "", cfgerr.New("oauthclient", "TokenSource without a login needs a Store and a Key")
	}
	if key == "" && cfg.Store != nil {
		if login.Subject() == "" {
			return "", cfgerr.New("oauthclient", "TokenSource needs a Key or a login with a subject")
		}
		key = tokenstore.Key(c.cfg.Issuer, c.cfg.ClientID, login.Subject())
	}
	return key, nil
}

// saveLogin checks cfg.Scopes against the login's grant and returns the
// login's record (nil without a refresh token), saved under key when
// there is a Store.
func (c *Client) saveLogin(ctx context.Context, cfg TokenSourceConfig, key string, login *Tokens) (*engine.Record, error) {
	if cfg.Scopes != nil {
		if err := withinScopes(cfg.Scopes, login.scopes); err != nil {
			return nil, err
		}
	}
	rt := login.OAuth2Token().RefreshToken
	if rt == "" {
		return nil, nil
	}
	dk, err := engine.KeyOf(login.dpop)
	if err != nil {
		return nil, err
	}
	rec := &engine.Record{
		RefreshToken: rt, Subject: login.Subject(), Scopes: slices.Clone(login.scopes),
		Issuer: c.cfg.Issuer, ClientID: c.cfg.ClientID, DPoPKey: dk,
		Resources: slices.Clone(login.resources),
	}
	if cfg.Resource != nil {
		rec.Resources = slices.Clone(cfg.Resource)
	}
	if cfg.Store != nil {
		if err := engine.SaveRecord(ctx, cfg.Store, key, rec); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// fetchError classifies a token request's failure for the lifecycle engine,
// once: network failures, timeouts, and 5xx or 429 answers are marked
// engine.Transient (the engine backs off and retries with the same
// record); everything else (a refused client or scope, a malformed answer,
// a TLS or policy refusal, a refused ID token) is permanent, returned as it
// is, and never called temporary.
func fetchError(err error) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	switch {
	case errors.As(err, &ae):
		if ae.Temporary() {
			return engine.Transient(err)
		}
		return err
	case errors.Is(err, strictnet.ErrPolicy), errors.Is(err, strictnet.ErrResponseTooLarge), errors.Is(err, engine.ErrPanic):
		return err
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &rh) {
		return err
	}
	var ne net.Error
	var rq *requestError
	if errors.As(err, &rq) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return engine.Transient(err)
	}
	return err
}
