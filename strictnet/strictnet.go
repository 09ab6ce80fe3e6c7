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
// transport: it sees a copy of every request and response made for it,
// and cannot replace the handshake, read a credential or change where a
// request goes. Anything that could replace or weaken
// verification cannot be expressed in [Config]; what can be checked is
// checked by [NewClient], which returns a [*PolicyError] naming the field.
//
// # Errors
//
// [ErrPolicy] is the module's one policy error: every [*PolicyError]
// matches it, here (plain http, unverified TLS, a pin mismatch, a wrapper
// that went around the transport, a refused CA file) and in every other
// package. [ErrResponseTooLarge]: a server body past 1 MiB. A server that
// cannot be reached or trusted gives a [*ConnError] that keeps its cause
// (errors.As to x509.UnknownAuthorityError, errors.Is syscall.ECONNREFUSED);
// [Hint] says what to do about it.
package strictnet

import (
	"bytes"
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
	"slices"
	"sync"
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
	// the SHA-256 of a certificate's SubjectPublicKeyInfo, as printed by
	//   openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
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
	// Timeout bounds each call, body included. 0 means 30 seconds, the
	// module's one default for server calls.
	Timeout time.Duration
	// Wrap, when set, is called once with the strict transport and returns
	// the RoundTripper the client uses: a tracing or metrics wrapper such
	// as otelhttp.NewTransport. The wrapper must pass each request to the
	// RoundTripper it was given; one that answers without it fails the call
	// with a *PolicyError, and one that sends it elsewhere (another URL or
	// Host) is refused with a *PolicyError before anything is sent.
	//
	// The wrapper observes copies made for it (S30). Its request is a deep
	// copy of the SDK's with the method, URL and ordinary headers (it may
	// add its own, such as traceparent), ContentLength, and neither the
	// credential headers (Authorization, Proxy-Authorization, Cookie,
	// DPoP), the body, nor the previous redirect hop's response. The response it gets is a copy with the status,
	// the headers without Set-Cookie, ContentLength, the TLS state and its
	// own request, and no body. The strict transport sends a request of
	// its own, with the credentials and the body, and the SDK reads the
	// strict transport's own answer: nothing the SDK uses afterwards is an
	// object the wrapper held, the response the wrapper returns is only
	// closed, and a request kept by the wrapper cannot be sent again once
	// its call is over. A wrapper that retries gets the body again when the
	// request can replay it, except for the SDK's calls to the
	// authorization server (token requests, revocation, …): they carry
	// single-use values (a refresh token, a code) and go out once, and a
	// second send is refused with a *PolicyError (the first answer is
	// still read). A wrapper that goes around the transport it was
	// given sends nothing secret. Returning an *http.Transport is refused.
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

var (
	// ErrPolicy is matched by every *PolicyError: a configuration or a
	// server the security policy refuses, here or in any package of the
	// module (strictnet.ErrPolicy is this value).
	ErrPolicy = errors.New("oauthsafe: refused by security policy")
	// ErrResponseTooLarge: a server response exceeded 1 MiB, the bound of
	// every response body read from a server (S18: token, discovery,
	// JWKS, revocation, introspection, userinfo and device endpoints; API
	// responses, the caller's own, are not bounded). Reading past the
	// bound fails with it; a body is never silently cut.
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
// inside it and the logging around both. Only NewClient makes one; owned
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
	// client bounds bodies at netrule.MaxResponseSize (S18).
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
//   - every call is bounded by a timeout (Config.Timeout, 30 s by
//     default) and every body by 1 MiB (reading past it fails with
//     [ErrResponseTooLarge], it is never silently cut);
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
	netrule.ClientOwned = owned
	netrule.ClientAllowsLoopbackHTTP = func(c *http.Client) bool {
		if !owned(c) {
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
		timeout = netrule.DefaultTimeout
	}
	return &http.Client{Transport: t, CheckRedirect: refuseRedirect, Timeout: timeout}, nil
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// owned reports whether c was built by [NewClient]. A copy of such a
// client (other CheckRedirect, Timeout or Jar) is still owned; a client
// whose Transport was replaced or wrapped is not. validate reaches it as
// netrule.ClientOwned.
func owned(c *http.Client) bool {
	if c == nil {
		return false
	}
	t, ok := c.Transport.(*transport)
	return ok && t != nil && t.inner != nil
}

// newTransport builds the strict transport of cfg in named steps: the TLS
// configuration (pins included), the dialing transports, then the
// caller's wrapper.
func newTransport(cfg Config, endpoint string, unbounded bool) (*transport, error) {
	if cfg.Timeout < 0 {
		return nil, fieldError("Timeout", "is negative")
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	in := newInner(cfg, tc, unbounded)
	t := &transport{next: in, inner: in, logger: cfg.Logger, endpoint: endpoint}
	if cfg.Wrap != nil {
		if t.next, err = wrap(cfg.Wrap, in); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// tlsConfig is the one TLS configuration of the transport: TLS 1.2 or
// later, the configured roots (the system's when nil), client
// certificates, and the SPKI pins checked inside the handshake.
func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    cfg.RootCAs,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if len(cfg.Certificates) > 0 {
		tc.Certificates = append([]tls.Certificate(nil), cfg.Certificates...)
	}
	if len(cfg.PinnedSPKI) == 0 {
		return tc, nil
	}
	pins := make(map[[32]byte]bool, len(cfg.PinnedSPKI))
	for _, p := range cfg.PinnedSPKI {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != sha256.Size {
			return nil, fieldError("PinnedSPKI", "holds a pin that is not base64 of a SHA-256 digest")
		}
		pins[[32]byte(b)] = true
	}
	// VerifyConnection runs after the chain and host name are verified,
	// inside the handshake: a mismatch sends no request.
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
	return tc, nil
}

// newInner makes the transports that dial: https through this package's
// TLS dialer (and a proxy's tunnel), and, with AllowLoopbackHTTP, plain
// http to loopback addresses only, with its warning logged.
func newInner(cfg Config, tc *tls.Config, unbounded bool) *inner {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = netrule.DefaultTimeout
	}
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
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
	return in
}

// wrap applies the caller's Wrap to the inner transport and refuses a
// result that is not a wrapper around it.
func wrap(fn func(http.RoundTripper) http.RoundTripper, in *inner) (http.RoundTripper, error) {
	w := fn(in)
	switch w.(type) {
	case nil:
		return nil, fieldError("Wrap", "returned no RoundTripper")
	case *http.Transport:
		return nil, fieldError("Wrap", "returned an *http.Transport instead of wrapping the transport it was given")
	case *transport:
		return nil, fieldError("Wrap", "returned another strict transport instead of wrapping the one it was given")
	}
	return w, nil
}

// dialTLS is the only TLS handshake of the transport's direct connections.
func (in *inner) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := in.dial(ctx, network, addr)
	if err != nil {
		return nil, connError(addr, err)
	}
	cfg := in.tls.Clone()
	cfg.ServerName = host
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, connError(addr, cleanErr(err))
	}
	return tc, nil
}

type ticketKey struct{}

// ticket carries a call past the caller's wrapper (S30). It holds what the
// wrapper must not see: the SDK's credential headers and body, which the
// inner transport adds to a request of its own, and the server's answer,
// of which the wrapper gets a copy without body or cookies. Once the call
// is over the ticket is emptied and refuses further use, so a wrapper that
// keeps the request it was given reaches nothing through it.
type ticket struct {
	mu      sync.Mutex
	done    bool
	seen    bool
	once    bool        // a call that goes out once (netrule.AnswerSlot)
	header  http.Header // the credential headers of the SDK's request
	body    io.ReadCloser
	getBody func() (io.ReadCloser, error)
	// dest is where the SDK sent the request (URL and Host): the inner
	// transport refuses a request the wrapper sent elsewhere.
	dest, host string
	answer     *http.Response // the last answer of the strict transport; never given to the wrapper
}

// credentialHeaders never reach a wrapper: they carry tokens, client
// secrets or proofs.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Dpop"}

var (
	// errCallEnded: a wrapper sent a request of a call that is over.
	errCallEnded = errors.New("the Wrap RoundTripper sent a request of a call that is over")
	// errRedirected: a wrapper sent the request elsewhere.
	errRedirected = errors.New("the Wrap RoundTripper changed where the request goes")
	// errSentTwice: a wrapper sent again a call that goes out once.
	errSentTwice = errors.New("the Wrap RoundTripper sent an authorization server request twice; it carries single-use values (a refresh token, a code) and goes out once")
)

// observe opens a ticket for req and returns the request the wrapper gets:
// a deep copy without credential headers, without the previous hop's
// response and with an empty body (ContentLength kept, so a wrapper may
// record the size).
func observe(req *http.Request) (*http.Request, *ticket) {
	tk := &ticket{dest: req.URL.String(), host: req.Host, header: http.Header{}, body: req.Body, getBody: req.GetBody,
		once: netrule.AnswerSlotOf(req.Context()) != nil}
	out := req.Clone(context.WithValue(req.Context(), ticketKey{}, tk))
	// A redirect hop's Response is the SDK's answer to the hop before,
	// whose Request carried the credentials: the wrapper gets neither.
	out.Response = nil
	for _, h := range credentialHeaders {
		k := http.CanonicalHeaderKey(h)
		if v, ok := req.Header[k]; ok {
			tk.header[k] = v
			delete(out.Header, k)
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = http.NoBody
		out.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	return out, tk
}

// request builds the request the strict transport sends for wreq, the
// wrapper's request: a new object with the wrapper's ordinary headers and
// the SDK's credential headers and body. A wrapper that retries gets the
// body again only when the request can replay it.
func (tk *ticket) request(wreq *http.Request) (*http.Request, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	switch {
	case tk.done:
		return nil, errCallEnded
	case wreq.URL == nil || wreq.URL.String() != tk.dest || wreq.Host != tk.host:
		// A credential never leaves for a place the SDK did not choose.
		return nil, errRedirected
	case tk.seen && tk.once:
		// A refresh token or code presented twice is a reuse (S23).
		return nil, errSentTwice
	}
	out := wreq.Clone(wreq.Context())
	for _, h := range credentialHeaders {
		delete(out.Header, http.CanonicalHeaderKey(h))
	}
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
	tk.seen = true
	return out, nil
}

// keep takes the strict transport's answer to wreq and returns the copy
// the wrapper gets: status, headers without Set-Cookie, ContentLength, the
// TLS state and wreq, the wrapper's own request; no body. A wrapper that
// retried drops the earlier answer.
func (tk *ticket) keep(resp *http.Response, wreq *http.Request) *http.Response {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.done { // a call that ended while this request was on its way
		resp.Body.Close()
		return nil
	}
	if tk.answer != nil {
		tk.answer.Body.Close()
	}
	tk.answer = resp
	cp := &http.Response{
		Status: resp.Status, StatusCode: resp.StatusCode,
		Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: resp.Header.Clone(), Body: http.NoBody, ContentLength: resp.ContentLength,
		TransferEncoding: slices.Clone(resp.TransferEncoding), Close: resp.Close, Uncompressed: resp.Uncompressed,
		Request: wreq,
	}
	if cp.Header == nil {
		cp.Header = http.Header{}
	}
	cp.Header.Del("Set-Cookie")
	if resp.TLS != nil {
		cs := *resp.TLS
		cs.PeerCertificates = slices.Clone(cs.PeerCertificates)
		cs.VerifiedChains = slices.Clone(cs.VerifiedChains)
		cp.TLS = &cs
	}
	return cp
}

// end closes the ticket and returns the strict transport's last answer,
// if any; the credentials it held are dropped.
func (tk *ticket) end() *http.Response {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.done = true
	answer := tk.answer
	tk.answer, tk.header, tk.body, tk.getBody = nil, nil, nil, nil
	return answer
}

// RoundTrip sends req through the wrapper (if any) and the strict
// transport, and logs one event.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	var resp *http.Response
	var err error
	if t.next == http.RoundTripper(t.inner) {
		resp, err = t.inner.send(req)
	} else {
		resp, err = t.observed(req)
	}
	if err != nil {
		err = cleanErr(err)
	}
	if t.logger != nil {
		t.log(req, resp, err, time.Since(start))
	}
	return resp, err
}

// observed runs req through the caller's wrapper (S30). The wrapper gets
// copies made for it (see [Config.Wrap]); the caller gets the strict
// transport's own answer, never an object the wrapper held. When the
// wrapper fails (an error, a panic) after the server answered, that answer
// goes to the call's answer slot (netrule.WithAnswerSlot), read into
// memory, for a caller that must not lose it (a rotated refresh token).
func (t *transport) observed(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return t.inner.send(req)
	}
	wreq, tk := observe(req)
	wresp, err := t.wrapped(wreq)
	answer := tk.end()
	if wresp != nil && wresp.Body != nil {
		wresp.Body.Close() // the wrapper's copy: its instrumentation may wait for the close
	}
	switch {
	case err != nil:
		if answer != nil {
			deliver(req.Context(), answer)
		}
		return nil, err
	case answer == nil:
		return nil, t.inner.refuse("the Wrap RoundTripper answered without calling the strict transport it was given")
	}
	answer.Request = req
	return answer, nil
}

// deliver hands resp, with its body read into memory, to the answer slot
// of ctx, or closes it when there is none.
func deliver(ctx context.Context, resp *http.Response) {
	slot := netrule.AnswerSlotOf(ctx)
	if slot == nil || slot.Response != nil {
		resp.Body.Close()
		return
	}
	b, err := netrule.ReadBody(resp.Body)
	resp.Body.Close()
	if err != nil {
		return
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	slot.Response = resp
}

// wrapped calls the wrapper and turns a panic into a *netrule.PanicError
// (oauthclient reports it as a failure matching oauthsafe.ErrConfig).
func (t *transport) wrapped(req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, &netrule.PanicError{Value: fmt.Sprintf("%T", p)}
		}
	}()
	return t.next.RoundTrip(req)
}

// RoundTrip is what the caller's wrapper calls: a request of an observed
// call is sent as the SDK made it (see ticket.request), and the wrapper
// gets a copy of the answer (ticket.keep). A request that belongs to no
// call (the wrapper's own) carries nothing of the SDK's and is sent as it
// is, under the same TLS and https rules.
func (in *inner) RoundTrip(wreq *http.Request) (*http.Response, error) {
	tk, _ := wreq.Context().Value(ticketKey{}).(*ticket)
	if tk == nil {
		return in.send(wreq)
	}
	req, err := tk.request(wreq)
	if err != nil {
		if wreq.Body != nil {
			wreq.Body.Close()
		}
		return nil, in.refuse(err.Error())
	}
	resp, err := in.send(req)
	if err != nil {
		return nil, err
	}
	if cp := tk.keep(resp, wreq); cp != nil {
		return cp, nil
	}
	return nil, in.refuse(errCallEnded.Error())
}

// send is the strict transport itself: https only, verified TLS 1.2+, a
// cleaned status line and a bounded body.
func (in *inner) send(req *http.Request) (*http.Response, error) {
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
		resp.Body = &boundedBody{rc: resp.Body, left: netrule.MaxResponseSize}
	}
	return resp, nil
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
