package oauthclient

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

	"github.com/oauthsafe/oauthsafe/internal/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// MaxResponseSize bounds every response body read from a server: token,
// discovery, JWKS, revocation, introspection, userinfo and device endpoints.
const MaxResponseSize = 1 << 20

// DefaultTimeout is the whole-call timeout of the strict client when
// HTTPConfig.Timeout is zero: the module's one default for server calls.
const DefaultTimeout = strictnet.DefaultTimeout

// HTTPConfig configures [NewHTTPClient]: the one strict transport of every
// server call (S2). It holds what a caller may bring: roots, pins, client
// certificates, a proxy function, a plain TCP dialer, a timeout, a wrapper
// and a logger. There is no field for a TLS dialer, a tls.Config or a
// verification callback: the handshake is always this package's. Every
// field's zero value is usable; the zero HTTPConfig verifies against the
// system roots.
type HTTPConfig struct {
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
	// Timeout bounds each call, body included. 0 means DefaultTimeout.
	Timeout time.Duration
	// Wrap, when set, is called once with the strict transport and returns
	// the RoundTripper the client uses: a tracing or metrics wrapper such
	// as otelhttp.NewTransport. The wrapper must pass each request to the
	// RoundTripper it was given; one that answers without it fails the call
	// with a *PolicyError. A wrapper sees each request's method, URL and
	// ordinary headers (it may add its own, such as traceparent), and the
	// response; it never sees the credential headers (Authorization,
	// Proxy-Authorization, Cookie, DPoP) or the request body, which the
	// strict transport puts back after the wrapper has handed the request
	// on. So a wrapper that goes around the transport it was given sends
	// nothing secret. Returning an *http.Transport is refused.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Logger, when set, receives one event per server call: endpoint kind,
	// method, the URL without query values, status, duration and an error
	// class. Never a header, a body, a token, a code or a secret.
	Logger *slog.Logger
}

// NewHTTPClient returns the strict client every server call of oauthsafe goes
// through (S1, S2, S18):
//
//   - TLS 1.2 or later, dialed by this package, certificates and host
//     names always verified, optional SPKI pins checked in the handshake;
//   - only https URLs, any other scheme is refused before a connection is made;
//   - redirects are never followed: a 3xx answer is returned to the caller,
//     which treats it as an error (token, revocation and introspection calls
//     must not follow redirects, and nothing else needs to);
//   - every call is bounded by a timeout and every body by [MaxResponseSize]
//     (reading past it fails with ErrResponseTooLarge, it is never silently cut);
//   - a server's HTTP status line and the text of TLS errors are cleaned
//     of control and bidi characters (S22).
//
// A bad field is refused with a *PolicyError whose Field names it. The
// validate package accepts the returned client (or a copy of it) as its
// HTTPClient, and refuses every other non-nil client.
//
// The returned client is safe for concurrent use.
func NewHTTPClient(cfg HTTPConfig) (*http.Client, error) {
	return strictClient(cfg, MaxResponseSize, "")
}

// strictClient builds the client of cfg; limit bounds bodies (0: none) and
// kind names the endpoint in log events when the call does not.
func strictClient(cfg HTTPConfig, limit int64, kind string) (*http.Client, error) {
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	c, err := strictnet.New(strictnet.Config{
		RootCAs:      cfg.RootCAs,
		PinnedSPKI:   cfg.PinnedSPKI,
		Certificates: cfg.Certificates,
		Proxy:        proxy,
		DialContext:  cfg.DialContext,
		Timeout:      cfg.Timeout,
		Wrap:         cfg.Wrap,
		Logger:       cfg.Logger,
		BodyLimit:    limit,
		Kind:         kind,
		TooLarge:     ErrResponseTooLarge,
		Refused:      func(r string) error { return &PolicyError{Reason: r} },
	})
	var fe *strictnet.FieldError
	if errors.As(err, &fe) {
		return nil, &PolicyError{Field: "HTTPConfig." + fe.Field, Reason: "HTTPConfig." + fe.Field + " " + fe.Reason}
	}
	return c, err
}

// SPKIPin returns the pin of cert for HTTPConfig.PinnedSPKI.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// readBody reads a whole bounded body; too-large bodies give ErrResponseTooLarge.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseSize {
		return nil, ErrResponseTooLarge
	}
	return b, nil
}

// checkHTTPS enforces S1 for a server URL named what.
func checkHTTPS(what, raw string) error {
	if p := strictnet.HTTPSProblem(raw); p != "" {
		return policyf("%s %s", what, p)
	}
	return nil
}

// checkRedirectURL allows https, or http on a loopback IP literal (RFC 8252 §7.3).
func checkRedirectURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return policyf("redirect URL is not an absolute URL")
	}
	if u.Fragment != "" || u.User != nil {
		return policyf("redirect URL must not have a fragment or user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		ip := net.ParseIP(u.Hostname())
		if ip != nil && ip.IsLoopback() {
			return nil
		}
		return policyf("an http redirect URL must use a loopback IP literal (127.0.0.1 or [::1]), not %q", u.Hostname())
	}
	return policyf("redirect URL scheme %q is not allowed", u.Scheme)
}

// do sends req with c and reads the bounded body. A 3xx is reported as a policy refusal.
func do(ctx context.Context, c *http.Client, req *http.Request, endpoint string) (*http.Response, []byte, error) {
	resp, err := c.Do(req.WithContext(strictnet.WithEndpoint(ctx, endpoint)))
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			return nil, nil, pe
		}
		var wp *strictnet.PanicError
		if errors.As(err, &wp) {
			// The caller's Wrap panicked; the server's answer, if there was
			// one, is returned with the error (it may hold a rotated
			// refresh token).
			perr := fmt.Errorf("oauthclient: %s request: %w: %s", endpoint, tokenstore.ErrPanic, wp.Error())
			if wp.Response == nil {
				return nil, nil, perr
			}
			defer wp.Response.Body.Close()
			body, _ := readBody(wp.Response.Body)
			return wp.Response, body, perr
		}
		return nil, nil, fmt.Errorf("oauthclient: %s request failed: %w", endpoint, scrubURLError(err))
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			return resp, nil, fmt.Errorf("%w (%s endpoint)", ErrResponseTooLarge, endpoint)
		}
		return resp, nil, fmt.Errorf("oauthclient: reading %s response: %w", endpoint, scrubURLError(err))
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp, body, policyf("%s endpoint answered with a redirect, which is not followed", endpoint)
	}
	return resp, body, nil
}

// scrubURLError drops the URL (which may hold a query) from *url.Error while
// keeping the cause reachable.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
