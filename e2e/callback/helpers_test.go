package callback_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// wantHeaders are the S15 headers, written out here rather than taken from
// the package so that a change in the package fails the tests.
var wantHeaders = map[string]string{
	"Cache-Control":           "no-store",
	"Pragma":                  "no-cache",
	"Referrer-Policy":         "no-referrer",
	"Content-Security-Policy": "default-src 'none'",
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
}

func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k, v := range wantHeaders {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want exactly %q", k, got, v)
		}
	}
}

// clock is an adjustable clock for oauthclient.Config.Now.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) reset()                  { c.offset.Store(0) }

func startServer(t testing.TB, redirects ...string) *oauthtest.Server {
	t.Helper()
	srv, err := oauthtest.Start(oauthtest.Options{RedirectURIs: redirects})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a confidential OIDC web client of srv.
func newClient(t testing.TB, srv *oauthtest.Server, redirect string, now func() time.Time) *oauthclient.Client {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv("CALLBACK_TEST_WEB_SECRET", oauthtest.WebSecret)
	} else {
		t.(*testing.B).Setenv("CALLBACK_TEST_WEB_SECRET", oauthtest.WebSecret)
	}
	secret, err := secret.FromEnv("CALLBACK_TEST_WEB_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	c, err := oauthclient.New(t.Context(), oauthclient.Config{
		Issuer:       srv.Issuer,
		ClientID:     oauthtest.ClientWeb,
		ClientSecret: secret,
		RedirectURL:  redirect,
		Scopes:       []string{"openid", "profile"},
		HTTP:         strictnet.Config{RootCAs: srv.RootCAs()},
		Now:          now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k) // crypto/rand: never fails
	return k
}

// logins records what OnLogin and OnError saw.
type logins struct {
	mu       sync.Mutex
	subjects []string
	returnTo []string
	errs     []error
}

func (l *logins) onLogin(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t == nil || t.OAuth2Token().AccessToken == "" || t.IDToken() == nil {
		panic("OnLogin without verified tokens")
	}
	l.subjects = append(l.subjects, t.Subject())
	l.returnTo = append(l.returnTo, returnTo)
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-" + t.Subject(), Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func (l *logins) onError(r *http.Request, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *logins) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs[len(l.errs)-1]
}

func (l *logins) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subjects)
}

// testFlow is one login started through a Handler and completed at the
// real server up to the redirect back: the genuine callback URL, not yet
// delivered.
type testFlow struct {
	cookie   *http.Cookie
	authURL  string
	callback *url.URL
	state    string
	code     string
}

// expectedCookieName computes the cookie name the way the design says:
// prefix + base64url(first 16 bytes of SHA-256 of a label and the state).
func expectedCookieName(state string) string {
	h := sha256.Sum256([]byte("oauthsafe/callback/state\x00" + state))
	return cookiePrefix + base64.RawURLEncoding.EncodeToString(h[:16])
}

// cookiePrefix is the documented default of Config.CookiePrefix.
const cookiePrefix = "__Secure-oauthsafe-"

// startFlow calls h.Start through a recorder and checks the response: 303 to
// the authorization endpoint, the exact S15 headers, and one cookie with the
// required attributes whose value reveals nothing.
func startFlow(t *testing.T, h *callback.Handler, srv *oauthtest.Server, opts callback.LoginOptions) *testFlow {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.Start(rec, httptest.NewRequest(http.MethodGet, "https://app.test/login", nil), opts); err != nil {
		t.Fatalf("Start: %v", err)
	}
	res := rec.Result()
	checkHeaders(t, res.Header)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("Start status %d, want 303", res.StatusCode)
	}
	loc := res.Header.Get("Location")
	if !strings.HasPrefix(loc, srv.AuthURL+"?") {
		t.Fatalf("Start redirects to %q, not the authorization endpoint", loc)
	}
	au, _ := url.Parse(loc)
	state := au.Query().Get("state")
	raw := res.Header.Values("Set-Cookie")
	if len(raw) != 1 {
		t.Fatalf("Start set %d cookies, want 1", len(raw))
	}
	for _, attr := range []string{"; Path=/callback", "; Max-Age=600", "; HttpOnly", "; Secure", "; SameSite=Lax"} {
		if !strings.Contains(raw[0], attr) {
			t.Errorf("Set-Cookie %q lacks %q", raw[0][:strings.Index(raw[0], "=")], attr)
		}
	}
	c := res.Cookies()[0]
	if c.Name != expectedCookieName(state) {
		t.Errorf("cookie name %q is not derived from the state hash", c.Name)
	}
	if strings.Contains(c.Name, state) || strings.Contains(c.Value, state) {
		t.Error("cookie shows the state")
	}
	if dec, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
		for _, s := range []string{state, srv.Issuer, "/callback"} {
			if strings.Contains(string(dec), s) {
				t.Errorf("cookie value holds %q in clear", s)
			}
		}
	}
	return &testFlow{cookie: c, authURL: loc, state: state}
}

// login signs in at the real server as alice and returns the flow with its
// genuine callback URL.
func login(t *testing.T, srv *oauthtest.Server, f *testFlow) *testFlow {
	t.Helper()
	cb, err := srv.Login(t.Context(), f.authURL, oauthtest.UserAlice)
	if err != nil {
		t.Fatalf("server login: %v", err)
	}
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	f.callback = u
	f.code = u.Query().Get("code")
	if f.code == "" || u.Query().Get("state") != f.state {
		t.Fatal("server did not redirect with the flow's code and state")
	}
	return f
}

// withQuery returns the callback URL with raw query q.
func (f *testFlow) withQuery(q string) string {
	u := *f.callback
	u.RawQuery = q
	return u.String()
}

func get(target string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func post(target, contentType, body string, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func tokenPath(t testing.TB, srv *oauthtest.Server) string {
	u, err := url.Parse(srv.TokenURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deletes reports whether res deletes the cookie name (Max-Age=0, same Path
// and attributes).
func deletes(res *http.Response, name string) bool {
	for _, c := range res.Cookies() {
		if c.Name == name && c.MaxAge < 0 && c.Path == "/callback" && c.Secure && c.HttpOnly {
			return true
		}
	}
	return false
}

func mustParseQuery(t *testing.T, q string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
