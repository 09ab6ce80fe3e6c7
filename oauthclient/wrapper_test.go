package oauthclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// wrappedFlow runs, with wrap as strictnet.Config.Wrap against a hostile server
// that answers real-looking tokens: a login (code exchange), a refresh
// through the engine, and an API call with the token. It returns the
// errors of the three steps.
func wrappedFlow(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper, api *httptest.Server) (login, refresh, call error) {
	t.Helper()
	h := newHostileAS(t)
	cfg := h.config()
	cfg.ClientSecret = mustSecret("client-secret-never-seen")
	cfg.HTTP.Wrap = wrap
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, cb := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, cb)
	if err != nil {
		return err, nil, nil
	}
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: &tokenstore.Memory{}, Key: "k"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.nonce = ""
	h.mu.Unlock()
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); err != nil {
		refresh = err
	}
	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	pool.AddCert(h.srv.Certificate())
	hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool, Wrap: wrap}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(api.URL + "/me")
	if err == nil {
		resp.Body.Close()
	}
	return nil, refresh, err
}

// credentials are what the flows above send or receive that a wrapper
// must never reach (S30).
var wrapperSecrets = []string{"client-secret-never-seen", "Y2xpZW50LTE6Y2xpZW50LXNlY3JldC1uZXZlci1zZWVu", // the Basic credential
	"AT-secret-value", "RT-secret-value", "the-code", "code_verifier", "refresh_token=", "Authorization", "eyJ"}

// TestWrapperCannotReachCredentials (S30): a tracing wrapper that reads
// everything it can reach (its request with its body through GetBody, the
// response's Request with its headers and body, the response's body and
// headers) gets no credential header, no request body and no
// token-bearing response body, while the code exchange, the refresh and
// the API call all work: the SDK still reads the real answers.
func TestWrapperCannotReachCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen bytes.Buffer
	note := func(b []byte) {
		mu.Lock()
		seen.Write(b)
		seen.WriteByte('\n')
		mu.Unlock()
	}
	spy := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			d, _ := httputil.DumpRequestOut(r, true)
			note(d)
			resp, err := next.RoundTrip(r)
			if err != nil {
				return nil, err
			}
			if rq := resp.Request; rq != nil {
				d, _ := httputil.DumpRequest(rq, false)
				note(d)
				if rq.GetBody != nil {
					if b, err := rq.GetBody(); err == nil {
						body, _ := io.ReadAll(b)
						note(body)
					}
				}
			}
			d, _ = httputil.DumpResponse(resp, true) // reads and replaces the body it was given
			note(d)
			return resp, nil
		})
	}
	var apiAuth atomic.Value
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiAuth.Store(r.Header.Get("Authorization"))
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "api-session-cookie-secret"})
		io.WriteString(w, `{"contact":"ok"}`)
	}))
	defer api.Close()
	login, refresh, call := wrappedFlow(t, spy, api)
	if login != nil || refresh != nil || call != nil {
		t.Fatalf("through the wrapper: login %v, refresh %v, API call %v", login, refresh, call)
	}
	if got, _ := apiAuth.Load().(string); !strings.HasPrefix(got, "Bearer AT-") {
		t.Fatalf("the API received %q", got)
	}
	mu.Lock()
	text := seen.String()
	mu.Unlock()
	if !strings.Contains(text, "/token") || !strings.Contains(text, "/me") {
		t.Fatal("the wrapper saw neither the token call nor the API call")
	}
	for _, s := range append(wrapperSecrets, "api-session-cookie-secret") {
		if strings.Contains(text, s) {
			t.Errorf("the wrapper reached %q", s)
		}
	}
}

// TestWrapperCannotRedirect (S30): a wrapper that sends the request it was
// given to another https host (trusted by the same roots, so TLS alone
// would not stop it) gets nothing delivered there: the strict transport
// checks the destination again after the wrapper and refuses, with an
// error matching ErrPolicy, for the token endpoint and for an API call
// (whose bearer token may only go to AllowedOrigins).
func TestWrapperCannotRedirect(t *testing.T) {
	var rogueHits atomic.Int32
	var rogueSeen atomic.Value
	rogue := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rogueHits.Add(1)
		d, _ := httputil.DumpRequest(r, true)
		rogueSeen.Store(string(d))
	}))
	defer rogue.Close()
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer api.Close()
	redirect := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/token" || r.URL.Path == "/me" {
				r2 := r.Clone(r.Context())
				u := *r.URL
				u.Host = strings.TrimPrefix(rogue.URL, "https://")
				r2.URL, r2.Host = &u, ""
				return next.RoundTrip(r2)
			}
			return next.RoundTrip(r)
		})
	}
	login, _, _ := wrappedFlow(t, redirect, api)
	if !errors.Is(login, strictnet.ErrPolicy) {
		t.Fatalf("the code exchange through a redirecting wrapper = %v, want ErrPolicy", login)
	}
	// The API call alone (a wrapper only on the API client).
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "AT-secret-value", TokenType: "Bearer"})
	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool, Wrap: redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Get(api.URL + "/me"); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("an API call through a redirecting wrapper = %v, want ErrPolicy", err)
	}
	if n := rogueHits.Load(); n != 0 {
		seen, _ := rogueSeen.Load().(string)
		t.Fatalf("the rogue host received %d requests; the last:\n%s", n, seen)
	}
}
