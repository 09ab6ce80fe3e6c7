package resourceclient

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file holds the ready-made Grants of machine clients: a service
// acting as itself (client credentials), a workload trading a platform's
// assertion (the JWT-bearer grant), and enterprise-managed authorization
// (an ID-JAG from the company's identity provider, redeemed with the
// JWT-bearer grant). Each is configuration only; the resource-first
// client supplies what discovery found.

// ErrGrantIssuer: a Grant's client is registered at another issuer than
// the one the resource names. Nothing is sent to the named issuer (S28:
// a client credential is used only at its own issuer). It is a
// *strictnet.PolicyError.
var ErrGrantIssuer error = &strictnet.PolicyError{Field: "Issuer", Reason: "resourceclient: the grant's client belongs to another issuer than the one the resource names"}

// ClientCredentials is a [Grant] for a service acting as itself: the
// client credentials grant (RFC 6749 §4.4) at Issuer, authenticating with
// a client secret (client_secret_basic or client_secret_post) or a
// private key (private_key_jwt, assertions with aud the issuer). Tokens
// are requested with the resource (RFC 8707) and the scopes the resource
// asks for, kept in memory only (package clientcredentials). A plain
// value; its secret and key redact themselves when printed.
//
// DPoP is on when the authorization server's metadata lists a proof
// algorithm (dpop_signing_alg_values_supported with ES256) unless
// NoDPoP, and always when the resource takes DPoP-bound tokens only
// (Server.DPoP).
type ClientCredentials struct {
	// Issuer is the authorization server the client is registered at,
	// compared exactly with the issuer the resource names: at any other,
	// TokenSource fails with ErrGrantIssuer before anything is sent.
	// Required.
	Issuer string
	// ClientID is the registered client id. Required.
	ClientID string
	// ClientSecret is the client secret; zero means none (then PrivateKey).
	ClientSecret secret.Value
	// PrivateKey signs private_key_jwt client assertions. nil means none.
	PrivateKey crypto.Signer
	// KeyID is the kid of PrivateKey. "" means none.
	KeyID string
	// AuthMethod is the token endpoint authentication method. "" picks
	// one as oauthclient.Config.AuthMethod does (private_key_jwt with a
	// key, else client_secret_basic unless the server lists only
	// client_secret_post).
	AuthMethod oauthclient.AuthMethod
	// NoDPoP turns off the DPoP used because the server's metadata lists
	// a proof algorithm (oauthclient.GrantOptions.NoDPoP); it does not
	// for a resource that takes DPoP-bound tokens only.
	NoDPoP bool
}

// TokenSource implements [Grant]: the client credentials token source of
// the client at s.Issuer, for s.Resource and s.Scopes.
func (g ClientCredentials) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	oc, err := grantClient(ctx, s, g.Issuer, oauthclient.Config{
		ClientID: g.ClientID, ClientSecret: g.ClientSecret, PrivateKey: g.PrivateKey, KeyID: g.KeyID, AuthMethod: g.AuthMethod,
	})
	if err != nil {
		return nil, err
	}
	return oc.ClientCredentials(oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.NoDPoP}), nil
}

// JWTBearer is a [Grant] for a workload that holds no secret: the
// JWT-bearer grant (RFC 7523 §2.1) at Issuer with the assertion a
// platform gives it (assertion.File for a projected token, assertion.Func
// for a platform API), taken for each token request and refused before
// it is sent once expired. A refusal is returned, not retried nor
// answered with another grant (package jwtbearer). Tokens are requested
// with the resource and the resource's scopes, kept in memory only; DPoP
// as for [ClientCredentials]. A plain value; its secret redacts itself.
type JWTBearer struct {
	// Issuer is the authorization server that accepts the assertion,
	// compared exactly with the issuer the resource names (ErrGrantIssuer
	// otherwise, before anything is sent). Required.
	Issuer string
	// ClientID is the client id at Issuer. Required.
	ClientID string
	// ClientSecret authenticates the client when the server wants it;
	// zero means none (the client_id is sent, auth method none).
	ClientSecret secret.Value
	// AuthMethod: as ClientCredentials.AuthMethod.
	AuthMethod oauthclient.AuthMethod
	// Assertion gives the assertion of each token request (aud Issuer).
	// Required.
	Assertion assertion.Source
	// NoDPoP: as ClientCredentials.NoDPoP.
	NoDPoP bool
}

// TokenSource implements [Grant]: the JWT-bearer token source of the
// client at s.Issuer, for s.Resource and s.Scopes.
func (g JWTBearer) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	oc, err := grantClient(ctx, s, g.Issuer, oauthclient.Config{ClientID: g.ClientID, ClientSecret: g.ClientSecret, AuthMethod: g.AuthMethod})
	if err != nil {
		return nil, err
	}
	return oc.JWTBearer(g.Assertion, oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.NoDPoP}), nil
}

// EnterpriseManaged is a [Grant] for enterprise-managed authorization:
// the user's token at the company's identity provider (SubjectToken, an
// ID token by default) is exchanged there (RFC 8693) for an identity
// assertion authorization grant (ID-JAG) whose audience is the resource's
// authorization server and whose resource is the resource; the ID-JAG is
// redeemed with the JWT-bearer grant at Issuer, by the client registered
// there (oauthclient.IDJAG, jwtbearer). No browser opens. DPoP at
// Issuer as for [ClientCredentials]. A plain value; its secret and
// subject token redact themselves.
type EnterpriseManaged struct {
	// Issuer is the resource's authorization server, compared exactly with
	// the issuer the resource names (ErrGrantIssuer otherwise, before
	// anything is sent, also to the identity provider). Required.
	Issuer string
	// ClientID is the client id at Issuer. Required.
	ClientID string
	// ClientSecret authenticates the client at Issuer; zero means none.
	ClientSecret secret.Value
	// AuthMethod: as ClientCredentials.AuthMethod.
	AuthMethod oauthclient.AuthMethod
	// IdP is the client registered at the identity provider. Required.
	IdP *oauthclient.Client
	// SubjectToken gives the user's token at the identity provider.
	// Required.
	SubjectToken oauth2.TokenSource
	// SubjectTokenType is its RFC 8693 type; "" means
	// oauthclient.TokenTypeIDToken.
	SubjectTokenType string
	// NoDPoP: as ClientCredentials.NoDPoP.
	NoDPoP bool
}

// TokenSource implements [Grant]: ID-JAGs for s.Issuer and s.Resource
// from the identity provider, redeemed at s.Issuer.
func (g EnterpriseManaged) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	oc, err := grantClient(ctx, s, g.Issuer, oauthclient.Config{ClientID: g.ClientID, ClientSecret: g.ClientSecret, AuthMethod: g.AuthMethod})
	if err != nil {
		return nil, err
	}
	idjag := oauthclient.IDJAG{IdP: g.IdP, SubjectToken: g.SubjectToken, SubjectTokenType: g.SubjectTokenType, Resource: s.Resource, Scopes: s.Scopes}
	return oc.JWTBearer(idjag, oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.NoDPoP}), nil
}

// grantClient is the oauthclient.Client of a Grant at s.Issuer, which
// must be issuer (S28), with the metadata discovery found (no second
// discovery) and DPoP on when the resource takes DPoP-bound tokens only.
func grantClient(ctx context.Context, s Server, issuer string, cfg oauthclient.Config) (*oauthclient.Client, error) {
	if issuer == "" || issuer != s.Issuer {
		return nil, fmt.Errorf("%w (configured for %q, the resource names %q)", ErrGrantIssuer, safetext.Clean(issuer, 200), safetext.Clean(s.Issuer, 200))
	}
	md := s.Metadata
	cfg.Issuer, cfg.Metadata, cfg.HTTP, cfg.DPoP = s.Issuer, &md, s.HTTP, s.DPoP
	return oauthclient.New(ctx, cfg)
}

// The Grants print their issuer, client id and what is configured, never
// a secret, a key, an assertion or a subject token (S12, S16, S31).

func (g ClientCredentials) redact() string {
	return fmt.Sprintf("resourceclient.ClientCredentials{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s, private_key=%s, no_dpop=%t}",
		safetext.Clean(g.Issuer, 200), safetext.Clean(g.ClientID, 200), safetext.Clean(string(g.AuthMethod), 40),
		safetext.Present(!g.ClientSecret.IsZero()), safetext.Present(g.PrivateKey != nil), g.NoDPoP)
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g ClientCredentials) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the private key's
// own fields are never encoded.
func (g ClientCredentials) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }

func (g JWTBearer) redact() string {
	return fmt.Sprintf("resourceclient.JWTBearer{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s, assertion=%s, no_dpop=%t}",
		safetext.Clean(g.Issuer, 200), safetext.Clean(g.ClientID, 200), safetext.Clean(string(g.AuthMethod), 40),
		safetext.Present(!g.ClientSecret.IsZero()), safetext.Present(g.Assertion != nil), g.NoDPoP)
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g JWTBearer) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the sources'
// own fields are never encoded.
func (g JWTBearer) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }

func (g EnterpriseManaged) redact() string {
	return fmt.Sprintf("resourceclient.EnterpriseManaged{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s, idp=%s, subject_token=%s, subject_token_type=%s, no_dpop=%t}",
		safetext.Clean(g.Issuer, 200), safetext.Clean(g.ClientID, 200), safetext.Clean(string(g.AuthMethod), 40),
		safetext.Present(!g.ClientSecret.IsZero()), safetext.Present(g.IdP != nil), safetext.Present(g.SubjectToken != nil), safetext.Clean(g.SubjectTokenType, 100), g.NoDPoP)
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g EnterpriseManaged) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the sources'
// own fields are never encoded.
func (g EnterpriseManaged) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }
