package oauthclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// hostile is a token endpoint that answers body to every request, and
// counts them and the DPoP proofs.
type hostile struct {
	srv      *httptest.Server
	body     atomic.Pointer[string]
	form     atomic.Pointer[url.Values] // the last request's form
	requests atomic.Int32
	proofs   atomic.Int32
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if r.ParseForm() == nil {
			h.form.Store(&r.PostForm)
		}
		if r.Header.Get("DPoP") != "" {
			h.proofs.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, *h.body.Load())
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostile) answer(s string) { h.body.Store(&s) }

// client is a public client of the hostile server with md's extra fields.
func (h *hostile) client(t *testing.T, cfg oauthclient.Config, algs []string) *oauthclient.Client {
	t.Helper()
	cfg.Issuer = h.srv.URL
	if cfg.ClientID == "" {
		cfg.ClientID = "svc"
	}
	cfg.Metadata = &oauthclient.Metadata{Issuer: h.srv.URL, TokenEndpoint: h.srv.URL + "/token", DPoPSigningAlgValuesSupported: algs}
	cfg.HTTP = strictnet.Config{RootCAs: rootsOf(h.srv)}
	c, err := oauthclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rootsOf(s *httptest.Server) *x509.CertPool {
	return s.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}

func jwtWithExp(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"oauth-id-jag+jwt"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))) + ".c2ln"
}

var subject = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "subject-token-value"})

// TestIssuedTypeAndNA: issued_token_type must be the requested one
// (missing or another: ErrIssuedTokenType), token_type N_A is accepted
// only from a token exchange and never for an access token, and an
// ID-JAG must be a JWT whose exp has not passed.
func TestIssuedTypeAndNA(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	c := h.client(t, oauthclient.Config{}, nil)
	src := func() error {
		_, err := c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: subject, SubjectTokenType: oauthclient.TokenTypeAccessToken}).TokenContext(ctx)
		return err
	}
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"ok", `{"access_token":"at","token_type":"Bearer","issued_token_type":"` + oauthclient.TokenTypeAccessToken + `","expires_in":60}`, nil},
		{"missing", `{"access_token":"at","token_type":"Bearer","expires_in":60}`, oauthclient.ErrIssuedTokenType},
		{"another", `{"access_token":"at","token_type":"Bearer","issued_token_type":"` + oauthclient.TokenTypeIDToken + `"}`, oauthclient.ErrIssuedTokenType},
		{"not a string", `{"access_token":"at","token_type":"Bearer","issued_token_type":7}`, oauthclient.ErrMalformedResponse},
		{"N_A access token", `{"access_token":"at","token_type":"N_A","issued_token_type":"` + oauthclient.TokenTypeAccessToken + `"}`, oauthclient.ErrMalformedResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.answer(tc.body)
			err := src()
			if (tc.want == nil) != (err == nil) || (tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, oauthclient.ErrMalformedResponse))) {
				t.Fatalf("Token = %v, want %v", err, tc.want)
			}
		})
	}
	// N_A outside a token exchange: refused (S11).
	h.answer(`{"access_token":"at","token_type":"N_A","expires_in":60}`)
	jb := c.JWTBearer(zeroAssertion{}, oauthclient.GrantOptions{})
	if _, err := jb.TokenContext(ctx); !errors.Is(err, assertion.ErrSource) {
		t.Fatalf("empty assertion: %v", err)
	}
	valid := jwtWithExp(time.Now().Add(time.Hour))
	if _, err := c.JWTBearer(assertion.Func(func(context.Context, string) (string, error) { return valid, nil }), oauthclient.GrantOptions{}).TokenContext(ctx); !errors.Is(err, oauthclient.ErrMalformedResponse) {
		t.Fatalf("N_A to a JWT-bearer grant: %v, want ErrMalformedResponse", err)
	}

	// ID-JAG: the answer must be an unexpired JWT of the requested type.
	idjag := c.IDJAG(oauthclient.TokenExchangeOptions{SubjectToken: subject, Resource: []string{"https://mcp.example/mcp"}})
	h.answer(`{"access_token":"` + jwtWithExp(time.Now().Add(time.Minute)) + `","token_type":"N_A","issued_token_type":"` + oauthclient.TokenTypeIDJAG + `"}`)
	if a, err := idjag.Assertion(ctx, "https://as.example"); err != nil || a == "" {
		t.Fatalf("ID-JAG: %v", err)
	}
	if f := *h.form.Load(); f.Get("subject_token_type") != oauthclient.TokenTypeIDToken || f.Get("requested_token_type") != oauthclient.TokenTypeIDJAG ||
		f.Get("audience") != "https://as.example" || f.Get("resource") != "https://mcp.example/mcp" || f.Get("actor_token") != "" {
		t.Fatalf("the ID-JAG exchange sent %v: want subject_token_type id_token (the default), requested_token_type id-jag, the audience asked for and the resource", f)
	}
	h.answer(`{"access_token":"` + jwtWithExp(time.Now().Add(-time.Minute)) + `","token_type":"N_A","issued_token_type":"` + oauthclient.TokenTypeIDJAG + `"}`)
	if _, err := idjag.Assertion(ctx, "https://as.example"); !errors.Is(err, assertion.ErrExpired) {
		t.Fatalf("expired ID-JAG: %v", err)
	}
	h.answer(`{"access_token":"opaque","token_type":"N_A","issued_token_type":"` + oauthclient.TokenTypeIDJAG + `"}`)
	if _, err := idjag.Assertion(ctx, "https://as.example"); !errors.Is(err, assertion.ErrSource) {
		t.Fatalf("opaque ID-JAG: %v", err)
	}
	h.answer(`{"access_token":"at","token_type":"Bearer","issued_token_type":"` + oauthclient.TokenTypeAccessToken + `"}`)
	if _, err := idjag.Assertion(ctx, "https://as.example"); !errors.Is(err, oauthclient.ErrIssuedTokenType) {
		t.Fatalf("an access token for an ID-JAG: %v", err)
	}
	if h.proofs.Load() != 0 {
		t.Fatal("a DPoP proof without DPoP metadata")
	}
}

// TestConfigErrorsBeforeAnyRequest: missing or contradictory settings
// are configuration errors, found before anything is sent.
func TestConfigErrorsBeforeAnyRequest(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	c := h.client(t, oauthclient.Config{}, nil)
	for name, src := range map[string]interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}{
		"no assertion":    c.JWTBearer(nil, oauthclient.GrantOptions{}),
		"no subject":      c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectTokenType: oauthclient.TokenTypeAccessToken}),
		"no subject type": c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: subject}),
		"actor no type":   c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: subject, SubjectTokenType: oauthclient.TokenTypeAccessToken, ActorToken: subject}),
		"id-jag source":   c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: subject, SubjectTokenType: oauthclient.TokenTypeIDToken, RequestedTokenType: oauthclient.TokenTypeIDJAG}),
		"nil client":      (*oauthclient.Client)(nil).JWTBearer(zeroAssertion{}, oauthclient.GrantOptions{}),
	} {
		if _, err := src.TokenContext(ctx); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := (*oauthclient.Client)(nil).IDJAG(oauthclient.TokenExchangeOptions{SubjectToken: subject}).Assertion(ctx, "https://as.example"); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Errorf("IDJAG without IdP: %v", err)
	}
	for name, o := range map[string]oauthclient.TokenExchangeOptions{
		"no subject":         {},
		"an audience":        {SubjectToken: subject, Audience: []string{"other"}},
		"an actor":           {SubjectToken: subject, ActorToken: subject, ActorTokenType: oauthclient.TokenTypeAccessToken},
		"another token type": {SubjectToken: subject, RequestedTokenType: oauthclient.TokenTypeAccessToken},
	} {
		if _, err := c.IDJAG(o).Assertion(ctx, "https://as.example"); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("IDJAG with %s: %v, want ErrConfig", name, err)
		}
	}
	expired := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: jwtWithExp(time.Now().Add(-time.Minute))})
	if _, err := c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: expired, SubjectTokenType: oauthclient.TokenTypeJWT}).TokenContext(ctx); !errors.Is(err, assertion.ErrExpired) {
		t.Errorf("a JWT subject past its exp: %v, want ErrExpired", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := oauthclient.New(ctx, oauthclient.Config{Issuer: h.srv.URL, ClientID: "x", DPoPKey: p384,
		Metadata: &oauthclient.Metadata{Issuer: h.srv.URL, TokenEndpoint: h.srv.URL + "/token"}}); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Errorf("a P-384 DPoPKey: %v, want ErrConfig", err)
	}
	if n := h.requests.Load(); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// TestDPoPFollowsMetadata: service grants prove their requests by
// themselves only when the metadata lists an algorithm this client signs
// with (ES256); NoDPoP turns that off; a list without ES256 is no error.
func TestDPoPFollowsMetadata(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	secretCfg := func() oauthclient.Config { return oauthclient.Config{AuthMethod: "none"} }
	for _, tc := range []struct {
		name   string
		algs   []string
		noDPoP bool
		proofs int32
	}{
		{"not listed", nil, false, 0},
		{"ES256 listed", []string{"RS256", "ES256"}, false, 1},
		{"ES256 listed, NoDPoP", []string{"ES256"}, true, 0},
		{"only RS256", []string{"RS256"}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := "Bearer"
			if tc.proofs > 0 {
				typ = "DPoP"
			}
			h.answer(`{"access_token":"at","token_type":"` + typ + `","issued_token_type":"` + oauthclient.TokenTypeAccessToken + `","expires_in":60}`)
			h.proofs.Store(0)
			c := h.client(t, secretCfg(), tc.algs)
			tok, err := c.TokenExchange(oauthclient.TokenExchangeOptions{SubjectToken: subject, SubjectTokenType: oauthclient.TokenTypeAccessToken, NoDPoP: tc.noDPoP}).TokenContext(ctx)
			if err != nil || tok.Type() != typ || h.proofs.Load() != tc.proofs {
				t.Fatalf("Token = %v (type %v), %d proofs, want %d", err, tok, h.proofs.Load(), tc.proofs)
			}
		})
	}
}

// TestRefusalNotResent: a refused exchange is returned as the server's
// *oauthclient.AuthError and not sent again with the same subject token;
// another subject token is sent.
func TestRefusalNotResent(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	c := h.client(t, oauthclient.Config{Now: func() time.Time { return *now.Load() }}, nil)
	h.answer(`{"error":"invalid_grant","error_description":"subject token revoked"}`)
	var current atomic.Pointer[string]
	first := "subject-one"
	current.Store(&first)
	src := c.TokenExchange(oauthclient.TokenExchangeOptions{
		SubjectToken: tokenSourceFunc(func() (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: *current.Load()}, nil
		}),
		SubjectTokenType: oauthclient.TokenTypeAccessToken,
	})
	for range 3 {
		_, err := src.TokenContext(ctx)
		var ae *oauthclient.AuthError
		if !errors.As(err, &ae) || ae.Code != "invalid_grant" || errors.Is(err, tokenstore.ErrLoginRequired) {
			t.Fatalf("Token = %v, want the invalid_grant AuthError (no login to redo)", err)
		}
		later := now.Load().Add(10 * time.Minute) // past any backoff
		now.Store(&later)
	}
	if n := h.requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	second := "subject-two"
	current.Store(&second)
	_, _ = src.TokenContext(ctx)
	_, _ = src.TokenContext(ctx) // in the backoff that follows: no request
	if n := h.requests.Load(); n != 2 {
		t.Fatalf("%d requests after a new subject token, want 2", n)
	}
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// zeroAssertion is a source that gives the empty assertion.
type zeroAssertion struct{}

func (zeroAssertion) Assertion(context.Context, string) (string, error) {
	return "", nil
}

// rawSource is a caller's own assertion.Source: it returns its string as
// it is, checking nothing.
type rawSource string

func (s rawSource) Assertion(context.Context, string) (string, error) { return string(s), nil }

// TestCustomSourceParsedAtOnce (S31): what a caller's own Source returns
// is parsed where the client receives it, for the JWT-bearer grant and for
// client authentication (Config.ClientAssertion): empty or not a JWT with
// an exp is refused with assertion.ErrSource, one whose exp has passed by
// the client's clock (Config.Now) with assertion.ErrExpired; nothing is
// sent, and the error does not hold the assertion.
func TestCustomSourceParsedAtOnce(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	h.answer(`{"access_token":"at","token_type":"Bearer","expires_in":60}`)
	inAnHour := time.Now().Add(time.Hour)
	later := func() time.Time { return inAnHour.Add(time.Minute) } // the client's clock
	for _, tc := range []struct {
		name string
		raw  string
		want error
	}{
		{"expired by the client's clock", jwtWithExp(inAnHour), assertion.ErrExpired},
		{"expired", jwtWithExp(time.Now().Add(-time.Minute)), assertion.ErrExpired},
		{"empty", "", assertion.ErrSource},
		{"not a JWT", "opaque-workload-credential", assertion.ErrSource},
	} {
		for _, site := range []string{"JWTBearer", "ClientAssertion"} {
			t.Run(tc.name+"/"+site, func(t *testing.T) {
				before := h.requests.Load()
				var err error
				if site == "JWTBearer" {
					c := h.client(t, oauthclient.Config{Now: later}, nil)
					_, err = c.JWTBearer(rawSource(tc.raw), oauthclient.GrantOptions{}).TokenContext(ctx)
				} else {
					c := h.client(t, oauthclient.Config{Now: later, ClientAssertion: rawSource(tc.raw)}, nil)
					_, err = c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx)
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("%v, want %v", err, tc.want)
				}
				if n := h.requests.Load() - before; n != 0 {
					t.Fatalf("%d requests sent", n)
				}
				if tc.raw != "" && strings.Contains(err.Error(), tc.raw) {
					t.Fatal("the error holds the assertion")
				}
			})
		}
	}
}
