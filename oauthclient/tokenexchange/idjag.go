package tokenexchange

import (
	"context"
	"fmt"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthclient/internal/hook"
	"golang.org/x/oauth2"
)

// IDJAG is the enterprise-managed authorization step at the company's
// identity provider: an assertion.Source whose assertions are identity
// assertion authorization grants (ID-JAG), each obtained by one token
// exchange (RFC 8693) at IdP with requested_token_type IDJAGType,
// audience the authorization server the assertion is asked for (the
// audience given to Assertion: a jwtbearer source passes its client's
// issuer), resource Resource and scope Scopes. Redeem it with the
// JWT-bearer grant at that server (package jwtbearer), which asks for a
// new one each time it needs a token; nothing is cached.
//
// The answer must say issued_token_type IDJAGType (ErrIssuedTokenType)
// and hold a JWT whose exp has not passed (assertion.ErrExpired,
// assertion.ErrSource). The exchange carries no DPoP proof: an ID-JAG
// is redeemed by the client, not bound to it.
//
// IdP is the client registered at the identity provider, SubjectToken
// gives the user's token there (nil: every call fails with ErrConfig).
// SubjectTokenType "" means IDToken. Resource "" sends none. It is safe
// for concurrent use when SubjectToken is.
type IDJAG struct {
	IdP              *oauthclient.Client
	SubjectToken     oauth2.TokenSource
	SubjectTokenType string
	Resource         string
	Scopes           []string
}

var _ assertion.Source = IDJAG{}

// Assertion exchanges the subject token for an ID-JAG whose audience is
// audience (the authorization server's issuer).
func (j IDJAG) Assertion(ctx context.Context, audience string) (assertion.JWT, error) {
	if j.IdP == nil || audience == "" {
		return assertion.JWT{}, cfgerr.New("tokenexchange", "IDJAG needs an IdP client and an audience")
	}
	now := j.IdP.Config().Now
	typ := j.SubjectTokenType
	if typ == "" {
		typ = IDToken
	}
	g := hook.Grant{
		Params: func(context.Context, string) (url.Values, error) {
			return params(j.SubjectToken, typ, nil, "", now())
		},
		Audience: []string{audience},
		Scopes:   j.Scopes,
		Issued:   IDJAGType,
	}
	if j.Resource != "" {
		g.Resource = []string{j.Resource}
	}
	is, err := hook.Call(ctx, j.IdP, g)
	if err != nil {
		return assertion.JWT{}, err
	}
	a, err := assertion.Parse(is.Token.AccessToken, now())
	if err != nil {
		return assertion.JWT{}, fmt.Errorf("tokenexchange: the identity provider's ID-JAG: %w", err)
	}
	return a, nil
}
