package apiclient_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/testkit"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// apiSource is a token source for transport tests. It hands out toks in
// order: Invalidate of the current token moves to the next one. It counts
// Token and Invalidate calls.
type apiSource struct {
	mu            sync.Mutex
	toks          []string
	i             int
	expiry        time.Time
	tokenType     string
	calls         int
	invalidations int
}

func newAPISource(toks ...string) *apiSource {
	return &apiSource{toks: toks, expiry: time.Now().Add(time.Hour)}
}

func (s *apiSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.i >= len(s.toks) {
		return nil, errors.New("apiSource: no more tokens")
	}
	tt := s.tokenType
	if tt == "" {
		tt = "Bearer"
	}
	return &oauth2.Token{AccessToken: s.toks[s.i], TokenType: tt, Expiry: s.expiry}, nil
}

func (s *apiSource) Invalidate(t *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidations++
	if s.i < len(s.toks) && t.AccessToken == s.toks[s.i] {
		s.i++
	}
}

func (s *apiSource) counts() (calls, invalidations int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.invalidations
}

// closeTracker records whether the transport closed a request body.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestAPIConfigRefused(t *testing.T) {
	src := newAPISource("tok")
	cases := []struct {
		name    string
		src     oauth2.TokenSource
		cfg     apiclient.Config
		policy  bool
		message string
	}{
		{"no origins", src, apiclient.Config{}, true, "AllowedOrigins"},
		{"http origin", src, apiclient.Config{AllowedOrigins: []string{"http://127.0.0.1:8080"}}, true, "https"},
		{"origin with path", src, apiclient.Config{AllowedOrigins: []string{"https://127.0.0.1/api"}}, true, "scheme://host"},
		{"origin with user info", src, apiclient.Config{AllowedOrigins: []string{"https://u:p@127.0.0.1"}}, true, "scheme://host"},
		{"origin with query", src, apiclient.Config{AllowedOrigins: []string{"https://127.0.0.1?x=1"}}, true, "scheme://host"},
		{"not a URL", src, apiclient.Config{AllowedOrigins: []string{"127.0.0.1"}}, true, "absolute"},
		{"insecure TLS", src, apiclient.Config{AllowedOrigins: []string{"https://127.0.0.1"},
			HTTP: strictnet.Config{PinnedSPKI: []string{"not base64"}}}, true, "pin"},
		{"nil source", nil, apiclient.Config{AllowedOrigins: []string{"https://127.0.0.1"}}, false, "token source"},
		{"wrapper replacing the transport", src, apiclient.Config{AllowedOrigins: []string{"https://127.0.0.1"},
			HTTP: strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper { return &http.Transport{} }}}, true, "HTTP.Wrap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apiclient.New(tc.src, tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, strictnet.ErrPolicy) != tc.policy {
				t.Fatalf("errors.Is(ErrPolicy) = %v, want %v: %v", !tc.policy, tc.policy, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not mention %q", err, tc.message)
			}
		})
	}
}

func TestAPITransportRefusals(t *testing.T) {
	const tok = "tok-SECRET-0123456789abcdef"
	api := testkit.NewAPIServer(t, testkit.OK)
	other := testkit.NewAPIServer(t, testkit.OK)
	plain := httptest.NewServer(http.HandlerFunc(testkit.OK))
	defer plain.Close()
	var plainHits atomic.Int32
	plain.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) })
	u, _ := url.Parse(api.URL)
	src := newAPISource(tok)
	c := api.Client(t, src)

	cases := []struct {
		name string
		url  string
		want error
	}{
		{"other port", other.URL + "/x", apiclient.ErrOriginNotAllowed},
		{"other host name, same server", "https://localhost:" + u.Port() + "/x", apiclient.ErrOriginNotAllowed},
		{"http origin", plain.URL + "/x", apiclient.ErrOriginNotAllowed},
		{"http to the allowed host and port", "http://" + u.Host + "/x", apiclient.ErrOriginNotAllowed},
		{"token in query value", api.URL + "/x?q=" + tok, apiclient.ErrTokenInURL},
		{"token percent-encoded in query", api.URL + "/x?q=" + strings.ReplaceAll(tok, "-", "%2D"), apiclient.ErrTokenInURL},
		{"access_token param", api.URL + "/x?a=1&access_token=whatever", apiclient.ErrTokenInURL},
		{"access_token param, encoded and upper case", api.URL + "/x?ACCESS%5Ftoken=whatever", apiclient.ErrTokenInURL},
		{"access_token in fragment", api.URL + "/x#access_token=whatever", apiclient.ErrTokenInURL},
		{"token in path", api.URL + "/users/" + tok, apiclient.ErrTokenInURL},
		{"token in fragment", api.URL + "/x#" + tok, apiclient.ErrTokenInURL},
		{"token as user info", "https://" + tok + "@" + u.Host + "/x", apiclient.ErrTokenInURL},
		{"token as password", "https://me:" + tok + "@" + u.Host + "/x", apiclient.ErrTokenInURL},
		{"token encoded next to a malformed escape", api.URL + "/x?discount=100%&q=" + strings.ReplaceAll(tok, "-", "%2D"), apiclient.ErrTokenInURL},
		{"Host header of another virtual host", api.URL + "/x#HOST=tenant-of-attacker.example", apiclient.ErrOriginNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := &closeTracker{Reader: strings.NewReader("payload")}
			target, host, _ := strings.Cut(tc.url, "#HOST=")
			req, err := http.NewRequest(http.MethodPost, target, body)
			if err != nil {
				t.Fatal(err)
			}
			if host != "" {
				req.Host = host
			}
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("request was sent")
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, strictnet.ErrPolicy) {
				t.Fatalf("err = %v, want %v (and ErrPolicy)", err, tc.want)
			}
			var pe *strictnet.PolicyError
			if !errors.As(err, &pe) || strings.Contains(pe.Error(), tok) {
				t.Fatalf("policy error missing or contains the token: %v", pe)
			}
			if !body.closed.Load() {
				t.Fatal("request body not closed on refusal")
			}
			if n := api.Hits.Load() + other.Hits.Load() + plainHits.Load(); n != 0 {
				t.Fatalf("%d requests reached a server", n)
			}
		})
	}
	// The allowed origin in another spelling (upper case, explicit :443
	// would apply for the default port) is the same origin and works.
	req, _ := http.NewRequest(http.MethodGet, "https://"+strings.ToUpper("127.0.0.1")+":"+u.Port()+"/ok?access_tokens=1", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("allowed request refused: %v", err)
	}
	resp.Body.Close()
	if api.Hits.Load() != 1 {
		t.Fatalf("hits = %d, want 1", api.Hits.Load())
	}
}

func TestAPITransportSendsBearerAndNoStore(t *testing.T) {
	api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Custom") != "kept" {
			http.Error(w, "custom header lost", http.StatusTeapot)
			return
		}
		testkit.OK(w, r)
	})
	c := api.Client(t, newAPISource("tok-1"))
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/x", nil)
	req.Header.Set("X-Custom", "kept")
	req.Header.Set("Cache-Control", "max-age=60")
	req.Header.Set("Authorization", "Basic c3RhbGU6Y3JlZHM=") // replaced, never sent
	before := req.Header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	api.Mu.Lock()
	defer api.Mu.Unlock()
	if got := api.Auths[0]; got != "Bearer tok-1" {
		t.Fatalf("Authorization = %q", got)
	}
	if got := api.Caches[0]; !slices.Equal(got, []string{"no-store"}) {
		t.Fatalf("Cache-Control = %q, want exactly no-store", got)
	}
	if fmt.Sprint(req.Header) != fmt.Sprint(before) {
		t.Fatalf("caller's request was modified: %v", req.Header)
	}
}

func TestAPITransportSameOriginRedirectKeepsToken(t *testing.T) {
	api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		testkit.OK(w, r)
	})
	c := api.Client(t, newAPISource("tok-1"))
	resp, err := c.Get(api.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	api.Mu.Lock()
	defer api.Mu.Unlock()
	if !slices.Equal(api.Auths, []string{"Bearer tok-1", "Bearer tok-1"}) {
		t.Fatalf("auths = %q", api.Auths)
	}
}

// invalidTokenUnless answers 401 invalid_token unless the request carries good.
func invalidTokenUnless(good string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+good {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="The access token expired"`)
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "expired")
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}
}

func TestAPITransportRetriesOnceOnInvalidToken(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("tok-2"))
	src := newAPISource("tok-1", "tok-2")
	c := api.Client(t, src)
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/items", strings.NewReader("payload"))
	if req.GetBody == nil {
		t.Fatal("test needs a replayable body")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "payload" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if n := api.Hits.Load(); n != 2 {
		t.Fatalf("server hits = %d, want 2 (one retry)", n)
	}
	if calls, inv := src.counts(); calls != 2 || inv != 1 {
		t.Fatalf("source: %d Token calls, %d invalidations; want 2 and 1 (exactly one refresh)", calls, inv)
	}
	api.Mu.Lock()
	if !slices.Equal(api.Bodies, []string{"payload", "payload"}) || !slices.Equal(api.Auths, []string{"Bearer tok-1", "Bearer tok-2"}) {
		t.Fatalf("bodies %q auths %q", api.Bodies, api.Auths)
	}
	api.Mu.Unlock()
	// The new token is cached: the next request neither refreshes nor retries.
	resp, err = c.Post(api.URL+"/items", "text/plain", strings.NewReader("again"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls, _ := src.counts(); calls != 2 || api.Hits.Load() != 3 {
		t.Fatalf("after retry: %d Token calls, %d hits; want 2 and 3", calls, api.Hits.Load())
	}
}

func TestAPITransportNoRetryWithoutReplayableBody(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("tok-2"))
	src := newAPISource("tok-1", "tok-2")
	c := api.Client(t, src)
	body := &closeTracker{Reader: strings.NewReader("stream")}
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/upload", body)
	if req.GetBody != nil {
		t.Fatal("test needs a non-replayable body")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(b) != "expired" {
		t.Fatalf("status %d body %q, want the 401 as is", resp.StatusCode, b)
	}
	if n := api.Hits.Load(); n != 1 {
		t.Fatalf("hits = %d, want 1 (no retry)", n)
	}
	// The rejected token was still invalidated, so the next call uses a new one.
	if calls, inv := src.counts(); calls != 1 || inv != 1 {
		t.Fatalf("source: %d calls, %d invalidations; want 1 and 1", calls, inv)
	}
	resp, err = c.Get(api.URL + "/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("next request status %d", resp.StatusCode)
	}
}

func TestAPITransportSecond401ReturnedAsIs(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("never"))
	src := newAPISource("tok-1", "tok-2", "tok-3")
	c := api.Client(t, src)
	resp, err := c.Get(api.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(b) != "expired" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if ch := resp.Header.Get("Www-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) {
		t.Fatalf("challenge not readable by the caller: %q", ch)
	}
	if n := api.Hits.Load(); n != 2 {
		t.Fatalf("hits = %d, want 2 (one retry, no loop)", n)
	}
	if calls, inv := src.counts(); calls != 2 || inv != 1 {
		t.Fatalf("source: %d calls, %d invalidations; want 2 and 1", calls, inv)
	}
}

func TestAPITransportNoRetryWithoutInvalidToken(t *testing.T) {
	cases := map[string]string{
		"no challenge":      "",
		"no error code":     `Bearer realm="api"`,
		"other scheme":      `Basic realm="api", error="invalid_token"`,
		"insufficient only": `Bearer error="insufficient_scope"`,
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
				if h != "" {
					w.Header().Set("WWW-Authenticate", h)
				}
				w.WriteHeader(http.StatusUnauthorized)
			})
			src := newAPISource("tok-1", "tok-2")
			resp, err := api.Client(t, src).Get(api.URL + "/x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || api.Hits.Load() != 1 {
				t.Fatalf("status %d hits %d", resp.StatusCode, api.Hits.Load())
			}
			if calls, inv := src.counts(); calls != 1 || inv != 0 {
				t.Fatalf("source: %d calls, %d invalidations", calls, inv)
			}
		})
	}
}

func TestAPITransportSameTokenIsNotRetried(t *testing.T) {
	// A source that cannot refresh (x/oauth2's static source) gives the same
	// token again: the 401 comes back without a pointless second request.
	api := testkit.NewAPIServer(t, invalidTokenUnless("never"))
	c := api.Client(t, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static"}))
	resp, err := c.Get(api.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || api.Hits.Load() != 1 {
		t.Fatalf("status %d hits %d", resp.StatusCode, api.Hits.Load())
	}
}

func TestAPITransportInsufficientScope(t *testing.T) {
	const tok = "tok-ECHOED-9876543210"
	api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="insufficient_scope", scope="api.write admin", error_description="token `+tok+` lacks \"api.write\""`)
		w.WriteHeader(http.StatusForbidden)
	})
	resp, err := api.Client(t, newAPISource(tok)).Get(api.URL + "/x")
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error")
	}
	var se *validate.InsufficientScopeError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *InsufficientScopeError", err)
	}
	if !slices.Equal(se.Scope, []string{"api.write", "admin"}) {
		t.Fatalf("Scope = %q", se.Scope)
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(se.Description, tok) {
		t.Fatalf("error echoes the token: %v / %q", err, se.Description)
	}
	if !strings.Contains(se.Description, `lacks "api.write"`) {
		t.Fatalf("Description = %q", se.Description)
	}
}

func TestAPITransportInvalidRequest(t *testing.T) {
	api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request", error_description="two tokens"`)
		w.WriteHeader(http.StatusBadRequest)
	})
	_, err := api.Client(t, newAPISource("tok-0123456789")).Get(api.URL + "/x")
	var ie *apiclient.InvalidRequestError
	if !errors.As(err, &ie) || ie.Description != "two tokens" {
		t.Fatalf("err = %v, want *InvalidRequestError", err)
	}
}

func TestAPITransportOtherErrorsPassThrough(t *testing.T) {
	// An API's own 400/403 without an RFC 6750 challenge is the caller's to read.
	for _, status := range []int{400, 403, 500} {
		api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(status)
			io.WriteString(w, `{"problem":"yours"}`)
		})
		resp, err := api.Client(t, newAPISource("tok")).Get(api.URL + "/x")
		if err != nil {
			t.Fatalf("%d: %v", status, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || string(b) != `{"problem":"yours"}` {
			t.Fatalf("%d: got %d %q", status, resp.StatusCode, b)
		}
	}
}

func TestAPITransportMalformedChallenges(t *testing.T) {
	headers := [][]string{
		{`Bearer error="invalid_token`},
		{`Bearer error=`, `,,,`, `"`},
		{`Bearer error="\`},
		{`=====`, `Bearer , , error = "invalid_token" junk`},
		{strings.Repeat(`Bearer a="b", `, 5000)},
		{"Bearer error=\"inv\xffalid\", \xfe=\x80"},
	}
	for i, hs := range headers {
		api := testkit.NewAPIServer(t, func(w http.ResponseWriter, r *http.Request) {
			for _, h := range hs {
				w.Header().Add("WWW-Authenticate", h)
			}
			w.WriteHeader(http.StatusUnauthorized)
		})
		resp, err := api.Client(t, newAPISource("tok-1", "tok-2")).Get(api.URL + "/x")
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("%d: status %d", i, resp.StatusCode)
		}
	}
}

func TestAPITransportTokenChecks(t *testing.T) {
	api := testkit.NewAPIServer(t, testkit.OK)
	t.Run("DPoP token without its key", func(t *testing.T) {
		src := newAPISource("tok")
		src.tokenType = "DPoP"
		_, err := api.Client(t, src).Get(api.URL + "/x")
		if !errors.Is(err, apiclient.ErrBadToken) || !errors.Is(err, dpop.ErrDPoP) {
			t.Fatalf("err = %v, want ErrBadToken and ErrDPoP", err)
		}
	})
	t.Run("unknown token type", func(t *testing.T) {
		src := newAPISource("tok")
		src.tokenType = "MAC"
		_, err := api.Client(t, src).Get(api.URL + "/x")
		if !errors.Is(err, apiclient.ErrBadToken) || !errors.Is(err, oauthsafe.ErrConfig) {
			t.Fatalf("err = %v, want ErrBadToken (ErrConfig)", err)
		}
	})
	t.Run("empty token", func(t *testing.T) {
		_, err := api.Client(t, newAPISource("")).Get(api.URL + "/x")
		if !errors.Is(err, apiclient.ErrBadToken) {
			t.Fatalf("err = %v, want ErrBadToken", err)
		}
	})
	t.Run("header injection", func(t *testing.T) {
		_, err := api.Client(t, newAPISource("tok\r\nX-Evil: 1")).Get(api.URL + "/x")
		if !errors.Is(err, apiclient.ErrBadToken) || strings.Contains(err.Error(), "tok\r\n") {
			t.Fatalf("err = %v, want ErrBadToken without the token", err)
		}
	})
	t.Run("source error", func(t *testing.T) {
		_, err := api.Client(t, newAPISource()).Get(api.URL + "/x")
		if err == nil || !strings.Contains(err.Error(), "no more tokens") {
			t.Fatalf("err = %v", err)
		}
	})
	if api.Hits.Load() != 0 {
		t.Fatalf("%d requests sent without a usable token", api.Hits.Load())
	}
}

func TestAPITransportRefetchesStaleToken(t *testing.T) {
	api := testkit.NewAPIServer(t, testkit.OK)
	t0 := time.Now()
	var now atomic.Int64
	now.Store(t0.UnixNano())
	src := newAPISource("tok-1")
	src.expiry = t0.Add(5 * time.Minute)
	c, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{api.URL},
		HTTP:           strictnet.Config{RootCAs: api.Pool()},
		Now:            func() time.Time { return time.Unix(0, now.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func() {
		resp, err := c.Get(api.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	get()
	if calls, _ := src.counts(); calls != 1 {
		t.Fatalf("fresh token: %d source calls, want 1 (cached)", calls)
	}
	now.Store(t0.Add(5*time.Minute - apiclient.SourceRecheck + time.Second).UnixNano())
	get()
	get()
	if calls, _ := src.counts(); calls != 3 {
		t.Fatalf("near expiry: %d source calls, want 3 (the source is asked on every request)", calls)
	}
}

func TestAPITransportConcurrent(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("tok-2"))
	src := newAPISource("tok-1", "tok-2")
	c := api.Client(t, src)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				resp, err := c.Post(api.URL+"/x", "text/plain", strings.NewReader("b"))
				if err != nil {
					bad.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d failed requests", bad.Load())
	}
	if _, inv := src.counts(); inv < 1 {
		t.Fatal("token never invalidated")
	}
}

// An API that rejects every token must not turn every call into a token
// request: invalidations are rate-limited per transport.
func TestAPITransportInvalidationStormBounded(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("never"))
	src := newAPISource("tok-1", "tok-2", "tok-3", "tok-4", "tok-5", "tok-6", "tok-7", "tok-8", "tok-9", "tok-10", "tok-11", "tok-12")
	c := api.Client(t, src)
	for i := 0; i < 10; i++ {
		resp, err := c.Post(api.URL+"/x", "text/plain", strings.NewReader("b"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if _, inv := src.counts(); inv != 1 {
		t.Fatalf("%d invalidations for 10 calls within the cooldown, want 1", inv)
	}
	if hits := api.Hits.Load(); hits != 11 {
		t.Fatalf("API hits %d, want 11 (10 calls + one retry)", hits)
	}
}

// TestAPITransportClientPerUser: one APITransport serves many users'
// sources through Client. Each request carries its own user's token, the
// connections are shared, and a transport without a source of its own
// refuses requests.
func TestAPITransportClientPerUser(t *testing.T) {
	var newConns atomic.Int32
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	shared, err := apiclient.NewTransport(apiclient.Config{
		AllowedOrigins: []string{srv.URL},
		HTTP:           strictnet.Config{RootCAs: pool},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shared.Client(nil); err == nil {
		t.Fatal("Client(nil) was accepted")
	}
	for i := 0; i < 6; i++ {
		user := fmt.Sprintf("user-%d-token", i%3)
		c, err := shared.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: user, TokenType: "Bearer"}))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL + "/me")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		mu.Lock()
		got := auths[len(auths)-1]
		mu.Unlock()
		if got != "Bearer "+user {
			t.Fatalf("request %d carried %q, want the user's own token", i, got)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Fatalf("%d connections for 6 requests of 3 users, want 1 shared connection", n)
	}
	// A per-user client keeps the origin allow-list.
	c, _ := shared.Client(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "user-x-token", TokenType: "Bearer"}))
	if _, err := c.Get("https://other.example/"); !errors.Is(err, apiclient.ErrOriginNotAllowed) {
		t.Fatalf("other origin: %v, want ErrOriginNotAllowed", err)
	}
}
