package callback_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

const chromiumPath = "/usr/bin/chromium"

// requireChromium skips when Chromium is absent, except under CI, where a
// missing browser is a failure.
func requireChromium(t *testing.T) string {
	t.Helper()
	p := chromiumPath
	if _, err := os.Stat(p); err != nil {
		if lp, err := exec.LookPath("chromium"); err == nil {
			p = lp
		} else if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required under CI: %v", err)
		} else {
			t.Skip("chromium not installed")
		}
	}
	return p
}

// hasCredential reports whether s carries an authorization response
// parameter, encoded or not.
func hasCredential(s string, secrets ...string) bool {
	for _, p := range []string{"code=", "state=", "code%3D", "state%3D"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	for _, v := range secrets {
		if v != "" && strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// TestBrowserLoginLeavesNoCredentials: real headless Chromium logs in
// through Start (GET /login) and the Handler (/callback) against the real
// in-process server, filling in the server's login form itself and
// following every redirect. Afterwards the address bar, every navigation
// entry and history.length agree that no URL with code or state remains,
// the landing request carried no Referer with them, and the browser holds
// no pending-flow cookie, only the application's session.
func TestBrowserLoginLeavesNoCredentials(t *testing.T) {
	exe := requireChromium(t)

	var mu sync.Mutex
	var callbackQueries []string // what /callback received, to know the code and state
	var landingReferers []string
	var landingQueries []string

	mux := http.NewServeMux()
	app := httptest.NewTLSServer(mux)
	t.Cleanup(app.Close)
	srv := startServer(t, app.URL+"/callback")
	rec := &logins{}
	h, err := callback.New(callback.Config{
		Client:  newClient(t, srv, app.URL+"/callback", nil),
		Keys:    [][]byte{mustKey(t)},
		OnLogin: rec.onLogin,
		OnError: rec.onError,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		callbackQueries = append(callbackQueries, r.URL.RawQuery)
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		landingReferers = append(landingReferers, r.Header.Get("Referer"))
		landingQueries = append(landingQueries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if c, err := r.Cookie("session"); err == nil && c.Value == "s-"+oauthtest.Subject(oauthtest.UserAlice) {
			_, _ = w.Write([]byte(`<!doctype html><title>home</title><p id="welcome">Welcome</p>`))
			return
		}
		_, _ = w.Write([]byte(`<!doctype html><title>home</title><p id="anonymous">Who are you?</p>`))
	})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Both servers use private test CAs; this applies to the browser only.
		chromedp.IgnoreCertErrors,
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	// 1. Start: the browser follows /login -> 303 -> the server's login page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(app.URL+"/login?return_to=%2Fhome"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
	); err != nil {
		t.Fatalf("reaching the login page: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, srv.Issuer) {
		t.Fatalf("not on the server's login page: %q %v", loc, err)
	}
	pending := pendingCookies(t, ctx, app.URL)
	if len(pending) != 1 || !pending[0].HTTPOnly || !pending[0].Secure || pending[0].Path != "/callback" || pending[0].SameSite != network.CookieSameSiteLax {
		t.Fatalf("the browser does not hold exactly one HttpOnly, Secure, Lax pending cookie on /callback: %+v", pending)
	}

	// 2. Sign in with the server's own form; the browser follows the
	// redirects to /callback and on to /home.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), oauthtest.UserAlice),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), oauthtest.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#welcome`))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("login did not land on the welcome page (at %q, app errors %v): %v", loc, rec.lastErr(), err)
	}

	mu.Lock()
	defer mu.Unlock()
	// The callback really carried the credentials: the checks below are
	// looking for something that did pass through the browser.
	if len(callbackQueries) != 1 || !hasCredential(callbackQueries[0]) {
		t.Fatalf("callback requests: %d", len(callbackQueries))
	}
	q := mustParseQuery(t, callbackQueries[0])
	code, state := q.Get("code"), q.Get("state")
	if code == "" || state == "" || rec.count() != 1 {
		t.Fatal("the callback had no code and state, or OnLogin was not called")
	}

	// Address bar.
	loc, err = chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != app.URL+"/home" || hasCredential(loc, code, state) {
		t.Errorf("final address bar URL %q, want %s/home", loc, app.URL)
	}

	// History: every navigation entry, and history.length agrees with them.
	hist, err := chromedp.Run(ctx, chromedp.NavigationEntries())
	if err != nil {
		t.Fatal(err)
	}
	length, err := chromedp.Run(ctx, chromedp.Evaluate[int](`history.length`))
	if err != nil {
		t.Fatal(err)
	}
	if length != len(hist.Entries) {
		t.Errorf("history.length = %d but %d navigation entries", length, len(hist.Entries))
	}
	sawLogin := false
	for _, e := range hist.Entries {
		t.Logf("history entry: %s", e.URL)
		if hasCredential(e.URL, code, state) || hasCredential(e.UserTypedURL, code, state) || hasCredential(e.Title, code, state) {
			t.Errorf("history entry holds the code or state: %s", e.URL)
		}
		if strings.HasPrefix(e.URL, app.URL+"/callback") {
			t.Errorf("history holds the callback URL: %s", e.URL)
		}
		sawLogin = sawLogin || strings.HasPrefix(e.URL, srv.Issuer)
	}
	if !sawLogin || int(hist.CurrentIndex) != len(hist.Entries)-1 || hist.Entries[hist.CurrentIndex].URL != app.URL+"/home" {
		t.Errorf("history does not show the login page then /home as current: %+v", hist.Entries)
	}

	// Referer of the landing request.
	if len(landingReferers) != 1 {
		t.Fatalf("landing requests: %d", len(landingReferers))
	}
	if ref := landingReferers[0]; ref != "" {
		t.Errorf("landing request carried Referer %q, want none (Referrer-Policy: no-referrer)", ref)
	}
	if hasCredential(landingQueries[0], code, state) {
		t.Error("landing URL carried the code or state")
	}

	// Cookies: no pending flow left; the session cookie is there.
	if left := pendingCookies(t, ctx, app.URL); len(left) != 0 {
		t.Errorf("pending cookie still in the browser: %d", len(left))
	}
	all, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	session := false
	for _, c := range all.Cookies {
		if strings.HasPrefix(c.Name, cookiePrefix) || hasCredential(c.Value, code, state) {
			t.Errorf("browser still holds cookie %s", c.Name)
		}
		session = session || c.Name == "session"
	}
	if !session {
		t.Error("the session cookie set by OnLogin is missing: cookie listing does not work")
	}
}

// pendingCookies lists the browser's pending-flow cookies for the
// application's callback path.
func pendingCookies(t *testing.T, ctx context.Context, appURL string) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{appURL + "/callback", appURL + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*network.Cookie
	for _, c := range res.Cookies {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			out = append(out, c)
		}
	}
	return out
}
