package callback_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/testkit"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

const redirectURL = oauthtest.WebRedirectURI // https://127.0.0.1/callback, registered for the web clients

// TestCallback runs every kind of callback request through a Handler wired
// to the real in-process server, one fresh flow per case. For each it
// checks the status, the error reported to OnError, the exact S15 headers,
// that the page shows neither code nor state, how many requests reached
// the server's token endpoint (counted by the server), whether the flow's
// cookie was deleted, and whether the genuine callback still completes
// afterwards (the flow was not consumed).
func TestCallback(t *testing.T) {
	srv := startServer(t)
	clk := &clock{}
	client := newClient(t, srv, redirectURL, clk.Now)
	rec := &logins{}
	key := mustKey(t)
	h, err := callback.New(callback.Config{Client: client, Keys: [][]byte{key}, OnLogin: rec.onLogin, OnError: rec.onError, LandingURL: "/home"})
	if err != nil {
		t.Fatal(err)
	}
	// other seals with another key, for the unknown-key case.
	other, err := callback.New(callback.Config{Client: client, Keys: [][]byte{mustKey(t)}, OnLogin: rec.onLogin})
	if err != nil {
		t.Fatal(err)
	}
	tp := tokenPath(t, srv)

	type tc struct {
		name    string
		opts    callback.LoginOptions
		req     func(t *testing.T, f *testFlow) *http.Request
		status  int
		err     error  // errors.Is target; nil for success
		why     string // what the refusal's message says: which check refused
		tokens  int    // requests that must reach the token endpoint
		deleted bool   // the flow's cookie is deleted
		intact  bool   // the genuine callback completes afterwards
		loc     string // Location of a success
	}
	random := strings.Repeat("A", 43)
	cases := []tc{
		{name: "success", status: 303, tokens: 1, deleted: true, loc: "/home",
			req: func(t *testing.T, f *testFlow) *http.Request { return get(f.callback.String(), f.cookie) }},
		// The browser dropped its connection: the request's context is
		// done, but the code is exchanged all the same (it would be spent).
		{name: "browser gone before the exchange", status: 303, tokens: 1, deleted: true, loc: "/home",
			req: func(t *testing.T, f *testFlow) *http.Request {
				r := get(f.callback.String(), f.cookie)
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				return r.WithContext(ctx)
			}},
		{name: "success with return-to", opts: callback.LoginOptions{ReturnTo: "/reports?id=7#top"}, status: 303, tokens: 1, deleted: true, loc: "/reports?id=7#top",
			req: func(t *testing.T, f *testFlow) *http.Request { return get(f.callback.String(), f.cookie) }},
		{name: "form_post", status: 303, tokens: 1, deleted: true, loc: "/home",
			req: func(t *testing.T, f *testFlow) *http.Request {
				return post("https://127.0.0.1/callback", "application/x-www-form-urlencoded; charset=utf-8", f.callback.RawQuery, f.cookie)
			}},
		{name: "missing state", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Del("state")
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "empty state", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Set("state", "")
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "wrong state", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Set("state", random)
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "no cookie (another browser, login CSRF)", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request { return get(f.callback.String()) }},
		{name: "replayed after success", status: 400, err: callback.ErrRefused, why: "no pending login matches this state",
			req: func(t *testing.T, f *testFlow) *http.Request {
				first := httptest.NewRecorder()
				h.ServeHTTP(first, get(f.callback.String(), f.cookie))
				if first.Code != 303 || !deletes(first.Result(), f.cookie.Name) {
					t.Fatalf("first delivery: %d", first.Code)
				}
				return get(f.callback.String()) // the browser dropped the cookie
			}},
		{name: "replayed with a stolen cookie: the server refuses the used code", status: 502, err: tokenstore.ErrLoginRequired, tokens: 1, deleted: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				h.ServeHTTP(httptest.NewRecorder(), get(f.callback.String(), f.cookie))
				return get(f.callback.String(), f.cookie)
			}},
		{name: "expired", status: 400, err: oauthclient.ErrFlowExpired, deleted: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				clk.advance(11 * time.Minute)
				return get(f.callback.String(), f.cookie)
			}},
		{name: "tampered cookie", status: 400, err: callback.ErrRefused, why: "pending-login cookie rejected", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				v := []byte(f.cookie.Value)
				i := len(v) / 2
				v[i] ^= 'A' ^ 'B'
				if v[i] == f.cookie.Value[i] {
					v[i] = 'C'
				}
				return get(f.callback.String(), &http.Cookie{Name: f.cookie.Name, Value: string(v)})
			}},
		{name: "truncated cookie", status: 400, err: callback.ErrRefused, why: "pending-login cookie rejected", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.callback.String(), &http.Cookie{Name: f.cookie.Name, Value: f.cookie.Value[:len(f.cookie.Value)-4]})
			}},
		{name: "cookie sealed by an unknown key", status: 400, err: callback.ErrRefused, why: "pending-login cookie rejected",
			req: func(t *testing.T, f *testFlow) *http.Request {
				g := login(t, srv, startFlow(t, other, srv, callback.LoginOptions{}))
				return get(g.callback.String(), g.cookie)
			}},
		{name: "swapped cookie from another flow", status: 400, err: callback.ErrRefused, why: "pending-login cookie rejected", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				g := startFlow(t, h, srv, callback.LoginOptions{ReturnTo: "/elsewhere"})
				return get(f.callback.String(), &http.Cookie{Name: f.cookie.Name, Value: g.cookie.Value})
			}},
		{name: "forged error with a wrong state", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery("error=access_denied&state="+random+"&iss="+url.QueryEscape(srv.Issuer)), f.cookie)
			}},
		{name: "forged error without state", status: 400, err: callback.ErrRefused, why: "no pending login matches this state", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery("error=access_denied"), f.cookie)
			}},
		{name: "error with the flow's state (escaped on the page)", status: 403, err: oauthclient.ErrAuthorizationServer, deleted: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := url.Values{"error": {"access_denied"}, "error_description": {`<script>alert(1)</script><img src=https://evil.test/x>`}, "state": {f.state}, "iss": {srv.Issuer}}
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "code with error", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery(f.callback.RawQuery+"&error=access_denied"), f.cookie)
			}},
		{name: "repeated state", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery(f.callback.RawQuery+"&state="+url.QueryEscape(f.state)), f.cookie)
			}},
		{name: "repeated code", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery(f.callback.RawQuery+"&code=other"), f.cookie)
			}},
		{name: "repeated iss", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery(f.callback.RawQuery+"&iss="+url.QueryEscape(srv.Issuer)), f.cookie)
			}},
		{name: "oversized code", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Set("code", strings.Repeat("c", 4096+1))
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "oversized error_description", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := url.Values{"error": {"access_denied"}, "error_description": {strings.Repeat("d", 4096+1)}, "state": {f.state}}
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "too many parameters", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				for i := range 16 {
					q.Set("x"+strings.Repeat("y", i), "1")
				}
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "bad percent-encoding", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return get(f.withQuery(f.callback.RawQuery+"&x=%zz"), f.cookie)
			}},
		{name: "iss of another server", status: 400, err: oauthclient.ErrIssuerMismatch, deleted: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Set("iss", "https://evil.test")
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "iss missing although advertised", status: 400, err: oauthclient.ErrIssuerMismatch, deleted: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				q := f.callback.Query()
				q.Del("iss")
				return get(f.withQuery(q.Encode()), f.cookie)
			}},
		{name: "form_post with a wrong content type", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return post("https://127.0.0.1/callback", "text/plain", f.callback.RawQuery, f.cookie)
			}},
		{name: "form_post with a query too", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return post("https://127.0.0.1/callback?x=1", "application/x-www-form-urlencoded", f.callback.RawQuery, f.cookie)
			}},
		{name: "form_post with repeated state", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return post("https://127.0.0.1/callback", "application/x-www-form-urlencoded", f.callback.RawQuery+"&state=x", f.cookie)
			}},
		{name: "form_post oversized body", status: 400, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				return post("https://127.0.0.1/callback", "application/x-www-form-urlencoded", f.callback.RawQuery+"&pad="+strings.Repeat("p", (16<<10)), f.cookie)
			}},
		{name: "PUT", status: 405, err: callback.ErrRefused, why: "malformed callback request", intact: true,
			req: func(t *testing.T, f *testFlow) *http.Request {
				r := get(f.callback.String(), f.cookie)
				r.Method = http.MethodPut
				return r
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer clk.reset()
			f := login(t, srv, startFlow(t, h, srv, c.opts))
			req := c.req(t, f)
			before, subjects := srv.Count(tp), rec.count()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			res := w.Result()
			clk.reset()
			got := srv.Count(tp) - before

			checkHeaders(t, res.Header)
			if res.StatusCode != c.status {
				t.Errorf("status %d, want %d", res.StatusCode, c.status)
			}
			if got != c.tokens {
				t.Errorf("the server saw %d token requests, want %d", got, c.tokens)
			}
			page := body(t, res)
			for _, secret := range []string{f.code, f.state, f.cookie.Value} {
				if strings.Contains(page, secret) || strings.Contains(res.Header.Get("Location"), secret) {
					t.Error("response shows the code, state or cookie")
				}
			}
			if c.err == nil {
				if loc := res.Header.Get("Location"); loc != c.loc {
					t.Errorf("Location %q, want %q", loc, c.loc)
				}
				if rec.count() != subjects+1 {
					t.Error("OnLogin was not called")
				}
				if page != "" {
					t.Errorf("303 has a body: %q", page)
				}
			} else {
				if !errors.Is(rec.lastErr(), c.err) || rec.lastErr() != nil && !strings.Contains(rec.lastErr().Error(), c.why) {
					t.Errorf("OnError got %v, want %v (%s)", rec.lastErr(), c.err, c.why)
				}
				if rec.count() != subjects {
					t.Error("OnLogin called on a failure")
				}
				if res.Header.Get("Location") != "" {
					t.Error("error response redirects")
				}
				if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if strings.Contains(page, "<script") || strings.Contains(page, "<img") || strings.Contains(page, "style") {
					t.Errorf("error page is not plain: %s", page)
				}
			}
			if c.status == 405 && res.Header.Get("Allow") != "GET, POST" {
				t.Errorf("405 without Allow: %q", res.Header.Get("Allow"))
			}
			if c.name == "error with the flow's state (escaped on the page)" && !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("error_description not shown escaped: %s", page)
			}
			if d := deletes(res, f.cookie.Name); d != c.deleted {
				t.Errorf("cookie deleted = %v, want %v", d, c.deleted)
			}
			if !c.deleted && len(res.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("unexpected Set-Cookie %q", res.Header.Values("Set-Cookie"))
			}
			if c.intact {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, get(f.callback.String(), f.cookie))
				if w.Code != 303 || w.Header().Get("Location") != "/home" {
					t.Errorf("the genuine callback no longer completes: %d %v", w.Code, rec.lastErr())
				}
			}
		})
	}
}

// TestOnLoginFailures: an OnLogin error or an OnLogin that writes a
// response gives a 500 page (never the app's output with our 303), with
// the flow consumed.
func TestOnLoginFailures(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	appErr := errors.New("database down")
	for name, fn := range map[string]func(http.ResponseWriter, *http.Request, *oauthclient.Tokens, string) error{
		"error": func(w http.ResponseWriter, _ *http.Request, _ *oauthclient.Tokens, _ string) error {
			// The session is created, then storing the refresh token fails.
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice-session", Path: "/"})
			return appErr
		},
		"writes": func(w http.ResponseWriter, _ *http.Request, _ *oauthclient.Tokens, _ string) error {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "alice-session", Path: "/"})
			w.WriteHeader(200)
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			var got error
			h, err := callback.New(callback.Config{Client: client, Keys: [][]byte{mustKey(t)}, OnLogin: fn, OnError: func(_ *http.Request, err error) { got = err }})
			if err != nil {
				t.Fatal(err)
			}
			f := login(t, srv, startFlow(t, h, srv, callback.LoginOptions{}))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, get(f.callback.String(), f.cookie))
			checkHeaders(t, w.Header())
			if w.Code != 500 || w.Header().Get("Location") != "" {
				t.Errorf("status %d Location %q, want 500 without redirect", w.Code, w.Header().Get("Location"))
			}
			if (name == "error" && !errors.Is(got, appErr)) || (name == "writes" && !errors.Is(got, oauthsafe.ErrConfig)) {
				t.Errorf("OnError got %v", got)
			}
			if !deletes(w.Result(), f.cookie.Name) {
				t.Error("flow cookie not deleted")
			}
			for _, c := range w.Result().Cookies() {
				if c.Name == "session" {
					t.Error("the aborted login still sent the session cookie OnLogin set")
				}
			}
		})
	}
}

// TestStartRefusesReturnTo: Start and Login refuse every open-redirect
// variant with a 400 page, with no cookie and no redirect.
func TestStartRefusesReturnTo(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	h, err := callback.New(callback.Config{Client: client, Keys: [][]byte{mustKey(t)}, OnLogin: (&logins{}).onLogin})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range testkit.BadReturnTo {
		t.Run(rt, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := h.Start(w, httptest.NewRequest("GET", "https://app.test/login", nil), callback.LoginOptions{ReturnTo: rt})
			if !errors.Is(err, callback.ErrRefused) || !strings.Contains(err.Error(), "return-to URL refused") || w.Code != 400 || len(w.Header().Values("Set-Cookie")) != 0 || w.Header().Get("Location") != "" {
				t.Errorf("Start(%q): err %v status %d cookies %d", rt, err, w.Code, len(w.Header().Values("Set-Cookie")))
			}
			checkHeaders(t, w.Header())
			// Through the Login handler's query parameter too.
			w = httptest.NewRecorder()
			r := httptest.NewRequest("GET", "https://app.test/login", nil)
			r.URL.RawQuery = "return_to=" + url.QueryEscape(rt)
			h.Login().ServeHTTP(w, r)
			if w.Code != 400 || len(w.Header().Values("Set-Cookie")) != 0 {
				t.Errorf("Login?return_to=%q: status %d", rt, w.Code)
			}
			checkHeaders(t, w.Header())
		})
	}
}

// TestLoginHandler: GET /login?return_to=... starts a flow that lands
// there; a repeated return_to and other methods are refused.
func TestLoginHandler(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	rec := &logins{}
	h, err := callback.New(callback.Config{Client: client, Keys: [][]byte{mustKey(t)}, OnLogin: rec.onLogin})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.Login().ServeHTTP(w, httptest.NewRequest("GET", "https://app.test/login?return_to=%2Fdocs%2Fa%3Fb%3D1", nil))
	checkHeaders(t, w.Header())
	if w.Code != 303 || !strings.HasPrefix(w.Header().Get("Location"), srv.AuthURL+"?") {
		t.Fatalf("Login: %d %q", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()[0]
	au, _ := url.Parse(w.Header().Get("Location"))
	f := login(t, srv, &testFlow{cookie: c, authURL: au.String(), state: au.Query().Get("state")})
	w = httptest.NewRecorder()
	h.ServeHTTP(w, get(f.callback.String(), f.cookie))
	if w.Code != 303 || w.Header().Get("Location") != "/docs/a?b=1" {
		t.Fatalf("callback: %d %q", w.Code, w.Header().Get("Location"))
	}
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "https://app.test/login?return_to=/a&return_to=/b", nil),
		httptest.NewRequest("DELETE", "https://app.test/login", nil),
	} {
		w := httptest.NewRecorder()
		h.Login().ServeHTTP(w, r)
		checkHeaders(t, w.Header())
		if w.Code < 400 || len(w.Header().Values("Set-Cookie")) != 0 {
			t.Errorf("%s %s: %d", r.Method, r.URL, w.Code)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	noRedirect := newClient(t, srv, "", nil)
	on := (&logins{}).onLogin
	k := mustKey(t)
	for name, cfg := range map[string]callback.Config{
		"no client":        {Keys: [][]byte{k}, OnLogin: on},
		"no OnLogin":       {Client: client, Keys: [][]byte{k}},
		"no key":           {Client: client, OnLogin: on},
		"short key":        {Client: client, Keys: [][]byte{k[:16]}, OnLogin: on},
		"keys and store":   {Client: client, Keys: [][]byte{k}, PendingStore: callback.NewMemoryPendingStore(0), OnLogin: on},
		"no redirect URL":  {Client: noRedirect, Keys: [][]byte{k}, OnLogin: on},
		"off-site landing": {Client: client, Keys: [][]byte{k}, OnLogin: on, LandingURL: "//evil.test/"},
		"__Host- prefix":   {Client: client, Keys: [][]byte{k}, OnLogin: on, CookiePrefix: "__Host-x"},
		"bad prefix":       {Client: client, Keys: [][]byte{k}, OnLogin: on, CookiePrefix: "a;b"},
	} {
		if _, err := callback.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		} else if !strings.HasPrefix(err.Error(), "callback: ") {
			t.Errorf("%s: error %q does not start with the package name", name, err)
		}
	}
}
