package callback_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// newNativeClient is the public loopback client of the real server.
func newNativeClient(t testing.TB, srv *oauthtest.Server) *oauthclient.Client {
	t.Helper()
	c, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer:   srv.Issuer,
		ClientID: oauthtest.ClientNative,
		Scopes:   []string{"openid", "profile", "offline_access"},
		HTTP:     strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// syncBuffer collects Out safely while Login writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loopbackRun is one Login running in the background.
type loopbackRun struct {
	authURL  string
	redirect *url.URL // http://127.0.0.1:PORT/callback
	state    string
	out      *syncBuffer
	done     chan struct{}
	tokens   *oauthclient.Tokens
	err      error
}

// startLoopback starts l.Login with an Open that only reports the URL.
func startLoopback(t *testing.T, ctx context.Context, l *callback.Loopback) *loopbackRun {
	t.Helper()
	urls := make(chan string, 1)
	run := &loopbackRun{out: &syncBuffer{}, done: make(chan struct{})}
	l.Out = run.out
	l.Open = func(u string) error { urls <- u; return nil }
	go func() {
		defer close(run.done)
		run.tokens, run.err = l.Login(ctx)
	}()
	select {
	case run.authURL = <-urls:
	case <-run.done:
		t.Fatalf("Login ended before opening the browser: %v", run.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Login never opened the browser")
	}
	u, err := url.Parse(run.authURL)
	if err != nil {
		t.Fatal(err)
	}
	run.state = u.Query().Get("state")
	if run.redirect, err = url.Parse(u.Query().Get("redirect_uri")); err != nil {
		t.Fatal(err)
	}
	// The URL is printed alone on its own line, besides being opened.
	if !strings.Contains(run.out.String(), "\n"+run.authURL+"\n") {
		t.Errorf("the authorization URL was not printed alone on a line:\n%s", run.out.String())
	}
	return run
}

func (r *loopbackRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Login did not return")
	}
}

func (r *loopbackRun) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

func doGet(t *testing.T, target, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestLoopbackLoginRealServer(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv)})
	if run.redirect.Scheme != "http" || run.redirect.Hostname() != "127.0.0.1" || run.redirect.Port() == "" || run.redirect.Path != "/callback" {
		t.Fatalf("redirect URI %s, want http://127.0.0.1:PORT/callback", run.redirect)
	}
	cb, err := srv.Login(context.Background(), run.authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	res, body := doGet(t, cb, "")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signed-in" || body != "" {
		t.Fatalf("callback answered %d Location %q body %q, want 303 to the clean /signed-in", res.StatusCode, res.Header.Get("Location"), body)
	}
	checkHeaders(t, res.Header)
	res, body = doGet(t, run.redirect.Scheme+"://"+run.redirect.Host+"/signed-in", "")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed in") {
		t.Fatalf("result page: %d %q", res.StatusCode, body)
	}
	checkHeaders(t, res.Header)
	for _, bad := range []string{"<script", "<link", "<img", "src=", "href=", run.state} {
		if strings.Contains(body, bad) {
			t.Errorf("result page contains %q", bad)
		}
	}
	run.wait(t)
	if run.err != nil {
		t.Fatal(run.err)
	}
	if run.tokens.Subject() != oauthtest.Subject("alice") || run.tokens.OAuth2Token().RefreshToken == "" {
		t.Fatalf("tokens: %v", run.tokens)
	}
	out := run.out.String()
	if !strings.Contains(out, "Waiting for the callback on "+run.redirect.Host+" (Ctrl-C to cancel)") {
		t.Errorf("no waiting message:\n%s", out)
	}
	if strings.Contains(out, run.tokens.OAuth2Token().AccessToken) || strings.Contains(out, run.tokens.OAuth2Token().RefreshToken) {
		t.Error("a token was printed to Out")
	}
}

func TestLoopbackHostHeaderRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv)})
	cb, err := srv.Login(context.Background(), run.authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	before := srv.TokenRequests("authorization_code")
	for _, host := range []string{"evil.example", "evil.example:" + run.redirect.Port(), "localhost:" + run.redirect.Port(), "127.0.0.1"} {
		res, body := doGet(t, cb, host)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("Host %q: status %d, want 400", host, res.StatusCode)
		}
		checkHeaders(t, res.Header)
		if strings.Contains(body, run.state) {
			t.Errorf("Host %q: page shows the state", host)
		}
	}
	if n := srv.TokenRequests("authorization_code") - before; n != 0 {
		t.Fatalf("%d token requests for callbacks with a foreign Host", n)
	}
	if !run.running() {
		t.Fatal("a foreign Host ended the login")
	}
	// The real browser request still completes the login.
	if res, _ := doGet(t, cb, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("real callback: %d", res.StatusCode)
	}
	run.wait(t)
	if run.err != nil {
		t.Fatal(run.err)
	}
}

func TestLoopbackSecondCallbackRefused(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv)})
	cb, err := srv.Login(context.Background(), run.authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := doGet(t, cb, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback: %d", res.StatusCode)
	}
	n := srv.TokenRequests("authorization_code")
	// Before the result page is fetched the receiver is still up: the
	// replay is refused without a token request.
	res, body := doGet(t, cb, "")
	if res.StatusCode != http.StatusGone || strings.Contains(body, run.state) {
		t.Fatalf("second callback: %d %q, want 410 without the state", res.StatusCode, body)
	}
	checkHeaders(t, res.Header)
	if srv.TokenRequests("authorization_code") != n {
		t.Fatal("the second callback reached the token endpoint")
	}
	run.wait(t)
	if run.err != nil {
		t.Fatal(run.err)
	}
	// Then the receiver is closed.
	if _, err := noRedirect.Get(cb); err == nil {
		t.Fatal("the receiver still answers after the login")
	}
}

func TestLoopbackOtherPathsRevealNothing(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := startLoopback(t, ctx, &callback.Loopback{Client: newNativeClient(t, srv)})
	base := "http://" + run.redirect.Host
	for _, p := range []string{"/", "/favicon.ico", "/callback/", "/callbackx", "/signed-in", "/CALLBACK", "/.well-known/openid-configuration"} {
		res, body := doGet(t, base+p, "")
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
		checkHeaders(t, res.Header)
		for _, secret := range []string{run.state, "state", "code", srv.Issuer, oauthtest.ClientNative} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s reveals %q", p, secret)
			}
		}
	}
	if !run.running() {
		t.Fatal("a stray request ended the login")
	}
	cancel()
	run.wait(t)
	if !errors.Is(run.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", run.err)
	}
}

func TestLoopbackBindsLoopbackOnly(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := startLoopback(t, ctx, &callback.Loopback{Client: newNativeClient(t, srv)})
	// Linux routes all of 127/8 to lo: a listener on 0.0.0.0 or 127/8
	// would accept on 127.0.0.2; one bound to 127.0.0.1 does not.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", run.redirect.Port()), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the receiver accepts connections on 127.0.0.2: it is not bound to 127.0.0.1 only")
	}
	if c, err := net.DialTimeout("tcp", run.redirect.Host, 2*time.Second); err != nil {
		t.Fatalf("the receiver is not reachable on its own address: %v", err)
	} else {
		c.Close()
	}
	cancel()
	run.wait(t)
	if c, err := net.DialTimeout("tcp", run.redirect.Host, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the listener stays open after Login returned")
	}
}

func TestLoopbackListenAddresses(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := newNativeClient(t, srv)
	for _, addr := range []string{"localhost:0", "0.0.0.0:0", ":0", "[::]:0", "10.0.0.1:0", "example.com:80", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http"} {
		l := &callback.Loopback{Client: c, Listen: addr, Out: io.Discard}
		if _, err := l.Login(context.Background()); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("Listen %q: err = %v, want ErrConfig", addr, err)
		}
	}
	for _, p := range []string{"callback", "/a/../b", "/cb?x=1", "/cb#f", "/c b", "/signed-in"} {
		l := &callback.Loopback{Client: c, Path: p, Out: io.Discard}
		if _, err := l.Login(context.Background()); err == nil || errors.Is(err, callback.ErrTimeout) {
			t.Errorf("Path %q accepted", p)
		}
	}

	// A fixed port, as some servers demand: the redirect URI uses it.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	// While it is taken, Login returns the listener's own error: not a
	// configuration error, and nothing is started.
	busy := &callback.Loopback{Client: c, Listen: ln.Addr().String(), Out: io.Discard}
	if _, err := busy.Login(context.Background()); err == nil || errors.Is(err, oauthsafe.ErrConfig) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a busy port: err = %v, want the listener's EADDRINUSE", err)
	}
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := startLoopback(t, ctx, &callback.Loopback{Client: c, Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	if run.redirect.Port() != strconv.Itoa(port) {
		t.Fatalf("redirect %s does not use the fixed port %d", run.redirect, port)
	}
	cb, err := srv.Login(ctx, run.authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := doGet(t, cb, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback on the fixed port: %d", res.StatusCode)
	}
	run.wait(t)
	if run.err != nil {
		t.Fatal(run.err)
	}
}

func TestLoopbackWrongStateThenRight(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv)})
	cb, err := srv.Login(context.Background(), run.authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	before := srv.TokenRequests("authorization_code")
	realCB, _ := url.Parse(cb)
	code := realCB.Query().Get("code")
	forged := []url.Values{
		{"code": {code}, "state": {"forged-state"}, "iss": {srv.Issuer}},
		{"code": {code}, "iss": {srv.Issuer}},
		{"error": {"access_denied"}, "state": {"forged-state"}, "iss": {srv.Issuer}},
		{"code": {code}, "state": {run.state, run.state}},
	}
	for _, q := range forged {
		res, body := doGet(t, run.redirect.String()+"?"+q.Encode(), "")
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: status %d, want 400", q, res.StatusCode)
		}
		checkHeaders(t, res.Header)
		if strings.Contains(body, run.state) || strings.Contains(body, code) || strings.Contains(body, "signed in") {
			t.Errorf("%v: error page shows the state, the code or success: %q", q, body)
		}
	}
	if n := srv.TokenRequests("authorization_code") - before; n != 0 {
		t.Fatalf("%d token requests for forged callbacks", n)
	}
	if !run.running() {
		t.Fatal("a forged callback ended the login")
	}
	if !strings.Contains(run.out.String(), "still waiting") {
		t.Error("the user was not told that a callback was ignored")
	}
	if res, _ := doGet(t, cb, ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("real callback: %d", res.StatusCode)
	}
	run.wait(t)
	if run.err != nil || run.tokens.Subject() != oauthtest.Subject("alice") {
		t.Fatalf("login after forged callbacks: %v %v", run.tokens, run.err)
	}
}

func TestLoopbackErrorWithRightStateEndsLogin(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv)})
	q := url.Values{"error": {"access_denied"}, "error_description": {"<b>no</b>"}, "state": {run.state}, "iss": {srv.Issuer}}
	res, body := doGet(t, run.redirect.String()+"?"+q.Encode(), "")
	if res.StatusCode != http.StatusForbidden || strings.Contains(body, "<b>no</b>") || strings.Contains(body, run.state) {
		t.Fatalf("denied: %d %q", res.StatusCode, body)
	}
	checkHeaders(t, res.Header)
	run.wait(t)
	var ae *oauthclient.AuthError
	if !errors.As(run.err, &ae) || ae.Code != "access_denied" {
		t.Fatalf("err = %v, want *AuthError access_denied", run.err)
	}
}

func TestLoopbackTimeout(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	start := time.Now()
	run := startLoopback(t, context.Background(), &callback.Loopback{Client: newNativeClient(t, srv), Timeout: 300 * time.Millisecond})
	run.wait(t)
	if !errors.Is(run.err, callback.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", run.err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("returned before the timeout")
	}
	if c, err := net.DialTimeout("tcp", run.redirect.Host, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("the listener stays open after the timeout")
	}
}

func TestLoopbackOpenFailureStillPrintsURL(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	out := &syncBuffer{}
	l := &callback.Loopback{Client: newNativeClient(t, srv), Out: out, Timeout: 200 * time.Millisecond,
		Open: func(string) error { return errors.New("no display") }}
	if _, err := l.Login(context.Background()); !errors.Is(err, callback.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	s := out.String()
	if !strings.Contains(s, srv.AuthURL+"?") || !strings.Contains(s, "Could not open a browser") {
		t.Fatalf("output:\n%s", s)
	}
}
