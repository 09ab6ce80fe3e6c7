package oauthclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// tokenRequestLog records the token requests the real server receives
// (through its hook): form and whether HTTP Basic was used.
type tokenRequestLog struct {
	mu    sync.Mutex
	forms []url.Values
	basic []bool
}

func (l *tokenRequestLog) hook(r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/token") {
		return
	}
	b, _ := io.ReadAll(r.Body)
	f, _ := url.ParseQuery(string(b))
	_, _, basic := r.BasicAuth()
	l.mu.Lock()
	l.forms = append(l.forms, f)
	l.basic = append(l.basic, basic)
	l.mu.Unlock()
}

func (l *tokenRequestLog) last(t *testing.T) (url.Values, bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.forms) == 0 {
		t.Fatal("no token request seen")
	}
	return l.forms[len(l.forms)-1], l.basic[len(l.basic)-1]
}

type serviceCase struct {
	name     string
	clientID string
	secret   string
	jwt      bool
	method   string
}

var serviceCases = []serviceCase{
	{"client_secret_basic", oauthtest.ClientService, oauthtest.ServiceSecret, false, "client_secret_basic"},
	{"client_secret_post", oauthtest.ClientServicePost, oauthtest.ServicePostSecret, false, "client_secret_post"},
	{"private_key_jwt", oauthtest.ClientPrivateKeyJWT, "", true, "private_key_jwt"},
}

func serviceClient(t *testing.T, srv *oauthtest.Server, sc serviceCase, now func() time.Time) *oauthclient.Client {
	t.Helper()
	cfg := oauthclient.Config{
		Issuer:     srv.Issuer,
		ClientID:   sc.clientID,
		AuthMethod: sc.method,
		Scopes:     []string{oauthtest.ScopeAPIRead},
		HTTP:       strictnet.Config{RootCAs: srv.RootCAs()},
		Now:        now,
	}
	if sc.secret != "" {
		t.Setenv("OAUTHSAFE_TEST_SERVICE_SECRET", sc.secret)
		s, err := secret.FromEnv("OAUTHSAFE_TEST_SERVICE_SECRET")
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientSecret = s
	}
	if sc.jwt {
		cfg.PrivateKey = srv.ClientKey
		cfg.KeyID = srv.ClientKeyID
	}
	c, err := oauthclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// introspectActive asks the real server whether tok is active, as the
// resource server would.
func introspectActive(t *testing.T, srv *oauthtest.Server, tok string) (bool, map[string]any) {
	t.Helper()
	m, err := introspect(srv, tok)
	if err != nil {
		t.Fatal(err)
	}
	return m["active"] == true, m
}

func introspect(srv *oauthtest.Server, tok string) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, srv.IntrospectionURL, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oauthtest.ClientResource, oauthtest.ResourceSecret)
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func TestServiceTokenSourceAgainstRealServer(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	log := &tokenRequestLog{}
	srv.SetHook(log.hook)
	for _, sc := range serviceCases {
		t.Run(sc.name, func(t *testing.T) {
			srv.Reset()
			c := serviceClient(t, srv, sc, nil)
			src := c.ClientCredentials(oauthclient.GrantOptions{Resource: []string{"https://api.example/"}, NoDPoP: true /* the bearer path; DPoP: e2e/machine */})
			tok, err := src.Token()
			if err != nil {
				t.Fatal(err)
			}
			again, err := src.TokenContext(context.Background())
			if err != nil || again != tok {
				t.Fatalf("second call: %v, same token %v", err, again == tok)
			}
			if n := srv.TokenRequests("client_credentials"); n != 1 {
				t.Fatalf("%d token requests, want 1 (cached)", n)
			}
			if tok.RefreshToken != "" || tok.TokenType != "Bearer" || time.Until(tok.Expiry) <= 0 {
				t.Fatalf("token: type %q, refresh %v, expiry %v", tok.TokenType, tok.RefreshToken != "", tok.Expiry)
			}
			active, claims := introspectActive(t, srv, tok.AccessToken)
			if !active || claims["client_id"] != sc.clientID {
				t.Fatalf("introspection: %v", claims)
			}
			form, basic := log.last(t)
			if form.Get("grant_type") != "client_credentials" || form.Get("scope") != oauthtest.ScopeAPIRead ||
				!slices.Equal(form["resource"], []string{"https://api.example/"}) {
				t.Fatalf("form: %v", form)
			}
			// Exactly one authentication method on the wire (S17).
			methods := 0
			for _, used := range []bool{basic, form.Has("client_secret"), form.Has("client_assertion")} {
				if used {
					methods++
				}
			}
			want := map[string]bool{
				"client_secret_basic": basic,
				"client_secret_post":  form.Has("client_secret"),
				"private_key_jwt":     form.Has("client_assertion"),
			}[sc.method]
			if methods != 1 || !want {
				t.Fatalf("%s: basic=%v secret=%v assertion=%v", sc.method, basic, form.Has("client_secret"), form.Has("client_assertion"))
			}
		})
	}
}

func TestServiceTokenSourceSingleFlight(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	release := make(chan struct{})
	srv.SetHook(func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			<-release // hold the one request until every caller is waiting
		}
	})
	src := serviceClient(t, srv, serviceCases[0], nil).ClientCredentials(oauthclient.GrantOptions{})
	const n = 2000
	var wg sync.WaitGroup
	toks := make([]*oauth2.Token, n)
	errs := make([]error, n)
	var started sync.WaitGroup
	started.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			toks[i], errs[i] = src.Token()
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if got := srv.TokenRequests("client_credentials"); got != 1 {
		t.Fatalf("%d token requests for %d concurrent callers, want 1", got, n)
	}
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServiceTokenSourceRefreshAheadAndExpiry(t *testing.T) {
	srv := startAS(t, oauthtest.Options{AccessTokenLifetime: 5 * time.Minute})
	var hold atomic.Pointer[chan struct{}]
	srv.SetHook(func(r *http.Request) {
		if ch := hold.Load(); ch != nil && strings.HasSuffix(r.URL.Path, "/token") {
			<-*ch
		}
	})
	clock := newFakeClock()
	src := serviceClient(t, srv, serviceCases[0], clock.Now).ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* the bearer path; DPoP: e2e/machine */})
	first, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}

	// Inside the refresh-ahead window: the cached token comes back at once
	// while one background request, held at the server, is in flight.
	clock.Advance(5*time.Minute - time.Minute + time.Second) // inside the engine's 60 s refresh-ahead margin
	ch := make(chan struct{})
	hold.Store(&ch)
	for range 100 {
		got, err := src.Token()
		if err != nil || got != first {
			t.Fatalf("caller waited or got another token during refresh-ahead: %v", err)
		}
	}
	waitFor(t, "the background request", func() bool { return srv.TokenRequests("client_credentials") == 2 })
	hold.Store(nil)
	close(ch)
	var second *oauth2.Token
	waitFor(t, "the new token", func() bool {
		second, err = src.Token()
		return err == nil && second != first
	})
	if n := srv.TokenRequests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2 (one background refresh)", n)
	}

	// Past expiry (the background path was skipped): the caller waits for a new token.
	clock.Advance(10 * time.Minute)
	third, err := src.Token()
	if err != nil || third == second || srv.TokenRequests("client_credentials") != 3 {
		t.Fatalf("expired token: %v, new %v, requests %d", err, third != second, srv.TokenRequests("client_credentials"))
	}
}

func TestServiceTokenSourceInvalidate(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	src := serviceClient(t, srv, serviceCases[1], nil).ClientCredentials(oauthclient.GrantOptions{})
	a, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(&oauth2.Token{AccessToken: "some-other-token"})
	if b, _ := src.Token(); b != a || srv.TokenRequests("client_credentials") != 1 {
		t.Fatal("invalidating another token dropped the cached one")
	}
	src.Invalidate(&oauth2.Token{AccessToken: a.AccessToken})
	b, err := src.Token()
	if err != nil || b.AccessToken == a.AccessToken || srv.TokenRequests("client_credentials") != 2 {
		t.Fatalf("after Invalidate: %v, new %v, requests %d", err, b != a, srv.TokenRequests("client_credentials"))
	}
	src.Invalidate(a) // stale invalidation: b stays
	if c, _ := src.Token(); c != b {
		t.Fatal("a stale Invalidate dropped the current token")
	}
}

// TestServiceTokenSourceBacksOffThenRecovers: a failure is answered to
// every caller without a new request until the backoff passes; then the
// next call tries again and recovers.
func TestServiceTokenSourceBacksOffThenRecovers(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	var fail atomic.Bool
	fail.Store(true)
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if fail.Load() && strings.HasSuffix(r.URL.Path, "/token") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"temporarily_unavailable"}`)
			return true
		}
		return false
	})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	src := serviceClient(t, srv, serviceCases[0], clock).ClientCredentials(oauthclient.GrantOptions{})
	_, err := src.Token()
	var ae *oauthclient.AuthError
	if !errors.As(err, &ae) || ae.Code != "temporarily_unavailable" || !ae.Temporary() {
		t.Fatalf("err = %v, want a temporary *AuthError", err)
	}
	if strings.Contains(err.Error(), oauthtest.ServiceSecret) {
		t.Fatal("error contains the client secret")
	}
	fail.Store(false)
	var te *tokenstore.TemporaryError
	if _, err := src.Token(); !errors.As(err, &te) {
		t.Fatalf("during the backoff: %v, want the same *tokenstore.TemporaryError", err)
	}
	now.Add(int64(time.Minute))
	if _, err := src.Token(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if n := srv.TokenRequests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

func TestServiceTokenSourceCallerContext(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	release := make(chan struct{})
	srv.SetHook(func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			<-release
		}
	})
	src := serviceClient(t, srv, serviceCases[0], nil).ClientCredentials(oauthclient.GrantOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := src.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	close(release)
	// The shared request was not cancelled with the caller: its token is used.
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	if n := srv.TokenRequests("client_credentials"); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
}

// TestServiceToAPIEndToEnd wires the parts together against the real
// server: a ServiceSource feeds the API client; the API checks each token
// by introspection at the real server. After the token is revoked
// (RFC 7009, with the access_token hint), the API answers 401
// invalid_token, the transport invalidates the token in the ServiceSource,
// which fetches a new one, and the POST is replayed once and succeeds.
func TestServiceToAPIEndToEnd(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		m, err := introspect(srv, tok) // runs on a server goroutine: no t.Fatal here
		if !ok || err != nil || m["active"] != true {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(bytes.ToUpper(b))
	})
	c := serviceClient(t, srv, serviceCases[0], nil)
	src := c.ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* the bearer path; DPoP: e2e/machine */})
	hc := api.Client(t, src)
	post := func() string {
		resp, err := hc.Post(api.URL+"/echo", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return string(b)
	}
	if got := post(); got != "HELLO" {
		t.Fatalf("got %q", got)
	}
	tok, _ := src.Token()
	if err := c.Revoke(context.Background(), tok.AccessToken, "access_token"); err != nil {
		t.Fatal(err)
	}
	if active, _ := introspectActive(t, srv, tok.AccessToken); active {
		t.Fatal("revoked token still active")
	}
	before := api.Hits.Load()
	if got := post(); got != "HELLO" {
		t.Fatalf("after revocation: %q", got)
	}
	if n := api.Hits.Load() - before; n != 2 {
		t.Fatalf("%d API requests after revocation, want 2 (one retry)", n)
	}
	if n := srv.TokenRequests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2 (one refresh)", n)
	}
}

// TestServiceSourceThroughAPIClientNeverWaits: in the refresh-ahead window,
// API requests go out at once with the current token while the next token
// is fetched in the background (held at the server here), and the new
// token is used as soon as it arrives.
func TestServiceSourceThroughAPIClientNeverWaits(t *testing.T) {
	srv := startAS(t, oauthtest.Options{AccessTokenLifetime: 5 * time.Minute})
	var hold atomic.Pointer[chan struct{}]
	srv.SetHook(func(r *http.Request) {
		if ch := hold.Load(); ch != nil && strings.HasSuffix(r.URL.Path, "/token") {
			<-*ch
		}
	})
	clock := newFakeClock()
	src := serviceClient(t, srv, serviceCases[0], clock.Now).ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* the bearer path; DPoP: e2e/machine */})
	api := testkit.NewAPIServer(t, testkit.OK)
	hc, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{api.URL},
		HTTP:           strictnet.Config{RootCAs: api.Pool(), Timeout: 5 * time.Second},
		Now:            clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func() {
		t.Helper()
		resp, err := hc.Get(api.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	clock.Advance(5*time.Minute - time.Minute + time.Second) // inside the engine's 60 s refresh-ahead margin
	ch := make(chan struct{})
	hold.Store(&ch)
	for range 5 {
		get() // must not wait for the held token request
	}
	waitFor(t, "the background token request", func() bool { return srv.TokenRequests("client_credentials") == 2 })
	hold.Store(nil)
	close(ch)
	waitFor(t, "the new token in use", func() bool {
		get()
		api.Mu.Lock()
		defer api.Mu.Unlock()
		return api.Auths[len(api.Auths)-1] != api.Auths[0]
	})
	api.Mu.Lock()
	defer api.Mu.Unlock()
	for i := 1; i <= 5; i++ {
		if api.Auths[i] != api.Auths[0] {
			t.Fatalf("request %d in the window used another token", i)
		}
	}
	if n := srv.TokenRequests("client_credentials"); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}
