package oauthclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// keeper is a tracing wrapper that keeps every request it is given, every
// response the transport returns to it and every response it returns, and
// the RoundTripper it wraps.
type keeper struct {
	mu    sync.Mutex
	next  http.RoundTripper
	reqs  []*http.Request
	resps []*http.Response
}

func (k *keeper) wrap(next http.RoundTripper) http.RoundTripper {
	k.mu.Lock()
	k.next = next
	k.mu.Unlock()
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		k.mu.Lock()
		k.reqs = append(k.reqs, r)
		k.mu.Unlock()
		resp, err := next.RoundTrip(r)
		if resp != nil {
			k.mu.Lock()
			k.resps = append(k.resps, resp)
			k.mu.Unlock()
		}
		return resp, err
	})
}

// dump renders everything reachable from the kept objects now: each
// request's headers, URL, current body and GetBody, the response it is
// answered with; each response's headers, trailers, current body and
// request. A body read is put back, so a later dump sees what the object
// then holds.
func (k *keeper) dump() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b bytes.Buffer
	var req func(r *http.Request, depth int)
	var resp func(r *http.Response, depth int)
	readBody := func(rc *io.ReadCloser) {
		if *rc == nil {
			return
		}
		data, _ := io.ReadAll(*rc)
		b.Write(data)
		b.WriteByte('\n')
		*rc = io.NopCloser(bytes.NewReader(data))
	}
	req = func(r *http.Request, depth int) {
		if r == nil || depth > 3 {
			return
		}
		fmt.Fprintf(&b, "%s %s host=%s header=%v trailer=%v form=%v postform=%v\n", r.Method, r.URL, r.Host, r.Header, r.Trailer, r.Form, r.PostForm)
		readBody(&r.Body)
		if r.GetBody != nil {
			if rc, err := r.GetBody(); err == nil && rc != nil {
				data, _ := io.ReadAll(rc)
				b.Write(data)
				b.WriteByte('\n')
			}
		}
		resp(r.Response, depth+1)
	}
	resp = func(r *http.Response, depth int) {
		if r == nil || depth > 3 {
			return
		}
		fmt.Fprintf(&b, "%s header=%v trailer=%v\n", r.Status, r.Header, r.Trailer)
		readBody(&r.Body)
		req(r.Request, depth+1)
	}
	for _, r := range k.reqs {
		req(r, 0)
	}
	for _, r := range k.resps {
		resp(r, 0)
	}
	return b.String()
}

// TestWrapperKeepsNothing (S30): a tracing wrapper that keeps every
// request and response it sees and reads them again after every later
// call finds no credential, at any time: not the Basic client secret of
// the token calls, the code or code_verifier of the code exchange, the
// refresh token of a refresh (body or GetBody), the tokens of the answers,
// the bearer token or the DPoP proof and token of API calls, nor a
// Set-Cookie of the token endpoint or the API. The flows work, the SDK
// reading its own answers; a kept request sent again after its call is
// refused.
func TestWrapperKeepsNothing(t *testing.T) {
	const clientSecret = "client-secret-kept-nowhere"
	k := &keeper{}
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "as", Value: "token-endpoint-cookie-secret"})
		h.writeTokens(w, nil)
	})
	var mu sync.Mutex
	var apiSaw []string // what the API received: the credentials the wrapper must not reach
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" { // a same-origin redirect: the API client follows it with the token
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "api-session-cookie-secret"})
			http.Redirect(w, r, "/me", http.StatusTemporaryRedirect)
			return
		}
		mu.Lock()
		apiSaw = append(apiSaw, r.Header.Get("Authorization"), r.Header.Get("DPoP"))
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "api-session-cookie-secret"})
		io.WriteString(w, `{"contact":"ok"}`)
	}))
	defer api.Close()

	secrets := []string{clientSecret, base64.StdEncoding.EncodeToString([]byte("client-1:" + clientSecret)),
		"the-code", "code_verifier", "refresh_token", "AT-secret-value", "RT-secret-value", "AT-dpop-secret",
		"token-endpoint-cookie-secret", "api-session-cookie-secret", "eyJ", "Bearer", "DPoP "}
	check := func(step string) {
		t.Helper()
		text := k.dump()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("after %s, what the wrapper kept holds %q", step, s)
			}
		}
	}

	cfg := h.config()
	cfg.ClientSecret = mustSecret(clientSecret)
	cfg.HTTP.Wrap = k.wrap
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	check("discovery")
	p, cb := h.start(t, c)
	secrets = append(secrets, p.p.Verifier)
	toks, err := c.Exchange(context.Background(), p, cb)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.lastHeader.Get("Authorization"); !strings.HasPrefix(got, "Basic ") || h.lastForm.Get("code_verifier") == "" {
		t.Fatalf("the token endpoint got Authorization %q and form %v: the test needs Basic and a verifier", got, h.lastForm)
	}
	check("the code exchange")

	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: &tokenstore.Memory{}, Key: "k"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.nonce = ""
	h.mu.Unlock()
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	if h.lastForm.Get("refresh_token") != "RT-secret-value" {
		t.Fatalf("the refresh sent %v", h.lastForm)
	}
	check("the refresh")

	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool, Wrap: k.wrap}})
	if err != nil {
		t.Fatal(err)
	}
	call := func(hc *http.Client, path string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, api.URL+path, strings.NewReader(`{"q":1}`))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != `{"contact":"ok"}` || resp.Header.Get("Set-Cookie") == "" {
			t.Fatalf("the caller got %q, Set-Cookie %q: the SDK must read the whole answer", body, resp.Header.Get("Set-Cookie"))
		}
	}
	call(hc, "/me")
	check("an API call with a bearer token")

	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	dsrc := oauth2.StaticTokenSource(dpop.WithKey(&oauth2.Token{AccessToken: "AT-dpop-secret", TokenType: "DPoP"}, key))
	dc, err := apiclient.New(dsrc, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool, Wrap: k.wrap}})
	if err != nil {
		t.Fatal(err)
	}
	call(dc, "/me")
	check("an API call with a DPoP token")
	mu.Lock()
	for _, s := range apiSaw {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	proofs := len(apiSaw)
	mu.Unlock()
	if proofs != 4 || !strings.HasPrefix(apiSaw[2], "DPoP ") || apiSaw[3] == "" {
		t.Fatalf("the API saw %d headers %q: the test needs a bearer and a DPoP call", proofs, apiSaw)
	}

	// Calls through a same-origin redirect (the second hop's request
	// knows the first answer), then everything kept is read again.
	call(hc, "/old")
	call(dc, "/old")
	check("later calls through a redirect")

	// A kept request sent again once its call is over reaches nothing.
	k.mu.Lock()
	next, reqs := k.next, append([]*http.Request(nil), k.reqs...)
	k.mu.Unlock()
	mu.Lock()
	before := len(apiSaw)
	mu.Unlock()
	for _, r := range reqs {
		if r.URL.Path != "/me" {
			continue
		}
		if resp, err := next.RoundTrip(r); !errors.Is(err, strictnet.ErrPolicy) {
			if resp != nil {
				resp.Body.Close()
			}
			t.Fatalf("a kept request sent again: %v, want ErrPolicy", err)
		}
	}
	mu.Lock()
	after := len(apiSaw)
	mu.Unlock()
	if after != before {
		t.Fatalf("the API received %d requests sent again by the wrapper", (after-before)/2)
	}
	check("the end")
	if len(k.reqs) < 8 || len(k.resps) < 8 {
		t.Fatalf("the wrapper kept %d requests and %d responses: it did not see every call", len(k.reqs), len(k.resps))
	}
}

// TestWrapperErrorKeepsRotation (S23, S30): a wrapper that returns an
// error after the strict transport got the server's answer cannot make the
// SDK lose it: the refresh fails, the rotated refresh token is stored, and
// the next refresh sends it, never the spent one.
func TestWrapperErrorKeepsRotation(t *testing.T) {
	var armed atomic.Bool
	failing := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err == nil && r.URL.Path == "/token" && armed.CompareAndSwap(true, false) {
				return nil, errors.New("tracing exporter failed")
			}
			return resp, err
		})
	}
	src, store, clk, sent := refreshThroughWrap(t, failing)
	armed.Store(true)
	if _, err := src.Token(); err == nil || armed.Load() {
		t.Fatalf("Token through a failing wrapper = %v (wrapper reached: %v), want an error", err, !armed.Load())
	}
	checkRotationUsedNext(t, store, clk, src, sent)
}

// TestWrapperRetrySendsTokenOnce (S23, S30): a Wrap that retries (sends
// the token request it was given a second time, as a retrying layer
// would) must not present the refresh token twice: the first request may
// have rotated it (it did here), and a second one is a reuse that the
// provider answers by revoking the grant, while the rotation in the first
// answer would be dropped. The strict transport refuses the second send
// of an OAuth endpoint call with ErrPolicy; the first answer's rotation
// is stored, and the next refresh sends it.
func TestWrapperRetrySendsTokenOnce(t *testing.T) {
	var armed atomic.Bool
	retrying := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err != nil || r.URL.Path != "/token" || !armed.CompareAndSwap(true, false) {
				return resp, err
			}
			resp.Body.Close()
			return next.RoundTrip(r) // the same request again
		})
	}
	src, store, clk, sent := refreshThroughWrap(t, retrying)
	armed.Store(true)
	if _, err := src.Token(); !errors.Is(err, strictnet.ErrPolicy) || armed.Load() {
		t.Fatalf("Token through a retrying wrapper = %v (wrapper reached: %v), want ErrPolicy", err, !armed.Load())
	}
	checkRotationUsedNext(t, store, clk, src, sent)
}

// refreshThroughWrap logs in at a rotating hostile server through a client
// whose Wrap is wrap, and returns a token source over a Memory store whose
// access token is invalidated, so that its next Token call refreshes
// through wrap; sent lists the refresh tokens the server was given.
func refreshThroughWrap(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) (src *TokenSource, store *tokenstore.Memory, clk *testClock, sent func() []string) {
	t.Helper()
	h := newHostileAS(t)
	clk = newTestClock()
	cfg := h.config()
	cfg.Now = clk.Now
	cfg.HTTP.Wrap = wrap
	c, toks := loginWith(t, h, cfg)
	sent = rotatingToken(h)
	store = &tokenstore.Memory{}
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(toks.OAuth2Token())
	return src, store, clk, sent
}
