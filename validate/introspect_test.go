package validate

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
)

const opaqueToken = "opaque-access-token-0123456789"

// introspectionServer is a TLS endpoint that checks the exact request and
// answers with a canned body per token.
type introspectionServer struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	body  map[string]string // token -> JSON
	code  int
}

func newIntrospectionServer(t *testing.T) *introspectionServer {
	s := &introspectionServer{body: map[string]string{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("method %s, content type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if u, p, ok := r.BasicAuth(); !ok || u != testClientID || p != "client-secret" {
			t.Errorf("client authentication missing")
		}
		raw, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(raw))
		if err != nil || len(form) != 2 || form.Get("token_type_hint") != "access_token" || len(form["token"]) != 1 {
			t.Errorf("unexpected form %q", raw)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("token or anything else in the URL: %q", r.URL.RawQuery)
		}
		s.mu.Lock()
		body, code := s.body[form.Get("token")], s.code
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if code != 0 {
			w.WriteHeader(code)
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *introspectionServer) set(token, body string) {
	s.mu.Lock()
	s.body[token] = body
	s.mu.Unlock()
}

func newTestIntrospector(t *testing.T, s *introspectionServer, clk *clock, cacheSize int) *introspector {
	t.Helper()
	in, err := newIntrospector(IntrospectionConfig{
		Endpoint:   s.URL + "/introspect",
		HTTPClient: strictFor(t, s.Server),
		Authenticate: func(req *http.Request, form url.Values) error {
			req.SetBasicAuth(testClientID, "client-secret")
			return nil
		},
		Issuer: testIssuer, Audience: testResource,
		Now: clk.Now, CacheSize: cacheSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func activeBody(extra string) string {
	return `{"active":true,"iss":"` + testIssuer + `","aud":["` + testResource + `"],"sub":"user-42","client_id":"` + testClientID +
		`","scope":"read write","exp":` + formatInt(testNow.Add(5*time.Minute).Unix()) + extra + `}`
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

func TestIntrospect(t *testing.T) {
	s := newIntrospectionServer(t)
	clk := newClock()
	in := newTestIntrospector(t, s, clk, 0)
	ctx := context.Background()
	s.set(opaqueToken, activeBody(""))
	at, err := in.verify(ctx, opaqueToken)
	if err != nil {
		t.Fatal(err)
	}
	if at.Subject != "user-42" || at.ClientID != testClientID || at.RequireScopes("read", "write") != nil {
		t.Fatalf("unexpected %+v", at)
	}
	var ise *InsufficientScopeError
	if err := at.RequireScopes("admin"); !errors.As(err, &ise) {
		t.Fatalf("RequireScopes: %v", err)
	}
	// iss is optional in RFC 7662.
	s.set(opaqueToken, strings.Replace(activeBody(""), `"iss"`, `"issuer"`, 1))
	if _, err := in.verify(ctx, opaqueToken); err != nil {
		t.Fatalf("response without iss: %v", err)
	}

	for _, tc := range []struct {
		name string
		body string
		code int
		want error
	}{
		{"active false", `{"active":false}`, 0, errInactive},
		{"active missing", `{"sub":"x"}`, 0, errInactive},
		{"active as string", `{"active":"true"}`, 0, errInactive},
		{"active as 1", `{"active":1}`, 0, errInactive},
		{"wrong iss", strings.Replace(activeBody(""), testIssuer, testIssuer+"/", 1), 0, errIssuer},
		{"iss empty", strings.Replace(activeBody(""), testIssuer, "", 1), 0, errIssuer},
		{"iss not a string", strings.Replace(activeBody(""), `"`+testIssuer+`"`, `7`, 1), 0, errMalformed},
		{"aud without us", strings.Replace(activeBody(""), testResource, "https://other.test", 1), 0, errAudience},
		{"expired", `{"active":true,"iss":"` + testIssuer + `","aud":"` + testResource + `","exp":` + formatInt(testNow.Add(-2*time.Minute).Unix()) + `}`, 0, errExpired},
		{"nbf future", activeBody(`,"nbf":` + formatInt(testNow.Add(2*time.Minute).Unix())), 0, errNotYetValid},
		{"exp as string", `{"active":true,"iss":"` + testIssuer + `","aud":"` + testResource + `","exp":"soon"}`, 0, errMalformed},
		{"HTML", `<html>login</html>`, 0, errIntrospection},
		{"status 401", `{"error":"invalid_client"}`, 401, errIntrospection},
		{"status 500", `oops`, 500, errIntrospection},
		{"over 1 MiB", `{"active":true,"pad":"` + strings.Repeat("A", 1<<20) + `"}`, 0, errIntrospection},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.mu.Lock()
			s.body[opaqueToken], s.code = tc.body, tc.code
			s.mu.Unlock()
			_, err := in.verify(ctx, opaqueToken)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), opaqueToken) || strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("error leaks token or body: %v", err)
			}
		})
	}
}

func TestIntrospectNoRedirect(t *testing.T) {
	var reached atomic.Bool
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Store(true) }))
	defer target.Close()
	red := httptest.NewTLSServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer red.Close()
	in, err := NewIntrospector(IntrospectionConfig{Endpoint: red.URL, HTTPClient: strictFor(t, red),
		Authenticate: func(*http.Request, url.Values) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Verify(context.Background(), opaqueToken); !errors.Is(err, errIntrospection) {
		t.Fatalf("got %v", err)
	}
	if reached.Load() {
		t.Fatal("redirect followed: the token went to another endpoint")
	}
}

func TestIntrospectCache(t *testing.T) {
	s := newIntrospectionServer(t)
	clk := newClock()
	in := newTestIntrospector(t, s, clk, 3)
	ctx := context.Background()
	s.set(opaqueToken, activeBody(""))
	for i := 0; i < 5; i++ {
		at, err := in.verify(ctx, opaqueToken)
		if err != nil {
			t.Fatal(err)
		}
		at.Audience[0] = "tampered" // callers get copies
		at.Scopes[0] = "admin"
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1 (cached)", n)
	}
	at, _ := in.verify(ctx, opaqueToken)
	if at.Audience[0] != testResource || at.Scopes[0] != "read" {
		t.Fatal("cached result was modified through a returned copy")
	}
	// The cache is keyed by the SHA-256 of the token, never the token.
	in.mu.Lock()
	if _, ok := in.cache[sha256.Sum256([]byte(opaqueToken))]; !ok || len(in.cache) != 1 {
		t.Fatal("cache entry not keyed by SHA-256 of the token")
	}
	in.mu.Unlock()
	// Until exp only.
	clk.Advance(5*time.Minute + time.Second)
	s.set(opaqueToken, `{"active":false}`)
	if _, err := in.verify(ctx, opaqueToken); !errors.Is(err, errInactive) {
		t.Fatalf("after exp: %v", err)
	}
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
	// Inactive results are not cached, and the size is bounded.
	clk = newClock()
	in = newTestIntrospector(t, s, clk, 3)
	for i := 0; i < 10; i++ {
		tok := opaqueToken + formatInt(int64(i))
		s.set(tok, activeBody(""))
		if _, err := in.verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if in.cacheLen() > 3 {
			t.Fatalf("cache grew to %d", in.cacheLen())
		}
	}
	// Results without exp are not cached.
	in = newTestIntrospector(t, s, clk, 3)
	s.set("no-exp", `{"active":true,"iss":"`+testIssuer+`","aud":"`+testResource+`"}`)
	before := s.calls.Load()
	in.verify(ctx, "no-exp")
	in.verify(ctx, "no-exp")
	if s.calls.Load()-before != 2 || in.cacheLen() != 0 {
		t.Fatal("result without exp was cached")
	}
}

func TestNewIntrospectorConfig(t *testing.T) {
	auth := func(*http.Request, url.Values) error { return nil }
	for _, cfg := range []IntrospectionConfig{
		{Endpoint: "http://127.0.0.1/introspect", Authenticate: auth},
		{Endpoint: "https://127.0.0.1/introspect"},
		{Endpoint: "https://127.0.0.1/introspect", Authenticate: auth, CacheSize: -1},
		{Endpoint: "https://127.0.0.1/introspect", Authenticate: auth, Leeway: 6 * time.Minute},
	} {
		if _, err := NewIntrospector(cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("%+v: %v", cfg.Endpoint, err)
		}
	}
	failing := func(*http.Request, url.Values) error { return errors.New("no key") }
	in, err := NewIntrospector(IntrospectionConfig{Endpoint: "https://127.0.0.1:1/introspect", Authenticate: failing})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Verify(context.Background(), opaqueToken); !errors.Is(err, errIntrospection) {
		t.Fatalf("failing hook: %v", err)
	}
}
