package callback

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// cookieLifetime is the Max-Age of a pending-flow cookie: 10 minutes, or
// less when the flow itself expires sooner.
const cookieLifetime = 10 * time.Minute

// Config configures a [Handler]. Client, OnLogin and either Keys or
// PendingStore are required; every other zero value is documented. New
// copies what it needs; OnLogin, OnError and PendingStore are called
// concurrently and must be safe for concurrent use. A Config prints and
// encodes to JSON without its keys or the client's secret.
type Config struct {
	// Client runs the flows. Its RedirectURL must be set: its path is
	// the Path of every pending-flow cookie, so browsers send them only to
	// the callback. The Client's clock (Config.Now) is used for cookie
	// lifetimes too.
	Client *oauthclient.Client
	// Keys seal pending flows into cookies with AES-256-GCM. Each key is
	// 32 random bytes (crypto/rand.Read). Keys[0] seals; every key opens,
	// so a key is rotated in by putting it first and retired by removing
	// it once the flows it sealed have expired (10 minutes). Replicas that
	// share Keys can complete each other's flows. nil is allowed only
	// when PendingStore is set.
	Keys [][]byte
	// PendingStore keeps pending flows server-side instead of in sealed
	// cookies; the browser then holds only a random value in the flow's
	// cookie, which is still required to take the flow. nil means sealed
	// cookies. Setting both Keys and PendingStore is an error.
	PendingStore PendingStore
	// OnLogin receives the tokens of every completed login, with the
	// validated return-to path of its flow ("" when the flow had none).
	// It keeps the session (for example by setting a session cookie with
	// http.SetCookie on w) and the refresh token (in a tokenstore). It may
	// set headers but must not write a status or body: the Handler answers
	// 303 See Other itself. A non-nil error aborts the login with a 500
	// page; the error is passed to OnError wrapped (errors.Is finds it).
	// Required.
	OnLogin func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error
	// LandingURL is where the browser goes after a login whose flow has no
	// return-to. It must be a same-origin path ("/app/"). "" means "/".
	LandingURL string
	// OnError, when set, is told about every refused Start or callback
	// (for logging and metrics). It must not write to the response. The
	// errors carry no code, state, token or cookie value. nil means
	// errors are only shown to the user, as a plain page.
	OnError func(r *http.Request, err error)
	// CookiePrefix starts the name of each pending-flow cookie; the rest
	// is a hash of the flow's state. "" means "__Secure-oauthsafe-" (the
	// __Secure- prefix makes browsers refuse the cookie unless it is set
	// with the Secure attribute from an https origin). A
	// prefix starting with "__Host-" is refused: that prefix requires
	// Path=/, and these cookies are scoped to the callback path.
	CookiePrefix string
	// StartOptions are the defaults of every login this Handler starts,
	// with Login and with Start: Prompt, LoginHint, MaxAge, Resource and
	// RedirectURL, as for oauthclient.Client.Start (a web application
	// whose API wants RFC 8707 resource indicators sets Resource here). A
	// field Start's opts sets wins over the default. The zero value sends
	// none. New copies it.
	StartOptions oauthclient.StartOptions
}

// Handler is the redirect endpoint of a web application (ServeHTTP), and
// starts logins ([Handler.Start], [Handler.Login]). Each pending flow lives
// in its own cookie, named from a hash of its state, so parallel tabs never
// overwrite each other, and any replica with the same Keys can serve the
// callback. A Handler is safe for concurrent use.
type Handler struct {
	client   *oauthclient.Client
	now      func() time.Time
	sealer   *sealer      // nil in store mode
	store    PendingStore // nil in cookie mode
	onLogin  func(http.ResponseWriter, *http.Request, *oauthclient.Tokens, string) error
	onError  func(*http.Request, error)
	landing  string
	defaults oauthclient.StartOptions
	prefix   string
	path     string // cookie Path: the redirect URL's path
	redirect string // the redirect URL
}

// New checks cfg and returns a Handler. It does no I/O. cfg's slices
// (Keys) are not retained after New returns. An incomplete or invalid cfg
// gives an error matching oauthsafe.ErrConfig.
func New(cfg Config) (*Handler, error) {
	if cfg.Client == nil {
		return nil, cfgerr.New("callback", "Config.Client is required")
	}
	if cfg.OnLogin == nil {
		return nil, cfgerr.New("callback", "Config.OnLogin is required")
	}
	cc := cfg.Client.Config()
	if cc.RedirectURL == "" {
		return nil, cfgerr.New("callback", "the client has no RedirectURL")
	}
	ru, err := url.Parse(cc.RedirectURL)
	if err != nil {
		return nil, cfgerr.New("callback", "the client's RedirectURL is not a URL")
	}
	h := &Handler{
		client:   cfg.Client,
		now:      cc.Now,
		onLogin:  cfg.OnLogin,
		onError:  cfg.OnError,
		landing:  cfg.LandingURL,
		defaults: cfg.StartOptions,
		prefix:   cfg.CookiePrefix,
		path:     ru.EscapedPath(),
		redirect: cc.RedirectURL,
	}
	h.defaults.Resource = slices.Clone(h.defaults.Resource)
	if h.path == "" {
		h.path = "/"
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.landing == "" {
		h.landing = "/"
	}
	if err := checkReturnTo(h.landing); err != nil {
		return nil, cfgerr.New("callback", "LandingURL: %v", err)
	}
	if h.prefix == "" {
		h.prefix = defaultCookiePrefix
	}
	if strings.HasPrefix(strings.ToLower(h.prefix), "__host-") || !validCookieName(h.prefix) {
		return nil, cfgerr.New("callback", "CookiePrefix is not a usable cookie name prefix")
	}
	switch {
	case cfg.PendingStore != nil && cfg.Keys != nil:
		return nil, cfgerr.New("callback", "set Keys or PendingStore, not both")
	case cfg.PendingStore != nil:
		h.store = cfg.PendingStore
	default:
		if h.sealer, err = newSealer(cfg.Keys); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// LoginOptions are per-login settings for [Handler.Start]. The zero value
// is fine: Config.StartOptions then applies. It is a plain value, read by
// Start and not retained.
type LoginOptions struct {
	// StartOptions are passed to oauthclient.Client.Start: Prompt,
	// LoginHint, MaxAge and Resource, and RedirectURL to override the
	// configured one for this flow (it must pass the same check). A zero
	// field takes Config.StartOptions' value.
	oauthclient.StartOptions
	// ReturnTo is the same-origin path ("/reports?id=7") to land on after
	// the login. It is checked by the same rules as the callback's (no
	// "//host", "/\host", schemes, control characters or encoded forms of
	// them) and travels sealed inside the flow. "" means Config.LandingURL.
	ReturnTo string
}

// Start begins a login for the browser that sent r: it creates a pending
// flow, keeps it in a new cookie of its own (sealed, or as a handle into
// Config.PendingStore), and answers 303 See Other to the authorization endpoint.
// Call it from the application's own login handler, and write nothing
// after it. On failure it answers with an error page and returns the error
// (ErrRefused for a refused return-to, or the oauthclient or PendingStore
// error).
// Start is safe for concurrent use.
func (h *Handler) Start(w http.ResponseWriter, r *http.Request, opts LoginOptions) error {
	err := h.start(w, r, opts)
	if err != nil {
		h.fail(w, r, err)
	}
	return err
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request, opts LoginOptions) error {
	if opts.ReturnTo != "" {
		if err := checkReturnTo(opts.ReturnTo); err != nil {
			return err
		}
	}
	p, authURL, err := h.client.Start(r.Context(), h.withDefaults(opts.StartOptions))
	if err != nil {
		return err
	}
	data, err := encodeFlow(flow{pending: p, returnTo: opts.ReturnTo})
	if err != nil {
		return err
	}
	name := h.prefix + stateID(p.State())
	// Max-Age: the time left in the flow, rounded up, at most 10 minutes.
	life := (p.Expiry().Sub(h.now()) + time.Second - 1) / time.Second * time.Second
	if life > cookieLifetime {
		life = cookieLifetime
	}
	if life < time.Second {
		return oauthclient.ErrFlowExpired
	}
	var value string
	if h.sealer != nil {
		value = h.sealer.seal(name, data)
	} else {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("callback: crypto/rand: %w", err)
		}
		value = base64.RawURLEncoding.EncodeToString(b[:])
		if err := h.store.Put(r.Context(), storeKey(p.State(), value), data, p.Expiry()); err != nil {
			return err
		}
	}
	http.SetCookie(w, h.cookie(name, value, int(life/time.Second)))
	seeOther(w, authURL)
	return nil
}

// withDefaults fills the fields opts leaves zero from Config.StartOptions.
func (h *Handler) withDefaults(opts oauthclient.StartOptions) oauthclient.StartOptions {
	d := h.defaults
	if opts.RedirectURL == "" {
		opts.RedirectURL = d.RedirectURL
	}
	if opts.Prompt == "" {
		opts.Prompt = d.Prompt
	}
	if opts.LoginHint == "" {
		opts.LoginHint = d.LoginHint
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = d.MaxAge
	}
	if opts.Resource == nil {
		opts.Resource = slices.Clone(d.Resource)
	}
	return opts
}

// storeKey binds a PendingStore entry to both the state (from the callback URL)
// and the random value of the browser's cookie.
func storeKey(state, cookieValue string) string {
	h := sha256.Sum256([]byte("oauthsafe/callback/store\x00" + state + "\x00" + cookieValue))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     h.path,
		MaxAge:   maxAge, // < 0 deletes (Max-Age=0)
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
	}
}

// Login returns a handler that starts a login (see Start) for GET and
// POST requests, with Config.StartOptions and the return-to path taken
// from the "return_to" query parameter when present. Mount it at the application's login path. The
// returned handler is safe for concurrent use.
func (h *Handler) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			h.fail(w, r, errMethod)
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil || len(q["return_to"]) > 1 {
			h.fail(w, r, fmt.Errorf("%w: malformed query", errReturnTo))
			return
		}
		_ = h.Start(w, r, LoginOptions{ReturnTo: q.Get("return_to")})
	})
}

// ServeHTTP handles the authorization response (GET, or POST for
// response_mode=form_post) at the redirect URL. In order, it:
//
//  1. parses the parameters strictly (ErrRefused: repeated, oversized or
//     too many parameters, code together with error);
//  2. finds the cookie named from the hash of the state and opens it
//     (ErrRefused: no state, no flow, a cookie that does not open); a
//     request whose state matches no flow of this browser touches no
//     flow, so a forged ?error= cannot abort a real login;
//  3. calls oauthclient.Client.Exchange (state in constant time, expiry,
//     error, iss, then the code exchange and ID token);
//  4. deletes the cookie, success or failure, once the state matched, so
//     the flow is single use and a replayed callback URL finds nothing;
//  5. calls Config.OnLogin, then answers 303 See Other to the flow's
//     return-to path or Config.LandingURL, a URL without code or state.
//
// Every response carries the S15 headers (no-store, no-referrer, a CSP of
// default-src 'none', nosniff, DENY). Errors are plain HTML pages that
// show no code or state. ServeHTTP is safe for concurrent use.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	params, err := parseCallback(r)
	if err != nil {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
		}
		h.fail(w, r, err)
		return
	}
	name, f, err := h.flowOf(r, params.Get("state"))
	if err != nil {
		// The cookie is left alone: only a request whose state opened
		// the flow may consume it (a replica with the right key still can).
		h.fail(w, r, err)
		return
	}
	tokens, err := h.exchange(w, r, name, f, params)
	if err == nil {
		err = h.finish(w, r, tokens, f.returnTo)
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

// flowOf names the cookie of state's flow and opens the flow.
func (h *Handler) flowOf(r *http.Request, state string) (name string, f flow, err error) {
	if state == "" {
		return "", flow{}, fmt.Errorf("%w: the callback has no state", errNoFlow)
	}
	name = h.prefix + stateID(state)
	f, err = h.load(r, name, state)
	return name, f, err
}

// exchange runs the code exchange of flow f and deletes its cookie once
// the state matched, success or failure.
func (h *Handler) exchange(w http.ResponseWriter, r *http.Request, name string, f flow, params url.Values) (*oauthclient.Tokens, error) {
	// The code is spent once the token request leaves: a browser that
	// drops its connection must not cancel the exchange half-way, so it
	// runs detached from the request, under its own bound (the loopback
	// receiver does the same).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), exchangeTimeout)
	defer cancel()
	tokens, err := h.client.Exchange(ctx, f.pending, params)
	if errors.Is(err, oauthclient.ErrStateMismatch) {
		// Cannot happen for a cookie found by the state's hash; if it
		// does, the flow is not this request's to consume.
		return nil, err
	}
	http.SetCookie(w, h.cookie(name, "", -1))
	return tokens, err
}

// finish hands the tokens to OnLogin and, when it succeeded, answers 303
// See Other to returnTo or the landing URL with the headers OnLogin set.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, tokens *oauthclient.Tokens, returnTo string) error {
	ow := &onLoginWriter{header: http.Header{}}
	if err := h.onLogin(ow, r, tokens, returnTo); err != nil {
		return fmt.Errorf("%w: %w", errOnLogin, err)
	}
	if ow.wrote {
		return fmt.Errorf("%w: OnLogin wrote to the response (%w)", errOnLogin, cfgerr.ErrConfig)
	}
	// Only a login that succeeded sends what OnLogin set (its session
	// cookie); the security headers are set afterwards and win.
	for k, vs := range ow.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	dest := returnTo
	if dest == "" {
		dest = h.landing
	}
	seeOther(w, dest)
	return nil
}

// load finds and opens the pending flow of this browser for state.
func (h *Handler) load(r *http.Request, name, state string) (flow, error) {
	var values []string
	for _, c := range r.Cookies() {
		if c.Name == name {
			values = append(values, c.Value)
		}
	}
	if len(values) == 0 {
		return flow{}, fmt.Errorf("%w: no cookie for this state", errNoFlow)
	}
	if len(values) > 4 {
		return flow{}, fmt.Errorf("%w: too many cookies for this state", errBadCookie)
	}
	var lastErr error
	for _, v := range values {
		var data []byte
		var err error
		if h.sealer != nil {
			data, err = h.sealer.open(name, v)
		} else {
			data, err = h.store.Take(r.Context(), storeKey(state, v))
			if err == nil && data == nil {
				err = fmt.Errorf("%w: not in the store (completed, expired or evicted)", errNoFlow)
			}
		}
		if err != nil {
			lastErr = err
			continue
		}
		f, err := decodeFlow(data)
		if err != nil {
			lastErr = fmt.Errorf("%w: %w", errBadCookie, err)
			continue
		}
		// The value is bound to this cookie name (the sealing's additional
		// data, or the store key), which is derived from the state;
		// Exchange compares the state itself, in constant time.
		return f, nil
	}
	return flow{}, lastErr
}

// onLoginWriter collects the headers OnLogin sets (a session cookie), which
// reach the response only if the login succeeds, and records any attempt to
// write a status or body, which the Handler refuses.
type onLoginWriter struct {
	header http.Header
	wrote  bool
}

func (o *onLoginWriter) Header() http.Header { return o.header }
func (o *onLoginWriter) WriteHeader(int)     { o.wrote = true }
func (o *onLoginWriter) Write(b []byte) (int, error) {
	o.wrote = true
	return 0, cfgerr.New("callback", "OnLogin must not write a body")
}

// exchangeTimeout bounds the code exchange of one callback (token request
// and ID token validation, JWKS fetch included).
const exchangeTimeout = 60 * time.Second

// fail reports err to OnError and answers with the matching error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if h.onError != nil {
		h.onError(r, err)
	}
	status, pg := errorPage(err)
	writePage(w, status, pg)
}

// errorPage maps an error to a status and a page that shows no code, state
// or token. Only an authorization server's error code and description are
// shown, clipped and escaped.
func errorPage(err error) (int, page) {
	const title = "Sign-in failed"
	var ae *oauthclient.AuthError
	switch {
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, page{title, "This address only accepts a sign-in response.", ""}
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, page{title, "The sign-in response was malformed.", ""}
	case errors.Is(err, errNoFlow), errors.Is(err, errBadCookie):
		return http.StatusBadRequest, page{title, "No sign-in is in progress in this browser, or it has already completed. Please start again.", ""}
	case errors.Is(err, oauthclient.ErrFlowExpired):
		return http.StatusBadRequest, page{title, "The sign-in took too long. Please start again.", ""}
	case errors.Is(err, errReturnTo):
		return http.StatusBadRequest, page{title, "The address to return to after sign-in is not allowed.", ""}
	case errors.As(err, &ae) && ae.Endpoint == "authorization" && ae.Problem == "":
		detail := "The authorization server answered: " + safetext.Clean(ae.Code, 64)
		if ae.Description != "" {
			detail += " (" + safetext.Clean(ae.Description, 300) + ")"
		}
		return http.StatusForbidden, page{title, "The sign-in was not completed.", detail}
	case errors.Is(err, oauthclient.ErrIssuerMismatch), errors.Is(err, oauthclient.ErrStateMismatch):
		return http.StatusBadRequest, page{title, "The sign-in response did not come from the expected server.", ""}
	case errors.Is(err, errOnLogin):
		return http.StatusInternalServerError, page{title, "The sign-in succeeded but the session could not be created.", ""}
	default:
		return http.StatusBadGateway, page{title, "The sign-in could not be completed with the authorization server.", ""}
	}
}
