package resourceclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// machineServer is a resource, its authorization server (at /as) and an
// identity provider (at /idp) on one plain-http loopback server, in the
// manner of the conformance suite's mocks for machine clients: the token
// endpoints issue any grant, DPoP-bound when the request carries a proof
// (the proof itself is not verified here: the e2e tests do that against
// the real provider). Every token request is recorded.
type machineServer struct {
	*httptest.Server
	dpopAlgs  []string // the AS metadata's dpop_signing_alg_values_supported
	dpopOnly  bool     // the resource challenges with DPoP only
	refuse    string   // an error code the AS token endpoint answers, "" none
	mu        sync.Mutex
	asTokens  []tokenCall
	idpTokens []tokenCall
	resource  []tokenCall // the resource's requests with a token
	issued    map[string]bool
}

// tokenCall is one recorded request: its form, DPoP header and
// Authorization header.
type tokenCall struct {
	form  url.Values
	proof string
	auth  string
}

func newMachineServer(t *testing.T) *machineServer {
	m := &machineServer{issued: map[string]bool{}}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	return m
}

func (m *machineServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	call := tokenCall{form: form, proof: r.Header.Get("DPoP"), auth: r.Header.Get("Authorization")}
	m.mu.Lock()
	defer m.mu.Unlock()
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/.well-known/oauth-protected-resource/mcp":
		writeJSON(map[string]any{"resource": m.URL + "/mcp", "authorization_servers": []string{m.URL + "/as"}})
	case "/.well-known/oauth-authorization-server/as":
		md := map[string]any{
			"issuer": m.URL + "/as", "token_endpoint": m.URL + "/as/token",
			"grant_types_supported":                 []string{"client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt", "none"},
		}
		if m.dpopAlgs != nil {
			md["dpop_signing_alg_values_supported"] = m.dpopAlgs
		}
		writeJSON(md)
	case "/as/token":
		m.asTokens = append(m.asTokens, call)
		if m.refuse != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": m.refuse})
			return
		}
		tok, typ := fmt.Sprintf("at-%d", len(m.asTokens)), "Bearer"
		if call.proof != "" {
			typ = "DPoP"
		}
		m.issued[typ+" "+tok] = true
		writeJSON(map[string]any{"access_token": tok, "token_type": typ, "expires_in": 3600})
	case "/idp/token":
		m.idpTokens = append(m.idpTokens, call)
		writeJSON(map[string]any{"access_token": testJWT(time.Now().Add(5 * time.Minute)), "token_type": "N_A",
			"issued_token_type": "urn:ietf:params:oauth:token-type:id-jag", "expires_in": 300})
	case "/mcp":
		if m.issued[call.auth] && (strings.HasPrefix(call.auth, "Bearer ") || call.proof != "") {
			m.resource = append(m.resource, call)
			io.WriteString(w, "ok")
			return
		}
		scheme := "Bearer"
		if m.dpopOnly {
			scheme = "DPoP"
		}
		w.Header().Set("WWW-Authenticate", scheme+` error="invalid_token", resource_metadata="`+m.URL+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	default:
		http.NotFound(w, r)
	}
}

func (m *machineServer) calls() (as, idp, res []tokenCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]tokenCall(nil), m.asTokens...), append([]tokenCall(nil), m.idpTokens...), append([]tokenCall(nil), m.resource...)
}

// testJWT is an unsigned-looking compact JWS with exp (assertions are
// read, not verified, by the client).
func testJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"oauth-id-jag+jwt"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp.Unix()))) + ".c2ln"
}

func testSecret(t *testing.T, s string) secret.Value {
	t.Helper()
	v, err := secret.FromReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// get calls the resource through a Client with grant; it returns the
// error of the call (nil when the resource answered ok).
func (m *machineServer) get(t *testing.T, grant Grant) error {
	t.Helper()
	c, err := New(context.Background(), Config{Resource: m.URL + "/mcp", Grant: grant, HTTP: strictnet.Config{AllowLoopbackHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTPClient().Get(m.URL + "/mcp")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("resource answered %d %q", resp.StatusCode, b)
	}
	return nil
}

// idpClient is the client registered at m's identity provider.
func (m *machineServer) idpClient(t *testing.T) *oauthclient.Client {
	t.Helper()
	idp, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer: m.URL + "/idp", ClientID: "idp-client",
		Metadata: &oauthclient.Metadata{Issuer: m.URL + "/idp", TokenEndpoint: m.URL + "/idp/token"},
		HTTP:     strictnet.Config{AllowLoopbackHTTP: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

// grants are the ready-made Grants of a client configured for issuer (with
// noDPoP), with the identity provider of m.
func (m *machineServer) grants(t *testing.T, issuer string, noDPoP bool) map[string]Grant {
	t.Helper()
	idp := m.idpClient(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	workload := testJWT(time.Now().Add(time.Hour))
	return map[string]Grant{
		"client secret":   ClientCredentials(Credentials{Issuer: issuer, ClientID: "svc", ClientSecret: testSecret(t, "svc-secret"), NoDPoP: noDPoP}),
		"private_key_jwt": ClientCredentials(Credentials{Issuer: issuer, ClientID: "svc", PrivateKey: key, NoDPoP: noDPoP}),
		"workload assertion": JWTBearer(Credentials{Issuer: issuer, ClientID: "workload", NoDPoP: noDPoP},
			assertion.Func(func(context.Context, string) (string, error) { return workload, nil })),
		"workload assertion, private_key_jwt": JWTBearer(Credentials{Issuer: issuer, ClientID: "workload", PrivateKey: key, NoDPoP: noDPoP},
			assertion.Func(func(context.Context, string) (string, error) { return workload, nil })),
		"enterprise-managed": EnterpriseManaged(Credentials{Issuer: issuer, ClientID: "xaa", ClientSecret: testSecret(t, "xaa-secret"), NoDPoP: noDPoP},
			idp, oauthclient.TokenExchangeOptions{SubjectToken: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testJWT(time.Now().Add(time.Hour))})}),
	}
}

// TestGrantsBoundToTheirIssuer (S28): each ready-made Grant runs its
// grant at the issuer it is configured for, with the resource; at
// another issuer the resource names (or with none configured) it is
// refused with ErrGrantIssuer before anything is sent, to the
// authorization server or the identity provider.
func TestGrantsBoundToTheirIssuer(t *testing.T) {
	m := newMachineServer(t)
	for name, g := range m.grants(t, m.URL+"/as", false) {
		t.Run(name, func(t *testing.T) {
			before, _, _ := m.calls()
			if err := m.get(t, g); err != nil {
				t.Fatal(err)
			}
			as, idp, _ := m.calls()
			if len(as) != len(before)+1 {
				t.Fatalf("%d token requests at the authorization server, want 1", len(as)-len(before))
			}
			f := as[len(as)-1].form
			if f.Get("resource") != m.URL+"/mcp" {
				t.Errorf("resource %q, want the resource", f.Get("resource"))
			}
			switch name {
			case "client secret":
				if f.Get("grant_type") != "client_credentials" || !strings.HasPrefix(as[len(as)-1].auth, "Basic ") {
					t.Errorf("grant %q, auth %q: want client_credentials with client_secret_basic", f.Get("grant_type"), as[len(as)-1].auth)
				}
			case "private_key_jwt":
				if f.Get("grant_type") != "client_credentials" || f.Get("client_assertion") == "" {
					t.Errorf("grant %q: want client_credentials with a client assertion", f.Get("grant_type"))
				}
			case "workload assertion":
				if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || f.Get("assertion") == "" {
					t.Errorf("grant %q: want the JWT-bearer grant with the assertion", f.Get("grant_type"))
				}
			case "workload assertion, private_key_jwt":
				if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || f.Get("assertion") == "" ||
					f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Get("client_assertion") == "" {
					t.Errorf("form %v: want the JWT-bearer grant with the assertion, the client authenticated with private_key_jwt", f)
				}
			case "enterprise-managed":
				if len(idp) == 0 {
					t.Fatal("no token exchange at the identity provider")
				}
				ex := idp[len(idp)-1].form
				if ex.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:id-jag" || ex.Get("audience") != m.URL+"/as" || ex.Get("resource") != m.URL+"/mcp" {
					t.Errorf("exchange %v: want an ID-JAG for the authorization server and the resource", ex)
				}
				if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || f.Get("assertion") == "" {
					t.Errorf("grant %q: want the ID-JAG redeemed with the JWT-bearer grant", f.Get("grant_type"))
				}
			}
		})
	}
	for _, issuer := range []string{m.URL + "/other", ""} {
		for name, g := range m.grants(t, issuer, false) {
			t.Run(name+" at "+issuer, func(t *testing.T) {
				as0, idp0, _ := m.calls()
				err := m.get(t, g)
				if !errors.Is(err, ErrGrantIssuer) || !errors.Is(err, strictnet.ErrPolicy) {
					t.Fatalf("configured for %q, the resource names %s/as: err = %v, want ErrGrantIssuer", issuer, m.URL, err)
				}
				if as, idp, _ := m.calls(); len(as) != len(as0) || len(idp) != len(idp0) {
					t.Fatal("a request was sent for a client of another issuer")
				}
			})
		}
	}
}

// TestGrantsDPoPFollowMetadata: a Grant's token requests carry a DPoP
// proof when the authorization server's metadata lists an algorithm the
// client signs with, and the resource then gets the DPoP scheme with a
// proof; none when the metadata lists none or NoDPoP is set; with
// NoDPoP, a resource that takes DPoP-bound tokens only (a DPoP-only
// challenge) still gets them.
func TestGrantsDPoPFollowMetadata(t *testing.T) {
	for _, tc := range []struct {
		name     string
		algs     []string
		dpopOnly bool
		noDPoP   bool
		want     bool
	}{
		{"metadata lists ES256", []string{"ES256"}, false, false, true},
		{"metadata lists none", nil, false, false, false},
		{"metadata lists no algorithm the client signs with", []string{"RS256"}, false, false, false},
		{"NoDPoP", []string{"ES256"}, false, true, false},
		{"NoDPoP, the resource takes DPoP only", []string{"ES256"}, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachineServer(t)
			m.dpopAlgs, m.dpopOnly = tc.algs, tc.dpopOnly
			for name, g := range m.grants(t, m.URL+"/as", tc.noDPoP) {
				m.check(t, name, g, tc.want)
			}
		})
	}
}

// check calls the resource with g and checks whether its token request
// and the resource request were DPoP-proven.
func (m *machineServer) check(t *testing.T, name string, g Grant, want bool) {
	t.Helper()
	if err := m.get(t, g); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	as, idp, res := m.calls()
	tok, call := as[len(as)-1], res[len(res)-1]
	if got := tok.proof != ""; got != want {
		t.Errorf("%s: token request with a DPoP proof: %v, want %v", name, got, want)
	}
	if got := strings.HasPrefix(call.auth, "DPoP ") && call.proof != ""; got != want {
		t.Errorf("%s: resource request %q with a proof %v, want DPoP %v", name, strings.Fields(call.auth)[0], call.proof != "", want)
	}
	for _, ex := range idp {
		if ex.proof != "" {
			t.Errorf("%s: the ID-JAG exchange carried a DPoP proof", name)
		}
	}
}

// TestGrantRefusalNotRetried (S31): a Grant's refusal by the
// authorization server comes back to the caller as the server's error,
// and is neither sent again (not on the next request either) nor
// answered with another grant or a login.
func TestGrantRefusalNotRetried(t *testing.T) {
	for _, code := range []string{"invalid_grant", "unauthorized_client"} {
		t.Run(code, func(t *testing.T) {
			m := newMachineServer(t)
			m.refuse = code
			c, err := New(context.Background(), Config{Resource: m.URL + "/mcp", Grant: m.grants(t, m.URL+"/as", false)["workload assertion"],
				HTTP: strictnet.Config{AllowLoopbackHTTP: true}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				resp, err := c.HTTPClient().Get(m.URL + "/mcp")
				var ae *oauthclient.AuthError
				if err == nil {
					resp.Body.Close()
				}
				if !errors.As(err, &ae) || ae.Code != code {
					t.Fatalf("call %d: err = %v, want the server's %s", i, err, code)
				}
			}
			as, _, _ := m.calls()
			if len(as) != 1 || as[0].form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
				t.Fatalf("%d token requests, want the one JWT-bearer request", len(as))
			}
		})
	}
}

// TestGrantsRequiredInputs: a Grant missing what it needs (the client id,
// the assertion source, the identity provider's client or the user's
// token there) fails TokenSource with an error matching
// oauthsafe.ErrConfig, not a panic, before anything is sent; the issuer
// check comes first (ErrGrantIssuer at another issuer).
func TestGrantsRequiredInputs(t *testing.T) {
	m := newMachineServer(t)
	issuer := m.URL + "/as"
	idp := m.idpClient(t)
	user := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testJWT(time.Now().Add(time.Hour))})
	cr := Credentials{Issuer: issuer, ClientID: "svc", ClientSecret: testSecret(t, "svc-secret")}
	s := Server{Resource: m.URL + "/mcp", Issuer: issuer, Metadata: oauthclient.Metadata{Issuer: issuer, TokenEndpoint: issuer + "/token"},
		HTTP: strictnet.Config{AllowLoopbackHTTP: true}}
	for name, tc := range map[string]struct {
		g    Grant
		want error
	}{
		"client credentials without a client id":    {ClientCredentials(Credentials{Issuer: issuer, ClientSecret: cr.ClientSecret}), oauthsafe.ErrConfig},
		"zero credentials":                          {ClientCredentials(Credentials{}), ErrGrantIssuer},
		"an unknown auth method":                    {ClientCredentials(Credentials{Issuer: issuer, ClientID: "svc", ClientSecret: cr.ClientSecret, AuthMethod: "client_secret"}), oauthsafe.ErrConfig},
		"JWT bearer without a client id":            {JWTBearer(Credentials{Issuer: issuer}, assertion.Func(func(context.Context, string) (string, error) { return "x", nil })), oauthsafe.ErrConfig},
		"JWT bearer without an assertion source":    {JWTBearer(cr, nil), oauthsafe.ErrConfig},
		"JWT bearer without either, another issuer": {JWTBearer(Credentials{Issuer: m.URL + "/other"}, nil), ErrGrantIssuer},
		"enterprise-managed without an IdP":         {EnterpriseManaged(cr, nil, oauthclient.TokenExchangeOptions{SubjectToken: user}), oauthsafe.ErrConfig},
		"enterprise-managed without a user token":   {EnterpriseManaged(cr, idp, oauthclient.TokenExchangeOptions{}), oauthsafe.ErrConfig},
		"enterprise-managed, zero IDJAG":            {EnterpriseManaged(cr, nil, oauthclient.TokenExchangeOptions{}), oauthsafe.ErrConfig},
		"enterprise-managed with an audience":       {EnterpriseManaged(cr, idp, oauthclient.TokenExchangeOptions{SubjectToken: user, Audience: []string{"x"}}), oauthsafe.ErrConfig},
		"enterprise-managed with an actor":          {EnterpriseManaged(cr, idp, oauthclient.TokenExchangeOptions{SubjectToken: user, ActorToken: user, ActorTokenType: "urn:ietf:params:oauth:token-type:access_token"}), oauthsafe.ErrConfig},
		"enterprise-managed asking another type":    {EnterpriseManaged(cr, idp, oauthclient.TokenExchangeOptions{SubjectToken: user, RequestedTokenType: "urn:ietf:params:oauth:token-type:jwt"}), oauthsafe.ErrConfig},
	} {
		t.Run(name, func(t *testing.T) {
			src, err := tc.g.TokenSource(context.Background(), s)
			if !errors.Is(err, tc.want) || src != nil {
				t.Fatalf("TokenSource: %v, %v; want an error matching %v", src, err, tc.want)
			}
			if as, idp, _ := m.calls(); len(as) != 0 || len(idp) != 0 {
				t.Fatal("a request was sent")
			}
		})
	}
}

// TestEnterpriseManagedSetsResource: the subject options' own Resource and Scopes
// are ignored; the ID-JAG is asked for the resource the Client calls and
// the scopes it asks for there.
func TestEnterpriseManagedSetsResource(t *testing.T) {
	m := newMachineServer(t)
	idp := m.idpClient(t)
	g := EnterpriseManaged(Credentials{Issuer: m.URL + "/as", ClientID: "xaa", ClientSecret: testSecret(t, "xaa-secret")}, idp, oauthclient.TokenExchangeOptions{
		SubjectToken: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testJWT(time.Now().Add(time.Hour))}),
		Resource:     []string{"https://elsewhere.example/api"}, Scopes: []string{"admin"},
	})
	if err := m.get(t, g); err != nil {
		t.Fatal(err)
	}
	_, idpCalls, _ := m.calls()
	if len(idpCalls) != 1 {
		t.Fatalf("%d exchanges at the identity provider, want 1", len(idpCalls))
	}
	if ex := idpCalls[0].form; ex.Get("resource") != m.URL+"/mcp" || ex.Get("scope") != "" {
		t.Fatalf("exchange for resource %q, scope %q: want the resource, and no scope (it asks for none)", ex.Get("resource"), ex.Get("scope"))
	}
}

// TestLoginIgnoresNoDPoP: Credentials.NoDPoP is a setting of the Grants;
// the browser login's client, built from the same Credentials, keeps the
// DPoP its resource requires (found.dpop) and stays without it when not
// required, whatever NoDPoP says.
func TestLoginIgnoresNoDPoP(t *testing.T) {
	ctx := context.Background()
	issuer := "https://as.example"
	c, err := New(ctx, Config{Resource: "https://r.example/mcp",
		Credentials: &Credentials{Issuer: issuer, ClientID: "pre", ClientSecret: testSecret(t, "s"), NoDPoP: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, required := range []bool{true, false} {
		f := &found{resource: "https://r.example/mcp", issuer: issuer, dpop: required,
			md: oauthclient.Metadata{Issuer: issuer, AuthorizationEndpoint: issuer + "/authorize", TokenEndpoint: issuer + "/token",
				DPoPSigningAlgValuesSupported: []string{"ES256"}}}
		cl, err := c.clientFor(ctx, f, false)
		if err != nil {
			t.Fatal(err)
		}
		oc, err := c.oauthClient(ctx, f, cl, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := oc.Config().DPoP; got != required {
			t.Errorf("resource requires DPoP %v, NoDPoP set: the login's client has DPoP %v", required, got)
		}
	}
}
