package callback_test

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestReplicas: two independent Handlers (each with its own
// oauthclient.Client) sharing a key list complete each other's flows, also
// across a key rotation; with different keys the callback fails cleanly
// (400, ErrRefused, no token request) and leaves the flow for a replica
// that can open it.
func TestReplicas(t *testing.T) {
	srv := startServer(t)
	tp := tokenPath(t, srv)
	k1, k2 := mustKey(t), mustKey(t)
	newReplica := func(rec *logins, keys ...[]byte) *callback.Handler {
		h, err := callback.New(callback.Config{Client: newClient(t, srv, redirectURL, nil), Keys: keys, OnLogin: rec.onLogin, OnError: rec.onError})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	recA, recB, recC := &logins{}, &logins{}, &logins{}
	a := newReplica(recA, k1)
	b := newReplica(recB, k1)
	rotated := newReplica(recB, k2, k1) // a replica already on the next key
	stranger := newReplica(recC, k2)

	t.Run("same key", func(t *testing.T) {
		f := login(t, srv, startFlow(t, a, srv, callback.LoginOptions{ReturnTo: "/r"}))
		w := httptest.NewRecorder()
		b.ServeHTTP(w, get(f.callback.String(), f.cookie))
		checkHeaders(t, w.Header())
		if w.Code != 303 || w.Header().Get("Location") != "/r" || recB.count() != 1 || recA.count() != 0 {
			t.Fatalf("flow from A did not complete on B: %d %v", w.Code, recB.lastErr())
		}
	})
	t.Run("rotation", func(t *testing.T) {
		f := login(t, srv, startFlow(t, a, srv, callback.LoginOptions{}))
		w := httptest.NewRecorder()
		rotated.ServeHTTP(w, get(f.callback.String(), f.cookie))
		if w.Code != 303 {
			t.Fatalf("old-key flow did not complete on a rotated replica: %d %v", w.Code, recB.lastErr())
		}
	})
	t.Run("different keys", func(t *testing.T) {
		f := login(t, srv, startFlow(t, a, srv, callback.LoginOptions{}))
		before := srv.Count(tp)
		w := httptest.NewRecorder()
		stranger.ServeHTTP(w, get(f.callback.String(), f.cookie))
		checkHeaders(t, w.Header())
		if w.Code != 400 || !errors.Is(recC.lastErr(), callback.ErrRefused) || !strings.Contains(recC.lastErr().Error(), "pending-login cookie rejected") || recC.count() != 0 {
			t.Fatalf("stranger replica: %d %v", w.Code, recC.lastErr())
		}
		if srv.Count(tp) != before {
			t.Error("a replica with another key made a token request")
		}
		if len(w.Header().Values("Set-Cookie")) != 0 {
			t.Error("a replica that cannot open the flow touched its cookie")
		}
		w = httptest.NewRecorder()
		b.ServeHTTP(w, get(f.callback.String(), f.cookie))
		if w.Code != 303 {
			t.Errorf("flow did not survive the failed attempt: %d", w.Code)
		}
	})
}

// TestParallelTabs: one browser (one cookie jar) starts two logins from
// two tabs; both complete, in either order, each landing on its own
// return-to, and no pending cookie is left in the jar.
func TestParallelTabs(t *testing.T) {
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(mux)
	t.Cleanup(app.Close)
	srv := startServer(t, app.URL+"/callback")
	rec := &logins{}
	h, err := callback.New(callback.Config{Client: newClient(t, srv, app.URL+"/callback", nil), Keys: [][]byte{mustKey(t)}, OnLogin: rec.onLogin, OnError: rec.onError})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	appURL, _ := url.Parse(app.URL)
	cbURL, _ := url.Parse(app.URL + "/callback")

	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		t.Run(strings.Join([]string{"tab", string(rune('A' + order[0])), "first"}, " "), func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			browser := app.Client()
			browser.Jar = jar
			browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			do := func(u string) *http.Response {
				t.Helper()
				res, err := browser.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				checkHeaders(t, res.Header)
				return res
			}
			var callbacks [2]string
			for i, tab := range []string{"/tab-a", "/tab-b"} {
				res := do(app.URL + "/login?return_to=" + url.QueryEscape(tab))
				if res.StatusCode != 303 {
					t.Fatalf("login %s: %d", tab, res.StatusCode)
				}
				cb, err := srv.Login(t.Context(), res.Header.Get("Location"), oauthtest.UserAlice)
				if err != nil {
					t.Fatal(err)
				}
				callbacks[i] = cb
			}
			if n := countPending(jar.Cookies(cbURL)); n != 2 {
				t.Fatalf("%d pending cookies in the jar after two starts, want 2 (one tab overwrote the other)", n)
			}
			want := []string{"/tab-a", "/tab-b"}
			for _, i := range order {
				res := do(callbacks[i])
				if res.StatusCode != 303 || res.Header.Get("Location") != want[i] {
					t.Fatalf("tab %d: %d %q (%v)", i, res.StatusCode, res.Header.Get("Location"), rec.lastErr())
				}
			}
			if n := countPending(jar.Cookies(cbURL)); n != 0 {
				t.Errorf("%d pending cookies left", n)
			}
			if len(jar.Cookies(appURL)) != 1 {
				t.Errorf("session cookie missing: %v", jar.Cookies(appURL))
			}
		})
	}
}

func countPending(cs []*http.Cookie) int {
	n := 0
	for _, c := range cs {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			n++
		}
	}
	return n
}
