// Package strictnet is the one strict HTTP client of oauthsafe (S1, S2,
// S18): every server call of the module (discovery, token, JWKS,
// introspection, userinfo, revocation, device authorization) and every API
// call goes through a transport built here, so there is one place where TLS
// is dialed and verified.
//
// Where to start: most users never call this package. They set its
// [Config] as oauthclient.Config.HTTP (or api.Config.HTTP) to bring their
// own roots, pins, client certificates, proxy, dialer, tracing wrapper or
// logger. A resource server that verifies tokens gives validate a client
// from [NewClient], since validate refuses any client it did not build.
//
// The transport dials TLS itself: the caller may bring a plain TCP dialer
// and a proxy function, never a TLS dialer, a TLS configuration or a
// verification callback. The handshake always uses TLS 1.2 or later,
// verifies the chain against the configured roots (the system's when none)
// and the host name, and checks the SPKI pins before a request byte is
// written. A caller's wrapper (tracing, metrics) goes around the
// transport: it sees every request and response, and cannot replace the
// handshake or read a credential. Anything that could replace or weaken
// verification cannot be expressed in [Config]; what can be checked is
// checked by [NewClient], which returns a [*PolicyError] naming the field.
package strictnet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Config is what a caller may bring to the strict client: roots, pins,
// client certificates, a proxy function, a plain TCP dialer, a timeout, a
// wrapper and a logger. There is no field for a TLS dialer, a tls.Config or
// a verification callback: the handshake is always this package's. Every
// field's zero value is usable; the zero Config verifies against the system
// roots.
type Config struct {
	// RootCAs verifies server certificates. nil means the system roots.
	RootCAs *x509.CertPool
	// PinnedSPKI optionally pins server public keys: base64 (std encoding) of
	// the SHA-256 of a certificate's SubjectPublicKeyInfo (see [SPKIPin]).
	// When non-empty, some certificate of the verified chain must match one
	// pin, checked during the handshake, before any request byte is sent.
	// Through an https proxy, the proxy's certificate must match too.
	PinnedSPKI []string
	// Certificates are client certificates for mutual TLS (RFC 8705). nil means none.
	Certificates []tls.Certificate
	// Proxy returns the proxy for a request, as http.Transport.Proxy. nil
	// means http.ProxyFromEnvironment; a function returning nil, nil means
	// no proxy. TLS to the server runs through the proxy's tunnel and is
	// verified as without one.
	Proxy func(*http.Request) (*url.URL, error)
	// DialContext opens the plain TCP connection (a SOCKS dialer, a
	// corporate network) that TLS then runs over; a connection it returns
	// is never trusted as TLS. nil means a net.Dialer with a 10 s timeout.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each call, body included. 0 means [DefaultTimeout].
	Timeout time.Duration
	// Wrap, when set, is called once with the strict transport and returns
	// the RoundTripper the client uses: a tracing or metrics wrapper such
	// as otelhttp.NewTransport. The wrapper must pass each request to the
	// RoundTripper it was given; one that answers without it fails the call
	// with a *PolicyError. A wrapper sees each request's method, URL and
	// ordinary headers (it may add its own, such as traceparent), and the
	// response's status and headers; it never sees the credential headers
	// (Authorization, Proxy-Authorization, Cookie, DPoP), the request body,
	// the response body or Set-Cookie, which the strict transport keeps
	// and puts back after the wrapper has handed the request on. So a
	// wrapper that goes around the transport it was given sends nothing
	// secret. Returning an *http.Transport is refused.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Logger, when set, receives one event per server call: endpoint kind,
	// method, the URL without query values, status, duration and an error
	// class. Never a header, a body, a token, a code or a secret.
	Logger *slog.Logger
	// AllowLoopbackHTTP lets the client call servers over plain http on a
	// loopback host, for local development and conformance suites (S1).
	// false (the default) refuses every URL but https. When true: only the
	// hosts localhost, 127.0.0.0/8 and ::1 may be reached over http; the
	// name is resolved here and the call is refused if any address it
	// resolves to is not loopback, and the connection is made to a
	// loopback address only (never through a proxy); an https URL is
	// never downgraded and is verified as always; and the client logs one
	// warning when it is built (to Logger, else slog.Default()). Every
	// other package of the module that checks a server URL (oauthclient,
	// apiclient, validate, resourceclient) accepts such an http URL only
	// when the client it uses was built with this option.
	AllowLoopbackHTTP bool
}

// DefaultTimeout bounds a call when Config.Timeout is zero: the module's
// one default for server calls.
const DefaultTimeout = 30 * time.Second

// MaxResponseSize bounds every response body read from a server (S18):
// token, discovery, JWKS, revocation, introspection, userinfo and device
// endpoints. API responses, the caller's own, are not bounded.
const MaxResponseSize = netrule.MaxResponseSize

var (
	// ErrPolicy is matched by every *PolicyError: a configuration or a
	// server the security policy refuses, here or in any package of the
	// module (oauthclient.ErrPolicy is this value).
	ErrPolicy = errors.New("oauthsafe: refused by security policy")
	// ErrResponseTooLarge: a server response exceeded MaxResponseSize.
	// Reading past the bound fails with it; a body is never silently cut.
	ErrResponseTooLarge = netrule.ErrResponseTooLarge
)

// PolicyError reports a refusal by the security policy: plain http,
// TLS that is not verified, a pin that does not match, a wrapper that went
// around the transport, and in the other packages of the module a
// configuration or a server answer the policy forbids. It matches
// [ErrPolicy]. It is the module's one policy error type.
type PolicyError struct {
	Field  string // the configuration field refused ("HTTP.Wrap"), "" when the refusal is not about one
	Reason string // human-readable, never contains secrets
}

func (e *PolicyError) Error() string        { return "oauthsafe: refused by security policy: " + e.Reason }
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }

// errReplay: a wrapper sent a request twice whose body cannot be
// replayed. The transport refuses the call with a *PolicyError saying so.
var errReplay = errors.New("the Wrap RoundTripper sent the request twice and its body cannot be replayed")

// fieldError is a Config field refused by NewClient.
func fieldError(field, reason string) error {
	return &PolicyError{Field: field, Reason: field + " " + reason}
}

// refusal marks a refusal of the transport itself, for errorClass.
type refusal struct {
	err error
	pin bool // an SPKI pin mismatch
}

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// transport is the strict transport, with the caller's wrapper (if any)
// inside it and the logging around both. Only NewClient makes one; Owned
// recognizes a client built on one. Safe for concurrent use.
type transport struct {
	next     http.RoundTripper // Wrap(inner), or inner
	inner    *inner
	logger   *slog.Logger
	endpoint string // for log events of calls whose context names none; "" means "unknown"
}

// inner dials and verifies; it is the only RoundTripper that touches the network.
type inner struct {
	tr   *http.Transport
	tls  *tls.Config
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// unbounded: API calls, whose bodies are the caller's; every other
	// client bounds bodies at MaxResponseSize (S18).
	unbounded bool
	// plain carries http calls to loopback hosts (AllowLoopbackHTTP); nil
	// when the option is off.
	plain *http.Transport
}

func (in *inner) refuse(reason string) error { return &refusal{err: &PolicyError{Reason: reason}} }

// NewClient returns the strict client (S1, S2, S18):
//
//   - TLS 1.2 or later, dialed by this package, certificates and host
//     names always verified, optional SPKI pins checked in the handshake;
//   - only https URLs, any other scheme is refused before a connection is
//     made (save http to a loopback host with [Config.AllowLoopbackHTTP]);
//   - redirects are never followed: a 3xx answer is returned to the
//     caller, which treats it as an error (token, revocation and
//     introspection calls must not follow redirects, and nothing else
//     needs to);
//   - every call is bounded by a timeout and every body by
//     [MaxResponseSize] (reading past it fails with [ErrResponseTooLarge],
//     it is never silently cut);
//   - a server's HTTP status line and the text of TLS errors are cleaned
//     of control and bidi characters (S22).
//
// A bad field is refused with a *PolicyError whose Field names it. The
// validate package accepts the returned client (or a copy of it) as its
// HTTPClient, and refuses every other non-nil client. The returned client
// is safe for concurrent use.
func NewClient(cfg Config) (*http.Client, error) {
	return newClient(cfg, "", false)
}

func init() {
	netrule.ClientAllowsLoopbackHTTP = func(c *http.Client) bool {
		if !Owned(c) {
			return false
		}
		return c.Transport.(*transport).inner.plain != nil
	}
	netrule.NewClient = func(cfg any, api bool) (*http.Client, error) {
		endpoint := ""
		if api {
			endpoint = "api"
		}
		c, err := newClient(cfg.(Config), endpoint, api)
		var pe *PolicyError
		if errors.As(err, &pe) && pe.Field != "" {
			return nil, &PolicyError{Field: "HTTP." + pe.Field, Reason: "HTTP." + pe.Reason}
		}
		return c, err
	}
}

// newClient is NewClient whose log events name endpoint when the call's
// context names none, and whose bodies are not bounded when unbounded
// (API calls only).
func newClient(cfg Config, endpoint string, unbounded bool) (*http.Client, error) {
	t, err := newTransport(cfg, endpoint, unbounded)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{Transport: t, CheckRedirect: refuseRedirect, Timeout: timeout}, nil
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Owned reports whether c was built by [NewClient]. A copy of such a
// client (other CheckRedirect, Timeout or Jar) is still owned; a client
// whose Transport was replaced or wrapped is not.
func Owned(c *http.Client) bool {
	if c == nil {
		return false
	}
	t, ok := c.Transport.(*transport)
	return ok && t != nil && t.inner != nil
}

// SPKIPin returns the pin of cert for Config.PinnedSPKI.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func newTransport(cfg Config, endpoint string, unbounded bool) (*transport, error) {
	if cfg.Timeout < 0 {
		return nil, fieldError("Timeout", "is negative")
	}
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    cfg.RootCAs,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if len(cfg.Certificates) > 0 {
		tc.Certificates = append([]tls.Certificate(nil), cfg.Certificates...)
	}
	if len(cfg.PinnedSPKI) > 0 {
		pins := make(map[[32]byte]bool, len(cfg.PinnedSPKI))
		for _, p := range cfg.PinnedSPKI {
			b, err := base64.StdEncoding.DecodeString(p)
			if err != nil || len(b) != sha256.Size {
				return nil, fieldError("PinnedSPKI", "holds a pin that is not base64 of a SHA-256 digest")
			}
			pins[[32]byte(b)] = true
		}
		// VerifyConnection runs after the chain and host name are
		// verified, inside the handshake: a mismatch sends no request.
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, chain := range cs.VerifiedChains {
				for _, cert := range chain {
					if pins[sha256.Sum256(cert.RawSubjectPublicKeyInfo)] {
						return nil
					}
				}
			}
			return &refusal{err: &PolicyError{Reason: "server public key matches no SPKI pin"}, pin: true}
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	in := &inner{tls: tc, dial: cfg.DialContext, unbounded: unbounded}
	if in.dial == nil {
		in.dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	in.tr = &http.Transport{
		Proxy:       proxy,
		DialContext: in.dial,
		// Our own TLS dialer for direct connections; TLSClientConfig (the
		// same strict config) covers the TLS net/http runs after a proxy
		// CONNECT.
		DialTLSContext:        in.dialTLS,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	if cfg.AllowLoopbackHTTP {
		in.plain = &http.Transport{
			Proxy:                 nil, // a proxy is not a loopback host
			DialContext:           in.dialLoopback,
			MaxIdleConns:          10,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: timeout,
		}
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn(netrule.LoopbackWarning)
	}
	t := &transport{next: in, inner: in, logger: cfg.Logger, endpoint: endpoint}
	if cfg.Wrap != nil {
		w := cfg.Wrap(in)
		switch w.(type) {
		case nil:
			return nil, fieldError("Wrap", "returned no RoundTripper")
		case *http.Transport:
			return nil, fieldError("Wrap", "returned an *http.Transport instead of wrapping the transport it was given")
		case *transport:
			return nil, fieldError("Wrap", "returned another strict transport instead of wrapping the one it was given")
		}
		t.next = w
	}
	return t, nil
}

// dialTLS is the only TLS handshake of the transport's direct connections.
func (in *inner) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := in.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := in.tls.Clone()
	cfg.ServerName = host
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, cleanErr(err)
	}
	return tc, nil
}

type ticketKey struct{}

// ticket carries a request past the caller's wrapper: it records that the
// inner transport saw the request, and holds what the wrapper must not see
// (credential headers and the body), which the inner transport puts back.
type ticket struct {
	seen    bool
	hidden  bool
	header  http.Header // the credential headers taken off the request
	body    io.ReadCloser
	getBody func() (io.ReadCloser, error)
	// dest is where the SDK sent the request (URL and Host): the inner
	// transport refuses a request the wrapper sent elsewhere.
	dest, host string
	// respBody and respCookies are the response's body and Set-Cookie
	// headers, kept from the wrapper and put back after it returns.
	respBody    io.ReadCloser
	respCookies []string
	answer      *http.Response // the last response handed to the wrapper
}

// credentialHeaders never reach a wrapper: they carry tokens, client
// secrets or proofs.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Dpop"}

// hide returns a copy of req for the wrapper: without credential headers
// and with an empty body (ContentLength kept, so a wrapper may record the
// size), and remembers the originals in tk.
func hide(req *http.Request, tk *ticket) *http.Request {
	out := req.Clone(req.Context())
	tk.hidden = true
	tk.dest, tk.host = req.URL.String(), req.Host
	tk.header = http.Header{}
	for _, h := range credentialHeaders {
		if v, ok := req.Header[http.CanonicalHeaderKey(h)]; ok {
			tk.header[http.CanonicalHeaderKey(h)] = v
			out.Header.Del(h)
		}
	}
	tk.body, tk.getBody = req.Body, req.GetBody
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = http.NoBody
		out.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	return out
}

// restore puts back on req (the wrapper's request, with whatever headers
// the wrapper added) what hide took off. A wrapper that retries gets the
// body again only when the request can replay it.
func (tk *ticket) restore(req *http.Request) (*http.Request, error) {
	if !tk.hidden {
		return req, nil
	}
	out := req.Clone(req.Context())
	for k, v := range tk.header {
		out.Header[k] = v
	}
	switch {
	case tk.body == nil || tk.body == http.NoBody:
		out.Body = tk.body
	case !tk.seen:
		out.Body = tk.body
	case tk.getBody != nil:
		b, err := tk.getBody()
		if err != nil {
			return nil, err
		}
		out.Body = b
	default:
		return nil, errReplay
	}
	out.GetBody = tk.getBody
	return out, nil
}

// RoundTrip sends req through the wrapper (if any) and the strict
// transport, and logs one event.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	tk := &ticket{}
	sent := req.WithContext(context.WithValue(req.Context(), ticketKey{}, tk))
	if t.next != http.RoundTripper(t.inner) {
		// A wrapper sees the method, URL and ordinary headers, never a
		// credential or a body: even a wrapper that ignores the transport
		// it was given and sends the request itself sends nothing secret.
		sent = hide(sent, tk)
	}
	resp, err := t.wrapped(sent, tk)
	var pe *PanicError
	if errors.As(err, &pe) {
		if tk.hidden && tk.answer != nil {
			pe.Response = tk.unhide(req, tk.answer, nil)
		}
		if t.logger != nil {
			t.log(req, nil, err, time.Since(start))
		}
		return nil, err
	}
	if err == nil && !tk.seen {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		resp, err = nil, t.inner.refuse("the Wrap RoundTripper answered without calling the strict transport it was given")
	}
	if tk.hidden {
		resp = tk.unhide(req, resp, err)
	}
	if err != nil {
		err = cleanErr(err)
	}
	if t.logger != nil {
		t.log(req, resp, err, time.Since(start))
	}
	return resp, err
}

// PanicError is returned when the caller's Wrap RoundTripper panicked. The
// panic is recovered (it is the caller's code, and it must not end a
// process between a token request and the write of its outcome).
// Response, when not nil, is the server's answer as the strict transport
// received it (body included, to be closed by the receiver): the server
// may have acted on the request (rotated a refresh token), so the caller
// can still read what it said.
type PanicError struct {
	Value    string // the panic value's type
	Response *http.Response
}

func (e *PanicError) Error() string {
	return "the Wrap RoundTripper panicked (" + e.Value + ")"
}

// wrapped calls the wrapper (or the strict transport) and turns a panic
// into a *PanicError.
func (t *transport) wrapped(req *http.Request, tk *ticket) (resp *http.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, &PanicError{Value: fmt.Sprintf("%T", p)}
		}
	}()
	return t.next.RoundTrip(req)
}

func (in *inner) RoundTrip(req *http.Request) (*http.Response, error) {
	wrapperReq := req
	tk, _ := req.Context().Value(ticketKey{}).(*ticket)
	if tk != nil {
		if tk.hidden && (req.URL == nil || req.URL.String() != tk.dest || req.Host != tk.host) {
			// A credential never leaves for a place the SDK did not choose.
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, in.refuse("the Wrap RoundTripper changed where the request goes")
		}
		r, err := tk.restore(req)
		tk.seen = true
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, in.refuse(err.Error())
		}
		req = r
	}
	rt := in.tr
	if req.URL == nil || req.URL.Scheme != "https" {
		if in.plain == nil || !netrule.LoopbackHTTPURL(req.URL) {
			if req.Body != nil {
				req.Body.Close()
			}
			if in.plain != nil {
				return nil, in.refuse("only https endpoints, and http on localhost, 127.0.0.0/8 or ::1, are allowed")
			}
			return nil, in.refuse("only https endpoints are allowed")
		}
		rt = in.plain
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, cleanErr(err)
	}
	if rt == in.tr && (resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 || resp.TLS.Version < tls.VersionTLS12) {
		resp.Body.Close()
		return nil, in.refuse("connection was not verified TLS 1.2+")
	}
	// The status line is server text (S22).
	if text := http.StatusText(resp.StatusCode); resp.Status != "" {
		_, reason, _ := cut(resp.Status)
		if reason == "" {
			reason = text
		}
		resp.Status = fmt.Sprintf("%03d %s", resp.StatusCode, safetext.Clean(reason, 64))
	}
	if !in.unbounded {
		resp.Body = &boundedBody{rc: resp.Body, left: MaxResponseSize}
	}
	if tk != nil && tk.hidden {
		tk.hideResponse(resp, wrapperReq)
	}
	return resp, nil
}

// hideResponse keeps from the wrapper what a response may carry of
// credentials (S30): the body (tokens, introspection, userinfo) and the
// Set-Cookie headers go to the ticket, and resp.Request is the wrapper's
// own credential-free request. The status, the other headers and
// ContentLength stay, for tracing and metrics.
func (tk *ticket) hideResponse(resp *http.Response, wrapperReq *http.Request) {
	if tk.respBody != nil { // a wrapper that retried: the first answer is dropped
		tk.respBody.Close()
	}
	tk.respBody, resp.Body = resp.Body, http.NoBody
	tk.respCookies = resp.Header.Values("Set-Cookie")
	resp.Header = resp.Header.Clone()
	resp.Header.Del("Set-Cookie")
	resp.Request = wrapperReq
	tk.answer = resp
}

// unhide puts back on the response the wrapper returned what hideResponse
// kept, and the caller's request; with no response the kept body is closed.
func (tk *ticket) unhide(req *http.Request, resp *http.Response, err error) *http.Response {
	if err != nil || resp == nil {
		if tk.respBody != nil {
			tk.respBody.Close()
		}
		return resp
	}
	if tk.respBody != nil {
		if resp.Body != nil && resp.Body != http.NoBody {
			resp.Body.Close()
		}
		resp.Body = tk.respBody
		tk.respBody = nil
		for _, c := range tk.respCookies {
			resp.Header.Add("Set-Cookie", c)
		}
	}
	resp.Request = req
	return resp
}

func cut(status string) (string, string, bool) {
	for i := 0; i < len(status); i++ {
		if status[i] == ' ' {
			return status[:i], status[i+1:], true
		}
	}
	return status, "", false
}

// cleanError keeps err reachable while its text is cleaned (S22): TLS
// errors quote certificate names, proxies answer status lines.
type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

func cleanErr(err error) error {
	switch err.(type) {
	case nil, *refusal, *cleanError:
		return err
	}
	msg := err.Error()
	if c := safetext.Clean(msg, 512); c != msg {
		return &cleanError{msg: c, err: err}
	}
	return err
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte: exactly the limit is fine, more is not.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

var _ http.RoundTripper = (*transport)(nil)
