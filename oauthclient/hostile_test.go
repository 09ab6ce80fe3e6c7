package oauthclient

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// hostileAS is a hand-written authorization server for hostile cases only:
// it serves whatever metadata and token responses a test sets, and counts
// every request that reaches the token endpoint.
type hostileAS struct {
	srv        *httptest.Server
	key        *rsa.PrivateKey
	tokenCalls atomic.Int32
	mu         sync.Mutex
	md         map[string]any
	token      func(w http.ResponseWriter, r *http.Request) // nil: a valid response
	nonce      string
	userinfo   string                                       // body of the userinfo endpoint
	userinfoFn func(w http.ResponseWriter, r *http.Request) // if set, serves userinfo instead
	lastForm   url.Values
	lastHeader http.Header
}

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func newHostileAS(t *testing.T) *hostileAS {
	t.Helper()
	h := &hostileAS{key: testKey}
	mux := http.NewServeMux()
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	iss := h.srv.URL
	h.md = map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"token_endpoint":                                 iss + "/token",
		"jwks_uri":                                       iss + "/jwks",
		"revocation_endpoint":                            iss + "/revoke",
		"userinfo_endpoint":                              iss + "/userinfo",
		"response_types_supported":                       []string{"code"},
		"code_challenge_methods_supported":               []string{"S256"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"authorization_response_iss_parameter_supported": true,
	}
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.md)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &h.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
		json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		fn := h.userinfoFn
		h.mu.Unlock()
		if fn != nil {
			fn(w, r)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(h.userinfo))
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		h.tokenCalls.Add(1)
		r.ParseForm()
		h.mu.Lock()
		h.lastForm, h.lastHeader = r.PostForm, r.Header.Clone()
		fn := h.token
		h.mu.Unlock()
		if fn != nil {
			fn(w, r)
			return
		}
		h.writeTokens(w, nil)
	})
	return h
}

func (h *hostileAS) set(k string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v == nil {
		delete(h.md, k)
	} else {
		h.md[k] = v
	}
}

func (h *hostileAS) setToken(fn func(w http.ResponseWriter, r *http.Request)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token = fn
}

func (h *hostileAS) idToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	base := map[string]any{
		"iss": h.srv.URL, "sub": "user-1", "aud": "client-1",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "nonce": h.nonce,
	}
	for k, v := range claims {
		base[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: h.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(base)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// writeTokens answers a valid token response, with fields overridden by extra.
func (h *hostileAS) writeTokens(w http.ResponseWriter, extra map[string]any) {
	resp := map[string]any{
		"access_token": "AT-secret-value", "token_type": "Bearer", "expires_in": 3600,
		"refresh_token": "RT-secret-value", "scope": "openid profile",
	}
	h.mu.Lock()
	nonce := h.nonce
	h.mu.Unlock()
	if nonce != "" {
		at := resp["access_token"].(string)
		sum := sha256.Sum256([]byte(at))
		resp["id_token"] = h.idToken(nopTB{}, map[string]any{"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16])})
	}
	for k, v := range extra {
		if v == nil {
			delete(resp, k)
		} else {
			resp[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

type nopTB struct{ testing.TB }

func (nopTB) Helper()               {}
func (nopTB) Fatal(args ...any)     { panic(args) }
func (nopTB) Fatalf(string, ...any) { panic("fatal") }

func (h *hostileAS) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.srv.Certificate())
	return p
}

func (h *hostileAS) config() Config {
	return Config{
		Issuer:      h.srv.URL,
		ClientID:    "client-1",
		RedirectURL: "https://app.example/callback",
		Scopes:      []string{"openid", "profile"},
		HTTP:        strictnet.Config{RootCAs: h.pool()},
	}
}

func (h *hostileAS) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(context.Background(), h.config())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// start begins a flow and lets the server know the nonce, as a real server would.
func (h *hostileAS) start(t *testing.T, c *Client) (*Pending, url.Values) {
	t.Helper()
	p, authURL, err := c.Start(context.Background(), StartOptions{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	u, _ := url.Parse(authURL)
	h.mu.Lock()
	h.nonce = u.Query().Get("nonce")
	h.mu.Unlock()
	return p, url.Values{"code": {"the-code"}, "state": {p.State()}, "iss": {h.srv.URL}}
}

func TestExchangeRefusesBeforeTokenRequest(t *testing.T) {
	cases := []struct {
		name   string
		params func(p *Pending, good url.Values) url.Values
		setup  func(h *hostileAS)
		now    func() time.Time
		want   error
	}{
		{name: "state missing", params: func(p *Pending, v url.Values) url.Values { v.Del("state"); return v }, want: ErrStateMismatch},
		{name: "state wrong", params: func(p *Pending, v url.Values) url.Values { v.Set("state", p.State()[:42]+"x"); return v }, want: ErrStateMismatch},
		{name: "state empty", params: func(p *Pending, v url.Values) url.Values { v.Set("state", ""); return v }, want: ErrStateMismatch},
		{name: "state repeated", params: func(p *Pending, v url.Values) url.Values { v.Add("state", p.State()); return v }, want: ErrStateMismatch},
		{name: "state expired", params: func(p *Pending, v url.Values) url.Values { return v }, now: func() time.Time { return time.Now().Add(11 * time.Minute) }, want: ErrFlowExpired},
		{name: "error with wrong state", params: func(p *Pending, v url.Values) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {"forged"}}
		}, want: ErrStateMismatch},
		{name: "error parameter", params: func(p *Pending, v url.Values) url.Values {
			return url.Values{"error": {"access_denied"}, "error_description": {"<b>no</b>"}, "state": {p.State()}}
		}, want: ErrAuthorizationServer},
		{name: "iss missing while advertised", params: func(p *Pending, v url.Values) url.Values { v.Del("iss"); return v }, want: ErrIssuerMismatch},
		{name: "iss wrong", params: func(p *Pending, v url.Values) url.Values { v.Set("iss", "https://evil.example"); return v }, want: ErrIssuerMismatch},
		{name: "iss trailing slash", params: func(p *Pending, v url.Values) url.Values { v.Set("iss", v.Get("iss")+"/"); return v }, want: ErrIssuerMismatch},
		{name: "iss repeated", params: func(p *Pending, v url.Values) url.Values { v.Add("iss", v.Get("iss")); return v }, want: ErrIssuerMismatch},
		{name: "iss wrong though not advertised", setup: func(h *hostileAS) { h.set("authorization_response_iss_parameter_supported", false) },
			params: func(p *Pending, v url.Values) url.Values { v.Set("iss", "https://evil.example"); return v }, want: ErrIssuerMismatch},
		{name: "code missing", params: func(p *Pending, v url.Values) url.Values { v.Del("code"); return v }, want: errMissingCode},
		{name: "code repeated", params: func(p *Pending, v url.Values) url.Values { v.Add("code", "c2"); return v }, want: errMissingCode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			cfg := h.config()
			if tc.now != nil {
				start := time.Now()
				var calls atomic.Int32
				cfg.Now = func() time.Time {
					if calls.Add(1) == 1 {
						return start // Start sees the real time
					}
					return tc.now()
				}
			}
			c, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, good := h.start(t, c)
			_, err = c.Exchange(context.Background(), p, tc.params(p, good))
			if !isErr(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ae *AuthError
			if errors.As(err, &ae) && (ae.Code != "access_denied" || ae.Description != "<b>no</b>" || ae.Endpoint != "authorization") {
				t.Fatalf("authorization error not carried as sent: %+v", ae)
			}
			if n := h.tokenCalls.Load(); n != 0 {
				t.Fatalf("token endpoint received %d requests, want 0", n)
			}
		})
	}
}

func TestExchangeOKAgainstHostileBaseline(t *testing.T) {
	// The baseline of the hostile table: the same server with good values
	// completes, so every refusal above is caused by its one change.
	h := newHostileAS(t)
	c := h.client(t)
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	if toks.OAuth2Token().AccessToken != "AT-secret-value" || toks.Subject() != "user-1" {
		t.Fatalf("unexpected tokens %v", toks)
	}
	if h.tokenCalls.Load() != 1 {
		t.Fatal("want one token request")
	}
	f := h.lastForm
	if f.Get("grant_type") != "authorization_code" || f.Get("code") != "the-code" || f.Get("redirect_uri") != "https://app.example/callback" ||
		len(f.Get("code_verifier")) < 43 || f.Get("client_id") != "client-1" || f.Has("client_secret") {
		t.Fatalf("unexpected token request form %v", f)
	}
}

func TestAuthorizationURL(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	p, authURL, err := c.Start(context.Background(), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("state") != p.State() {
		t.Fatalf("bad auth URL query %v", q)
	}
	st, _ := base64.RawURLEncoding.DecodeString(q.Get("state"))
	n, _ := base64.RawURLEncoding.DecodeString(q.Get("nonce"))
	if len(st) < 32 || len(n) < 32 {
		t.Fatalf("state %d bytes, nonce %d bytes: want >= 32 (256 bits)", len(st), len(n))
	}
	sum := sha256.Sum256([]byte(p.p.Verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatal("code_challenge is not S256 of the verifier")
	}
	p2, _, _ := c.Start(context.Background(), StartOptions{})
	if p2.State() == p.State() || p2.p.Verifier == p.p.Verifier || p2.p.Nonce == p.p.Nonce {
		t.Fatal("flows share random values")
	}
}

func TestPKCEWithoutS256RefusesToStart(t *testing.T) {
	for _, methods := range [][]string{{"plain"}, {"S512"}} {
		h := newHostileAS(t)
		h.set("code_challenge_methods_supported", methods)
		if _, err := New(context.Background(), h.config()); !isErr(err, strictnet.ErrPolicy) {
			t.Fatalf("methods %v: New err = %v, want ErrPolicy", methods, err)
		}
		// A client without a redirect URL (a service) may be created, but no flow can start.
		cfg := h.config()
		cfg.RedirectURL = ""
		c, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Start(context.Background(), StartOptions{RedirectURL: "https://app.example/cb"}); !isErr(err, strictnet.ErrPolicy) {
			t.Fatalf("Start err = %v, want ErrPolicy", err)
		}
	}
}

func TestResponseTypeCodeRequired(t *testing.T) {
	h := newHostileAS(t)
	h.set("response_types_supported", []string{"token", "id_token"})
	if _, err := New(context.Background(), h.config()); !isErr(err, strictnet.ErrPolicy) {
		t.Fatalf("err = %v, want ErrPolicy", err)
	}
}

func TestDiscoveryChecks(t *testing.T) {
	cases := []struct {
		name string
		k    string
		v    any
		want error
	}{
		{"issuer differs", "issuer", "https://evil.example", ErrIssuerMismatch},
		{"issuer trailing slash", "issuer", "ISSUER/", ErrIssuerMismatch},
		{"http token endpoint", "token_endpoint", "http://127.0.0.1/token", strictnet.ErrPolicy},
		{"http jwks", "jwks_uri", "http://127.0.0.1/jwks", strictnet.ErrPolicy},
		{"http authorize", "authorization_endpoint", "http://127.0.0.1/a", strictnet.ErrPolicy},
		{"http revocation", "revocation_endpoint", "http://127.0.0.1/r", strictnet.ErrPolicy},
		{"http introspection", "introspection_endpoint", "http://127.0.0.1/i", strictnet.ErrPolicy},
		{"http device", "device_authorization_endpoint", "http://127.0.0.1/d", strictnet.ErrPolicy},
		{"http userinfo", "userinfo_endpoint", "http://127.0.0.1/u", strictnet.ErrPolicy},
		{"no token endpoint", "token_endpoint", nil, ErrMalformedResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			v := tc.v
			if s, ok := v.(string); ok {
				v = strings.Replace(s, "ISSUER", h.srv.URL, 1)
			}
			h.set(tc.k, v)
			if _, err := New(context.Background(), h.config()); !isErr(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
