package callback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// This file is the loopback receiver for desktop and CLI logins (RFC 8252
// §7.3, S21 in docs/architecture.md). It shares its pages and headers with the web
// Handler (page.go) and parses callbacks with the same strict parser
// (request.go).

// defaultLoopbackPath is the redirect path used when Loopback.Path is "".
// Servers match the path of a loopback redirect URI exactly and ignore its
// port, so the path is fixed rather than random.
const defaultLoopbackPath = "/callback"

// defaultLoopbackTimeout bounds a loopback login when Loopback.Timeout is 0.
const defaultLoopbackTimeout = 5 * time.Minute

// loopbackDonePath is where a completed login is redirected: a clean URL
// with no code or state, which shows the result page.
const loopbackDonePath = "/signed-in"

// pageGrace is how long the receiver keeps serving after a completed login
// so that the browser can fetch the result page.
const pageGrace = 3 * time.Second

// ErrTimeout: no valid callback arrived within Loopback.Timeout.
var ErrTimeout = errors.New("callback: timed out waiting for the loopback callback")

// Loopback receives the authorization response of a desktop or CLI login
// on http://127.0.0.1:PORT/callback (RFC 8252 §7.3). Set the fields, then
// call Login. The zero value of each optional field is documented; a
// Loopback may be reused for several logins, one after another or at the
// same time (each Login has its own listener), and is safe for concurrent
// use as long as its fields are not changed.
//
// # Guarantees
//
//   - It listens on a loopback IP literal only (127.0.0.1 by default, never
//     the name localhost, never a wildcard address), on an ephemeral port
//     unless Listen names one, and the redirect URI carries that IP literal
//     and port.
//   - Requests whose Host header is not exactly that IP and port are
//     refused (DNS rebinding). Paths other than the callback path, GET /
//     included, answer 404 with a page that reveals nothing.
//   - A callback is checked exactly as oauthclient.Client.Exchange checks
//     it (state in constant time and expiry, then error, then iss, then the
//     code exchange and the ID token). A callback whose state is wrong or
//     missing gets an error page, makes no token request and does not end
//     the login: the receiver keeps waiting for the real one, so a forged
//     request cannot abort or hijack it.
//   - Exactly one callback with the right state is processed. Then the
//     receiver stops accepting callbacks and closes. A successful login
//     answers 303 See Other to a clean URL (no code or state) whose small
//     result page is shown only then. Every response carries the S15
//     headers and loads nothing.
//   - Login ends at Timeout or when ctx is done, and never leaves the
//     listener open.
type Loopback struct {
	// Client runs the flow. Required. Its Config.RedirectURL is not used:
	// the redirect URI is built from the listener's address and Path.
	Client *oauthclient.Client
	// Path is the registered redirect path. "" means "/callback" (servers
	// match the path of a loopback redirect URI exactly and ignore its
	// port, so the path is fixed rather than random).
	Path string
	// Listen is "127.0.0.1:PORT" (or another loopback IP literal, such as
	// "[::1]:PORT") for servers that demand a fixed port. "" means
	// 127.0.0.1 on an ephemeral port.
	Listen string
	// Timeout bounds the whole login. 0 means 5 minutes.
	Timeout time.Duration
	// Open opens the authorization URL in a browser. nil means no browser
	// is opened (the URL is printed only). An error is reported on Out and
	// the receiver keeps waiting, since the user can copy the URL.
	Open func(url string) error
	// Out receives the progress messages and, always, the authorization
	// URL alone on one line. nil means os.Stderr. It never receives a
	// token, code or state other than the one inside that URL.
	Out io.Writer
	// StartOptions are passed to Client.Start (its RedirectURL is
	// replaced). The zero value is fine.
	StartOptions oauthclient.StartOptions
}

// checkListen parses a listen address and insists on a loopback IP literal.
func checkListen(addr string) (network, hostport string, err error) {
	if addr == "" {
		return "tcp4", "127.0.0.1:0", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", cfgerr.New("callback", "Loopback.Listen must be host:port")
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", "", cfgerr.New("callback", "Loopback.Listen: the host must be a loopback IP literal such as 127.0.0.1")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", cfgerr.New("callback", "Loopback.Listen: bad port")
	}
	if ip.To4() != nil {
		return "tcp4", net.JoinHostPort(ip.String(), port), nil
	}
	return "tcp6", net.JoinHostPort(ip.String(), port), nil
}

func (l *Loopback) path() (string, error) {
	p := l.Path
	if p == "" {
		return defaultLoopbackPath, nil
	}
	if len(p) > 256 || p[0] != '/' || path.Clean(p) != p || p == loopbackDonePath || !printableASCII(p) {
		return "", cfgerr.New("callback", "Loopback.Path must be a clean absolute path")
	}
	return p, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '?' || s[i] == '#' || s[i] == '%' {
			return false
		}
	}
	return true
}

// loopbackResult is the outcome of the one callback that matched the state.
type loopbackResult struct {
	tokens *oauthclient.Tokens
	err    error
}

// Login runs one desktop login: it listens, starts the flow, prints the
// authorization URL to Out (and opens it with Open), waits for the callback
// and returns the verified tokens. Errors: an error matching oauthsafe.ErrConfig (a
// Listen that is not a loopback IP literal with a port, such as
// "localhost:8080", "0.0.0.0:0" or ":8080"), the listener's own error
// (an address in use), ErrTimeout,
// ctx.Err(), oauthclient's errors for the one callback with the right
// state (an *oauthclient.AuthError for access_denied,
// oauthclient.ErrIssuerMismatch...), or the error of Client.Start. No error
// string contains a code, state or token.
func (l *Loopback) Login(ctx context.Context) (*oauthclient.Tokens, error) {
	set, err := l.settings()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, set.timeout, ErrTimeout)
	defer cancel()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, set.network, set.addr)
	if err != nil {
		return nil, fmt.Errorf("callback: loopback listen: %w", err)
	}
	hostport := ln.Addr().String() // the IP literal and the real port
	opts := l.StartOptions
	opts.RedirectURL = "http://" + hostport + set.path
	pending, authURL, err := l.Client.Start(ctx, opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	r := &receiver{
		client:   l.Client,
		pending:  pending,
		host:     hostport,
		path:     set.path,
		out:      set.out,
		result:   make(chan loopbackResult, 1),
		pageSeen: make(chan struct{}),
	}
	serveErr, stop := r.serve(ctx, ln)
	defer stop()
	l.announce(set.out, authURL, hostport)
	return r.wait(ctx, serveErr)
}

// loopbackSettings are a Loopback's fields checked, with defaults applied.
type loopbackSettings struct {
	path, network, addr string
	out                 io.Writer
	timeout             time.Duration
}

// settings checks l's fields and applies their defaults.
func (l *Loopback) settings() (loopbackSettings, error) {
	if l.Client == nil {
		return loopbackSettings{}, cfgerr.New("callback", "Loopback.Client is required")
	}
	var set loopbackSettings
	var err error
	if set.path, err = l.path(); err != nil {
		return loopbackSettings{}, err
	}
	if set.network, set.addr, err = checkListen(l.Listen); err != nil {
		return loopbackSettings{}, err
	}
	set.out, set.timeout = l.Out, l.Timeout
	if set.out == nil {
		set.out = os.Stderr
	}
	if set.timeout <= 0 {
		set.timeout = defaultLoopbackTimeout
	}
	return set, nil
}

// announce prints the authorization URL (alone on its line) and opens it
// with Open when set.
func (l *Loopback) announce(out io.Writer, authURL, hostport string) {
	fmt.Fprintln(out, "Open this URL in your browser to sign in:")
	fmt.Fprintln(out, authURL)
	if l.Open != nil {
		fmt.Fprintln(out, "Opening browser…")
		if err := l.Open(authURL); err != nil {
			fmt.Fprintf(out, "Could not open a browser (%v); open the URL above yourself.\n", err)
		}
	}
	fmt.Fprintf(out, "Waiting for the callback on %s (Ctrl-C to cancel)\n", hostport)
}

// serve runs the receiver's server on ln until stop is called, which
// shuts it down (within 2 s, then closes it). The server's own failure is
// sent on the returned channel.
func (rc *receiver) serve(ctx context.Context, ln net.Listener) (<-chan error, func()) {
	srv := &http.Server{
		Handler:           rc.handler(ctx),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	return serveErr, func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}
}

// wait returns the outcome of the one callback with the right state, after
// giving the browser a moment to fetch the result page of a success; or
// the server's failure, ErrTimeout, or ctx's error.
func (rc *receiver) wait(ctx context.Context, serveErr <-chan error) (*oauthclient.Tokens, error) {
	select {
	case res := <-rc.result:
		if res.err == nil {
			t := time.NewTimer(pageGrace)
			select {
			case <-rc.pageSeen:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		return res.tokens, res.err
	case err := <-serveErr:
		return nil, fmt.Errorf("callback: loopback server stopped: %w", err)
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return nil, ErrTimeout
		}
		return nil, ctx.Err()
	}
}

// receiver is the HTTP side of one Login.
type receiver struct {
	client  *oauthclient.Client
	pending *oauthclient.Pending
	host    string
	path    string
	out     io.Writer

	mu       sync.Mutex
	finished bool // the state matched once: no more callbacks
	success  bool // ...and the login succeeded: the result page may be shown
	pageOnce sync.Once
	pageSeen chan struct{}
	result   chan loopbackResult
}

var (
	pageNotFound = page{"Not found", "There is nothing here.", ""}
	pageBadHost  = page{"Request refused", "This address only answers requests for its own address.", ""}
	pageDone     = page{"Signed in", "You are signed in. You can close this tab and return to the application.", ""}
	pageOver     = page{"Sign-in already completed", "This sign-in has already been completed or stopped. Please start again from the application if needed.", ""}
	pageWrong    = page{"Sign-in failed", "This sign-in response does not belong to the sign-in in progress. It was ignored; the application is still waiting.", ""}
)

// handler serves the receiver. ctx is the Login's context, used for the
// code exchange so that a browser closing its connection cannot abort the
// exchange of a code that is then spent.
func (rc *receiver) handler(ctx context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if r.Host != rc.host {
			writePage(w, http.StatusBadRequest, pageBadHost)
			return
		}
		switch r.URL.Path {
		case rc.path:
			rc.callback(ctx, w, r)
		case loopbackDonePath:
			rc.mu.Lock()
			ok := rc.success
			rc.mu.Unlock()
			if !ok || r.Method != http.MethodGet || r.URL.RawQuery != "" {
				writePage(w, http.StatusNotFound, pageNotFound)
				return
			}
			writePage(w, http.StatusOK, pageDone)
			rc.pageOnce.Do(func() { close(rc.pageSeen) })
		default:
			writePage(w, http.StatusNotFound, pageNotFound)
		}
	})
}

func (rc *receiver) callback(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	// One callback at a time: the first with the right state ends the flow.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.finished {
		writePage(w, http.StatusGone, pageOver)
		return
	}
	params, err := parseCallback(r)
	if err != nil {
		status, pg := errorPage(err)
		fmt.Fprintln(rc.out, "Ignored a malformed request to the callback address; still waiting.")
		writePage(w, status, pg)
		return
	}
	tokens, err := rc.client.Exchange(ctx, rc.pending, params)
	if errors.Is(err, oauthclient.ErrStateMismatch) {
		// Not this flow's response: no token request was made. Keep
		// waiting for the real one.
		fmt.Fprintln(rc.out, "Ignored a callback with a wrong or missing state; still waiting.")
		writePage(w, http.StatusBadRequest, pageWrong)
		return
	}
	rc.finished = true
	if err != nil {
		status, pg := errorPage(err)
		writePage(w, status, pg)
		rc.result <- loopbackResult{err: err}
		return
	}
	rc.success = true
	seeOther(w, loopbackDonePath)
	rc.result <- loopbackResult{tokens: tokens}
}
