package machine_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"golang.org/x/oauth2"
)

// TestTokenExchangeChecksIssuedType: an RFC 8693 exchange sends the
// subject token with its type, the audience and the requested type, and
// the answer's issued_token_type must be the one asked for: the provider
// answers a request for a JWT with an access token, which is refused with
// oauthclient.ErrMalformedResponse (issued_token_type), and no token is served. An expired
// subject token is refused before it is sent.
func TestTokenExchangeChecksIssuedType(t *testing.T) {
	ctx := context.Background()
	srv := start(t, oauthtest.Options{})
	// The subject: the access token another service holds.
	subject := newClient(t, srv, oauthclient.Config{
		ClientID: oauthtest.ClientServicePost, ClientSecret: secretOf(t, oauthtest.ServicePostSecret),
		AuthMethod: "client_secret_post",
	}).ClientCredentials(oauthclient.GrantOptions{Scopes: []string{oauthtest.ScopeAPIRead}, NoDPoP: true})
	exchanger := serviceClient(t, srv)
	_, call, _ := demoAPI(t, srv, demoapi.ResourceConfig{})
	rec := record(t, srv)

	src := exchanger.TokenExchange(oauthclient.TokenExchangeOptions{
		SubjectToken:     subject,
		SubjectTokenType: oauthtest.TokenTypeAccess,
		Audience:         []string{demoapi.Audience},
		Scopes:           []string{oauthtest.ScopeAPIRead},
	})
	if _, err := src.TokenContext(ctx); err != nil {
		t.Fatal(err)
	}
	form, _ := rec.last()
	st, _ := subject.TokenContext(ctx)
	if url.Values(form).Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" || url.Values(form).Get("subject_token") != st.AccessToken ||
		url.Values(form).Get("subject_token_type") != oauthtest.TokenTypeAccess || url.Values(form).Get("audience") != demoapi.Audience ||
		url.Values(form).Get("requested_token_type") != oauthtest.TokenTypeAccess {
		t.Fatalf("exchange request: grant %q, types %q %q, audience %q", url.Values(form).Get("grant_type"),
			url.Values(form).Get("subject_token_type"), url.Values(form).Get("requested_token_type"), url.Values(form).Get("audience"))
	}
	if code := call(src); code != http.StatusOK {
		t.Fatalf("the exchanged token: API answered %d", code)
	}

	// A JWT asked for, an access token issued: refused.
	jwtSrc := exchanger.TokenExchange(oauthclient.TokenExchangeOptions{
		SubjectToken: subject, SubjectTokenType: oauthtest.TokenTypeAccess,
		RequestedTokenType: oauthtest.TokenTypeJWT,
	})
	tok, err := jwtSrc.TokenContext(ctx)
	if !errors.Is(err, oauthclient.ErrMalformedResponse) || !strings.Contains(err.Error(), "issued_token_type is not the requested type") || tok != nil {
		t.Fatalf("issued access_token for a JWT request: token %t, %v; want the issued_token_type refusal", tok != nil, err)
	}
	if form, _ := rec.last(); url.Values(form).Get("requested_token_type") != oauthtest.TokenTypeJWT {
		t.Fatal("the requested type was not sent")
	}

	// An expired subject token is not sent.
	before := srv.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange")
	expired := exchanger.TokenExchange(oauthclient.TokenExchangeOptions{
		SubjectToken:     oauth2.StaticTokenSource(&oauth2.Token{AccessToken: st.AccessToken, Expiry: time.Now().Add(-time.Second)}),
		SubjectTokenType: oauthtest.TokenTypeAccess,
	})
	if _, err := expired.TokenContext(ctx); !errors.Is(err, assertion.ErrExpired) || srv.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange") != before {
		t.Fatalf("expired subject token: %v (%d requests, want %d)", err, srv.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange"), before)
	}
}

// TestEnterpriseManagedAuthorization: a user signed in at the company's
// identity provider reaches a third-party API without another login: the
// ID token is exchanged at the identity provider for an ID-JAG (RFC 8693,
// requested_token_type id-jag, audience the API's authorization server,
// resource the API), which the JWT-bearer grant redeems there; the token
// names the user and the API, and the API accepts it.
func TestEnterpriseManagedAuthorization(t *testing.T) {
	ctx := context.Background()
	idp := start(t, oauthtest.Options{})
	as := start(t, oauthtest.Options{})
	as.TrustIdentityProvider(idp)
	resource, call, _ := demoAPI(t, as, demoapi.ResourceConfig{Resource: "*"})

	// The user's single sign-on at the identity provider.
	login := newClient(t, idp, oauthclient.Config{ClientID: oauthtest.ClientNative, RedirectURL: oauthtest.NativeRedirectURI, Scopes: []string{"openid"}})
	toks, _ := flow.Login(t, idp, login, oauthclient.StartOptions{}, oauthtest.UserAlice)
	idToken := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: toks.RawIDToken()})

	idpRec, asRec := record(t, idp), record(t, as)
	scopes := []string{oauthtest.ScopeAPIRead}
	src := serviceClient(t, as).JWTBearer(
		serviceClient(t, idp).IDJAG(oauthclient.TokenExchangeOptions{SubjectToken: idToken, Resource: []string{resource}, Scopes: scopes}),
		oauthclient.GrantOptions{Scopes: scopes})
	if code := call(src); code != http.StatusOK {
		t.Fatalf("the API answered %d", code)
	}
	ex, _ := idpRec.last()
	want := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {toks.RawIDToken()}, "subject_token_type": {oauthtest.TokenTypeID},
		"requested_token_type": {oauthtest.TokenTypeIDJAG}, "audience": {as.Issuer}, "resource": {resource}, "scope": {oauthtest.ScopeAPIRead},
	}
	for k, v := range want {
		if got := url.Values(ex)[k]; len(got) != 1 || got[0] != v[0] {
			t.Errorf("token exchange at the identity provider: %s = %q, want %q", k, got, v[0])
		}
	}
	redeem, _ := asRec.last()
	if url.Values(redeem).Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || url.Values(redeem).Get("assertion") == "" {
		t.Fatalf("at the authorization server: grant %q", url.Values(redeem).Get("grant_type"))
	}
	if n := idp.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange"); n != 1 {
		t.Fatalf("%d exchanges at the identity provider, want 1", n)
	}
	// The token is the user's, for the API.
	in, err := newClient(t, as, oauthclient.Config{ClientID: oauthtest.ClientResource, ClientSecret: secretOf(t, oauthtest.ResourceSecret)}).
		Introspector(validateConfig(resource))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := in.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if at.Subject != oauthtest.Subject(oauthtest.UserAlice) {
		t.Fatalf("the token's subject is %q, want alice's", at.Subject)
	}
	// An ID-JAG is for one authorization server: another one refuses it.
	other := start(t, oauthtest.Options{})
	other.TrustIdentityProvider(idp)
	jag, err := serviceClient(t, idp).IDJAG(oauthclient.TokenExchangeOptions{SubjectToken: idToken, Resource: []string{resource}}).Assertion(ctx, as.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = serviceClient(t, other).JWTBearer(assertion.Func(func(context.Context, string) (string, error) { return jag, nil }), oauthclient.GrantOptions{}).TokenContext(ctx)
	var ae *oauthclient.AuthError
	if !errors.As(err, &ae) || ae.Code != "invalid_grant" {
		t.Fatalf("an ID-JAG for another server: %v, want invalid_grant", err)
	}
}
