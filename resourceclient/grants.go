package resourceclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file holds the ready-made Grants of machine clients: a service
// acting as itself (client credentials), a workload trading a platform's
// assertion (the JWT-bearer grant), and enterprise-managed authorization
// (an ID-JAG from the company's identity provider, redeemed with the
// JWT-bearer grant). Each is built from the [Credentials] of the client
// at the issuer, and is configuration only; the resource-first client
// supplies what discovery found.

// ErrGrantIssuer: a Grant's client is registered at another issuer than
// the one the resource names. Nothing is sent to the named issuer (S28:
// a client credential is used only at its own issuer). It is a
// *strictnet.PolicyError.
var ErrGrantIssuer error = &strictnet.PolicyError{Field: "Issuer", Reason: "resourceclient: the grant's client belongs to another issuer than the one the resource names"}

// ClientCredentials returns a [Grant] for a service acting as itself: the
// client credentials grant (RFC 6749 §4.4) at cr.Issuer, authenticating
// with cr.ClientSecret (client_secret_basic or client_secret_post) or
// cr.PrivateKey (private_key_jwt, assertions with aud the issuer). Tokens
// are requested with the resource (RFC 8707) and the scopes the resource
// asks for, kept in memory only (oauthclient.Client.ClientCredentials).
//
// cr.Issuer is compared exactly with the issuer the resource names: at
// any other (or with none), TokenSource fails with [ErrGrantIssuer]
// before anything is sent. cr.ClientID is required (oauthsafe.ErrConfig
// from TokenSource, before anything is sent). DPoP is on when the
// authorization server's metadata lists a proof algorithm
// (dpop_signing_alg_values_supported with ES256) unless cr.NoDPoP, and
// always when the resource takes DPoP-bound tokens only (Server.DPoP).
//
// The Grant is a plain value, safe for concurrent use; printed or
// encoded as JSON it shows its issuer, client id and which credentials
// are set, never a secret or a key.
func ClientCredentials(cr Credentials) Grant { return clientCredentials{cr: cr} }

// JWTBearer returns a [Grant] for a workload that holds no secret: the
// JWT-bearer grant (RFC 7523 §2.1) at cr.Issuer with the assertion a
// gives (assertion.File for a projected token, assertion.Func for a
// platform API; asked for one with aud the issuer), taken for each token
// request and refused before it is sent once expired. A refusal is
// returned, not retried nor answered with another grant
// (oauthclient.Client.JWTBearer). Tokens are requested with the resource and the resource's
// scopes, kept in memory only. cr.ClientSecret authenticates the client
// when the server wants it (zero: the client_id is sent, auth method
// none); cr.PrivateKey, when set, signs private_key_jwt client
// assertions.
//
// Issuer binding, DPoP and printing as for [ClientCredentials]; a nil a
// fails TokenSource with an error matching oauthsafe.ErrConfig, before
// anything is sent.
func JWTBearer(cr Credentials, a assertion.Source) Grant { return jwtBearer{cr: cr, a: a} }

// EnterpriseManaged returns a [Grant] for enterprise-managed
// authorization: the user's token at the company's identity provider
// (subject.SubjectToken, of type subject.SubjectTokenType, "" meaning an
// ID token) is exchanged there, by idp, the client registered at the
// identity provider (RFC 8693), for an identity assertion authorization
// grant (ID-JAG) whose audience is the resource's authorization server and
// whose resource is the resource; the ID-JAG is redeemed with the
// JWT-bearer grant at cr.Issuer by the client cr (oauthclient.Client.IDJAG,
// oauthclient.Client.JWTBearer). No browser opens. subject.Resource and
// subject.Scopes are ignored: the Grant sets them for each resource to the
// resource and its scopes; subject.Audience, ActorToken, ActorTokenType
// and RequestedTokenType are the step's own and must be empty.
//
// Issuer binding (checked before anything is sent, also to the identity
// provider), DPoP at cr.Issuer and printing as for [ClientCredentials];
// the exchange at the identity provider carries no DPoP proof. A nil idp
// or subject.SubjectToken, or one of the step's own fields set, fails
// TokenSource with an error matching oauthsafe.ErrConfig, before anything
// is sent.
func EnterpriseManaged(cr Credentials, idp *oauthclient.Client, subject oauthclient.TokenExchangeOptions) Grant {
	return enterpriseManaged{cr: cr, idp: idp, subject: subject}
}

// clientCredentials is the Grant of ClientCredentials.
type clientCredentials struct{ cr Credentials }

// TokenSource implements Grant: the client credentials token source of
// the client at s.Issuer, for s.Resource and s.Scopes.
func (g clientCredentials) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	oc, err := grantClient(ctx, s, g.cr)
	if err != nil {
		return nil, err
	}
	return oc.ClientCredentials(oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.cr.NoDPoP}), nil
}

// jwtBearer is the Grant of JWTBearer.
type jwtBearer struct {
	cr Credentials
	a  assertion.Source
}

// TokenSource implements Grant: the JWT-bearer token source of the
// client at s.Issuer, for s.Resource and s.Scopes.
func (g jwtBearer) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	if err := checkIssuer(s, g.cr.Issuer); err != nil {
		return nil, err
	}
	if g.a == nil {
		return nil, cfgerr.New("resourceclient", "JWTBearer needs an assertion source")
	}
	oc, err := grantClient(ctx, s, g.cr)
	if err != nil {
		return nil, err
	}
	return oc.JWTBearer(g.a, oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.cr.NoDPoP}), nil
}

// enterpriseManaged is the Grant of EnterpriseManaged.
type enterpriseManaged struct {
	cr      Credentials
	idp     *oauthclient.Client
	subject oauthclient.TokenExchangeOptions
}

// TokenSource implements Grant: ID-JAGs for s.Issuer and s.Resource
// from the identity provider, redeemed at s.Issuer.
func (g enterpriseManaged) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	if err := checkIssuer(s, g.cr.Issuer); err != nil {
		return nil, err
	}
	if g.idp == nil || g.subject.SubjectToken == nil {
		return nil, cfgerr.New("resourceclient", "EnterpriseManaged needs the identity provider's client and the user's token there (SubjectToken)")
	}
	if o := g.subject; len(o.Audience) > 0 || o.ActorToken != nil || o.ActorTokenType != "" || o.RequestedTokenType != "" {
		return nil, cfgerr.New("resourceclient", "EnterpriseManaged sets Audience, the actor and RequestedTokenType of the exchange itself; leave them empty")
	}
	oc, err := grantClient(ctx, s, g.cr)
	if err != nil {
		return nil, err
	}
	subject := g.subject
	subject.Resource, subject.Scopes = []string{s.Resource}, s.Scopes
	return oc.JWTBearer(g.idp.IDJAG(subject), oauthclient.GrantOptions{Scopes: s.Scopes, Resource: []string{s.Resource}, NoDPoP: g.cr.NoDPoP}), nil
}

// checkIssuer refuses a Grant configured for issuer at the issuer s
// names unless they are the same (S28).
func checkIssuer(s Server, issuer string) error {
	if issuer == "" || issuer != s.Issuer {
		return fmt.Errorf("%w (configured for %q, the resource names %q)", ErrGrantIssuer, safetext.Clean(issuer, 200), safetext.Clean(s.Issuer, 200))
	}
	return nil
}

// grantClient is the oauthclient.Client of cr at s.Issuer, which must be
// cr.Issuer (S28), with the metadata discovery found (no second
// discovery) and DPoP on when the resource takes DPoP-bound tokens only.
func grantClient(ctx context.Context, s Server, cr Credentials) (*oauthclient.Client, error) {
	if err := checkIssuer(s, cr.Issuer); err != nil {
		return nil, err
	}
	if cr.ClientID == "" {
		return nil, cfgerr.New("resourceclient", "a Grant needs Credentials.ClientID")
	}
	md := s.Metadata
	return oauthclient.New(ctx, oauthclient.Config{
		Issuer: s.Issuer, ClientID: cr.ClientID, ClientSecret: cr.ClientSecret, PrivateKey: cr.PrivateKey, KeyID: cr.KeyID, AuthMethod: cr.AuthMethod,
		Metadata: &md, HTTP: s.HTTP, DPoP: s.DPoP,
	})
}

// The Grants print their issuer, client id and what is configured, never
// a secret, a key, an assertion or a subject token (S12, S16, S31). These
// methods are on unexported types: they do not add to the API.

func (g clientCredentials) redact() string {
	return "resourceclient.ClientCredentials{" + g.cr.fields() + "}"
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g clientCredentials) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the private key's
// own fields are never encoded.
func (g clientCredentials) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }

func (g jwtBearer) redact() string {
	return "resourceclient.JWTBearer{" + g.cr.fields() + ", assertion=" + safetext.Present(g.a != nil) + "}"
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g jwtBearer) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the sources'
// own fields are never encoded.
func (g jwtBearer) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }

func (g enterpriseManaged) redact() string {
	return fmt.Sprintf("resourceclient.EnterpriseManaged{%s, idp=%s, subject_token=%s, subject_token_type=%s}", g.cr.fields(),
		safetext.Present(g.idp != nil), safetext.Present(g.subject.SubjectToken != nil), safetext.Clean(g.subject.SubjectTokenType, 100))
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (g enterpriseManaged) Format(f fmt.State, verb rune) { io.WriteString(f, g.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the sources'
// own fields are never encoded.
func (g enterpriseManaged) MarshalJSON() ([]byte, error) { return json.Marshal(g.redact()) }
