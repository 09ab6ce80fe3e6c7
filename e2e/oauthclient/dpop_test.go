package oauthclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// dpopAPI is the demo resource server (introspection, cnf.jkt, proofs)
// on its own TLS origin, recording what reached it.
type dpopAPI struct {
	*httptest.Server
	api      *demoapi.API
	resource string
	hits     atomic.Int32
	mu       sync.Mutex
	seen     []http.Header
}

func newDPoPAPI(t *testing.T, as *oauthtest.Server, cfg demoapi.ResourceConfig) *dpopAPI {
	t.Helper()
	a := &dpopAPI{}
	mux := http.NewServeMux()
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.mu.Lock()
		a.seen = append(a.seen, r.Header.Clone())
		a.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	a.StartTLS()
	t.Cleanup(a.Close)
	a.resource = a.URL
	cfg.Resource = a.resource
	api, err := demoapi.NewResource(context.Background(), as, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.api = api
	ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }
	mux.Handle("/v1/read", api.Require(oauthtest.ScopeAPIRead, ok))
	mux.Handle("/v1/other", api.Require(oauthtest.ScopeAPIRead, ok))
	mux.Handle("/v1/write", api.Require(oauthtest.ScopeAPIWrite, ok))
	mux.HandleFunc("/.well-known/oauth-protected-resource", api.ServeMetadata)
	return a
}

func (a *dpopAPI) last() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[len(a.seen)-1]
}

func (a *dpopAPI) client(t *testing.T, src oauth2.TokenSource) *http.Client {
	t.Helper()
	c, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{a.URL},
		HTTP:           strictnet.Config{RootCAs: poolOf(a.Server), Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func poolOf(s *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

func get(t *testing.T, c *http.Client, u string) int {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// raw sends a request with exactly the given headers (an attacker).
func raw(t *testing.T, a *dpopAPI, method, path string, h http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, a.URL+path, nil)
	req.Header = h
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func dpopNative(t *testing.T, as *oauthtest.Server, mod func(*oauthclient.Config)) *oauthclient.Client {
	t.Helper()
	cfg := oauthclient.Config{
		Issuer: as.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: as.RootCAs()},
		DPoP:   true,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := oauthclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memoryWith returns a Memory store holding rec under "k".
func memoryWith(t *testing.T, rec *engine.Record) *tokenstore.Memory {
	t.Helper()
	st := &tokenstore.Memory{}
	if err := engine.SaveRecord(context.Background(), st, "k", rec); err != nil {
		t.Fatal(err)
	}
	return st
}

func serviceDPoP(t *testing.T, as *oauthtest.Server, dpop bool) *oauthclient.Client {
	t.Helper()
	c, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer: as.Issuer, ClientID: oauthtest.ClientService, ClientSecret: secretFromEnv(t, oauthtest.ServiceSecret),
		Scopes: []string{oauthtest.ScopeAPIRead}, HTTP: strictnet.Config{RootCAs: as.RootCAs()}, DPoP: dpop,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDPoPEndToEnd: login (dpop_jkt, code bound), API call, refresh and
// client credentials with DPoP against the extended OP and a resource that
// verifies proofs and cnf.jkt; every token is DPoP-typed and bound.
func TestDPoPEndToEnd(t *testing.T) {
	ctx := context.Background()
	const life = 2 * time.Second
	as := startAS(t, oauthtest.Options{AccessTokenLifetime: life})
	api := newDPoPAPI(t, as, demoapi.ResourceConfig{RequireDPoP: true})
	var authorizeJKT atomic.Value
	as.SetHook(func(r *http.Request) {
		if r.URL.Path == "/authorize" && r.URL.Query().Has("code_challenge") {
			authorizeJKT.Store(r.URL.Query().Get("dpop_jkt"))
		}
	})
	c := dpopNative(t, as, nil)

	toks, authURL := flow.Login(t, as, c, oauthclient.StartOptions{Resource: []string{api.resource}}, "alice")
	_ = authURL
	if j, _ := authorizeJKT.Load().(string); j == "" {
		t.Fatal("authorization request carries no dpop_jkt")
	}
	if toks.OAuth2Token().TokenType != "DPoP" {
		t.Fatalf("token_type %q", toks.OAuth2Token().TokenType)
	}
	// Userinfo with the bound token: a DPoP proof, checked by the OP; the
	// same token as Bearer is refused there.
	if claims, err := c.UserInfo(ctx, toks); err != nil || claims.Subject != toks.Subject() {
		t.Fatalf("userinfo with DPoP: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, as.UserinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+toks.OAuth2Token().AccessToken)
	if resp, err := as.HTTPClient().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "DPoP") {
		t.Fatalf("bound token as Bearer at userinfo: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	recStore := &tokenstore.Memory{}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: recStore, Key: "dpop-e2e"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	hc := api.client(t, src)
	if code := get(t, hc, api.URL+"/v1/read"); code != 200 {
		t.Fatalf("API call: %d (%s)", code, api.last().Get("WWW-Authenticate"))
	}
	if h := api.last(); !strings.HasPrefix(h.Get("Authorization"), "DPoP ") || h.Get("DPoP") == "" {
		t.Fatalf("API saw Authorization %.10q, DPoP %v", h.Get("Authorization"), h.Get("DPoP") != "")
	}
	// The API's DPoP-scheme 403 is typed as a Bearer one would be.
	var se *validate.InsufficientScopeError
	if _, err := hc.Get(api.URL + "/v1/write"); !errors.As(err, &se) || len(se.Scope) != 1 || se.Scope[0] != oauthtest.ScopeAPIWrite {
		t.Fatalf("DPoP insufficient_scope: %v", err)
	}

	// Refresh: after expiry the source refreshes with a proof of the same key.
	time.Sleep(life + 100*time.Millisecond)
	before := as.TokenRequests("refresh_token")
	if code := get(t, hc, api.URL+"/v1/read"); code != 200 {
		t.Fatalf("API call after refresh: %d (%s)", code, api.last().Get("WWW-Authenticate"))
	}
	if as.TokenRequests("refresh_token") != before+1 {
		t.Fatalf("refresh requests: %d", as.TokenRequests("refresh_token")-before)
	}
	tok, _ := src.Token()
	if tok.TokenType != "DPoP" {
		t.Fatalf("refreshed token_type %q", tok.TokenType)
	}
	// The public client's refresh token is bound: the rotated record holds
	// the key, and without it the refresh token is useless.
	last, err := engine.LoadRecord(ctx, recStore, "dpop-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if last.Generation == 0 || last.DPoPKey.IsZero() {
		t.Fatal("the rotated record does not hold the DPoP key")
	}
	stolen := *last
	stolen.DPoPKey = engine.PrivateKey{}
	thief := dpopNative(t, as, func(c *oauthclient.Config) { c.DPoP = false })
	ts, err := thief.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: memoryWith(t, &stolen), Key: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("refresh without the key: %v", err)
	}

	// Client credentials with DPoP.
	svc := serviceDPoP(t, as, true)
	st, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{api.resource}}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TokenType != "DPoP" {
		t.Fatalf("client credentials token_type %q", st.TokenType)
	}
	if code := get(t, api.client(t, oauth2.StaticTokenSource(st)), api.URL+"/v1/read"); code != 200 {
		t.Fatalf("service API call: %d (%s)", code, api.last().Get("WWW-Authenticate"))
	}
}

// TestDPoPNonceRetry: a token endpoint and a resource that require nonces
// get exactly one retry each; the nonce is then reused per origin.
func TestDPoPNonceRetry(t *testing.T) {
	ctx := context.Background()
	as := startAS(t, oauthtest.Options{DPoPNonce: true})
	api := newDPoPAPI(t, as, demoapi.ResourceConfig{DPoPNonce: true})
	svc := serviceDPoP(t, as, true)
	tok, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{api.resource}}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := as.TokenRequests("client_credentials"); n != 2 {
		t.Fatalf("token endpoint: %d requests, want 2 (one use_dpop_nonce, one retry)", n)
	}
	if _, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{api.resource}}).TokenContext(ctx); err != nil {
		t.Fatal(err)
	}
	if n := as.TokenRequests("client_credentials"); n != 3 {
		t.Fatalf("token endpoint: %d requests, want 3 (the nonce is kept)", n)
	}
	hc := api.client(t, oauth2.StaticTokenSource(tok))
	if code := get(t, hc, api.URL+"/v1/read"); code != 200 {
		t.Fatalf("API: %d", code)
	}
	if n := api.hits.Load(); n != 2 {
		t.Fatalf("resource: %d requests, want 2", n)
	}
	if code := get(t, hc, api.URL+"/v1/read"); code != 200 || api.hits.Load() != 3 {
		t.Fatalf("resource: %d, %d requests, want 3", code, api.hits.Load())
	}
	// A nonce the resource no longer accepts: again exactly one retry.
	api.api.DPoP().ExpireNonces()
	if code := get(t, hc, api.URL+"/v1/read"); code != 200 || api.hits.Load() != 5 {
		t.Fatalf("resource after nonce expiry: %d, %d requests, want 5", code, api.hits.Load())
	}
}

// foreignProof is a proof made by an attacker with its own key.
func foreignProof(t *testing.T, method, htu, at string) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(at))
	b, _ := json.Marshal(map[string]any{"jti": "attacker-" + time.Now().String(), "htm": method, "htu": htu,
		"iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(sum[:])})
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// TestDPoPStolenTokenUseless: a DPoP-bound token copied with the proof
// that carried it, replayed, re-aimed at another URL or method, sent as
// Bearer, or proven with another key: every use is refused by the API.
func TestDPoPStolenTokenUseless(t *testing.T) {
	ctx := context.Background()
	as := startAS(t, oauthtest.Options{})
	api := newDPoPAPI(t, as, demoapi.ResourceConfig{})
	svc := serviceDPoP(t, as, true)
	tok, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{api.resource}}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code := get(t, api.client(t, oauth2.StaticTokenSource(tok)), api.URL+"/v1/read"); code != 200 {
		t.Fatalf("legitimate call: %d", code)
	}
	stolen := api.last()
	at := strings.TrimPrefix(stolen.Get("Authorization"), "DPoP ")
	for _, tc := range []struct {
		name, method, path string
		h                  http.Header
		why                string
	}{
		{"replayed proof", "GET", "/v1/read", http.Header{"Authorization": {"DPoP " + at}, "Dpop": {stolen.Get("DPoP")}}, "replayed"},
		{"proof for another URL", "GET", "/v1/other", http.Header{"Authorization": {"DPoP " + at}, "Dpop": {stolen.Get("DPoP")}}, "htu"},
		{"proof for another method", "POST", "/v1/read", http.Header{"Authorization": {"DPoP " + at}, "Dpop": {stolen.Get("DPoP")}}, "htm"},
		{"bound token as Bearer", "GET", "/v1/read", http.Header{"Authorization": {"Bearer " + at}}, "Bearer"},
		{"bound token without proof", "GET", "/v1/read", http.Header{"Authorization": {"DPoP " + at}}, "DPoP header"},
		{"proof from another key", "GET", "/v1/read", http.Header{"Authorization": {"DPoP " + at}, "Dpop": {foreignProof(t, "GET", api.URL+"/v1/read", at)}}, "bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ch := raw(t, api, tc.method, tc.path, tc.h)
			if code != http.StatusUnauthorized || !strings.Contains(ch, tc.why) {
				t.Fatalf("status %d, challenge %q (want 401 about %q)", code, ch, tc.why)
			}
		})
	}
}

// TestPARFlow: with a PAR endpoint the browser URL carries only client_id
// and request_uri; a server requiring PAR refuses the plain flow, and a
// request_uri is single use.
func TestPARFlow(t *testing.T) {
	ctx := context.Background()
	as := startAS(t, oauthtest.Options{RequirePAR: true})
	c := dpopNative(t, as, func(c *oauthclient.Config) { c.DPoP = false })
	if md := c.Metadata(); md.PushedAuthorizationRequestEndpoint != as.PARURL() || !md.RequirePushedAuthorizationRequests {
		t.Fatalf("metadata: %+v", md)
	}
	p, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if len(q) != 2 || q.Get("client_id") != oauthtest.ClientNative || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("browser URL query: %v", q)
	}
	if as.PushedCount() != 1 {
		t.Fatalf("pushed requests: %d", as.PushedCount())
	}
	cb, err := as.Login(ctx, authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	cbu, _ := url.Parse(cb)
	toks, err := c.Exchange(ctx, p, cbu.Query())
	if err != nil || toks.IDToken() == nil {
		t.Fatalf("exchange: %v", err)
	}
	// Single use.
	if _, err := as.Login(ctx, authURL, "alice"); err == nil {
		t.Fatal("a request_uri was used twice")
	}
	// The plain flow is refused by the server: a client that does not
	// push (static metadata without the endpoint) gets no login.
	md := c.Metadata()
	md.PushedAuthorizationRequestEndpoint, md.RequirePushedAuthorizationRequests = "", false
	plain, err := oauthclient.New(ctx, oauthclient.Config{Issuer: as.Issuer, ClientID: oauthtest.ClientNative,
		RedirectURL: "http://127.0.0.1:41000/callback", Scopes: []string{"openid"}, Metadata: &md,
		HTTP: strictnet.Config{RootCAs: as.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	_, plainURL, err := plain.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pu, _ := url.Parse(plainURL); pu.Query().Get("code_challenge") == "" {
		t.Fatal("the plain flow should carry its parameters")
	}
	if _, err := as.Login(ctx, plainURL, "alice"); err == nil {
		t.Fatal("a server requiring PAR accepted a plain authorization request")
	}
	// Metadata requiring PAR without an endpoint: Start refuses.
	md.RequirePushedAuthorizationRequests = true
	strict, _ := oauthclient.New(ctx, oauthclient.Config{Issuer: as.Issuer, ClientID: oauthtest.ClientNative,
		RedirectURL: "http://127.0.0.1:41000/callback", Metadata: &md, HTTP: strictnet.Config{RootCAs: as.RootCAs()}})
	if _, _, err := strict.Start(ctx, oauthclient.StartOptions{}); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("required PAR without endpoint: %v", err)
	}
}

// TestResourceIndicators: resource on authorization, token and refresh
// requests makes the access token's audience that resource; a resource
// expecting another audience refuses it, and a resource not authorized at
// login cannot be asked for at refresh.
func TestResourceIndicators(t *testing.T) {
	ctx := context.Background()
	as := startAS(t, oauthtest.Options{AccessTokenLifetime: 2 * time.Second, PAR: true})
	apiA := newDPoPAPI(t, as, demoapi.ResourceConfig{})
	apiB := newDPoPAPI(t, as, demoapi.ResourceConfig{})
	var forms []url.Values
	var mu sync.Mutex
	as.SetHook(func(r *http.Request) {
		if r.URL.Path == "/oauth/token" || r.URL.Path == "/par" {
			r.ParseForm()
			mu.Lock()
			forms = append(forms, r.Form)
			mu.Unlock()
		}
	})
	c := dpopNative(t, as, func(c *oauthclient.Config) { c.DPoP = false })
	toks, _ := flow.Login(t, as, c, oauthclient.StartOptions{Resource: []string{apiA.resource}}, "alice")
	mu.Lock()
	if forms[0].Get("resource") != apiA.resource || forms[len(forms)-1].Get("resource") != apiA.resource {
		t.Fatalf("resource not on authorization and token request: %v", forms)
	}
	mu.Unlock()
	src := oauth2.StaticTokenSource(toks.OAuth2Token())
	if code := get(t, apiA.client(t, src), apiA.URL+"/v1/read"); code != 200 {
		t.Fatalf("API A: %d", code)
	}
	if code := get(t, apiB.client(t, src), apiB.URL+"/v1/read"); code != 401 {
		t.Fatalf("API B accepted a token for A: %d", code)
	}
	// Refresh with the resource: sent, and the new token is for A.
	ts, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Key: "ri", Resource: []string{apiA.resource}}, toks)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if code := get(t, apiA.client(t, ts), apiA.URL+"/v1/read"); code != 200 {
		t.Fatalf("API A after refresh: %d", code)
	}
	mu.Lock()
	last := forms[len(forms)-1]
	mu.Unlock()
	if last.Get("grant_type") != "refresh_token" || last.Get("resource") != apiA.resource {
		t.Fatalf("refresh form: %v", last)
	}
	// A resource never authorized cannot be obtained by refresh.
	toks2, _ := flow.Login(t, as, c, oauthclient.StartOptions{Resource: []string{apiA.resource}}, "alice")
	ts2, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Key: "ri2", Resource: []string{apiB.resource}}, toks2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := ts2.Token(); err == nil {
		t.Fatal("refresh for a resource not authorized at login succeeded")
	}
	// Client credentials for B only: accepted by B, refused by A.
	svc := serviceDPoP(t, as, false)
	st, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{apiB.resource}}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if get(t, apiB.client(t, oauth2.StaticTokenSource(st)), apiB.URL+"/v1/read") != 200 ||
		get(t, apiA.client(t, oauth2.StaticTokenSource(st)), apiA.URL+"/v1/read") != 401 {
		t.Fatal("client credentials audience not honoured")
	}
	if _, err := svc.ClientCredentials(oauthclient.GrantOptions{Resource: []string{"not a uri#frag"}}).TokenContext(ctx); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("bad resource: %v", err)
	}
}
