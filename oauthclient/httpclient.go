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
	"net"
	"net/http"
	"net/url"
	"time"
)

// MaxResponseSize bounds every response body read from a server: token,
// discovery, JWKS, revocation, introspection, userinfo and device endpoints.
const MaxResponseSize = 1 << 20

// DefaultTimeout is the whole-call timeout of the strict client when
// HTTPConfig.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// HTTPConfig configures [NewHTTPClient].
type HTTPConfig struct {
	// RootCAs verifies server certificates. nil means the system roots.
	RootCAs *x509.CertPool
	// PinnedSPKI optionally pins server public keys: base64 (std encoding) of
	// the SHA-256 of a certificate's SubjectPublicKeyInfo. When non-empty,
	// some certificate of the verified chain must match one pin, checked
	// during the handshake, before any request byte is sent.
	PinnedSPKI []string
	// Certificates are client certificates for mutual TLS (RFC 8705). nil means none.
	Certificates []tls.Certificate
	// Timeout bounds each call, body included. 0 means DefaultTimeout.
	Timeout time.Duration
	// Base is an optional client supplied by the application (for proxies,
	// tracing…). It is never used as is: see [NewHTTPClient].
	Base *http.Client
}

// NewHTTPClient returns the strict client every server call of oauthsafe goes
// through (S1, S2, S18):
//
//   - TLS 1.2 or later, certificates and host names always verified, optional SPKI pins;
//   - only https URLs, any other scheme is refused before a connection is made;
//   - redirects are never followed: a 3xx answer is returned to the caller,
//     which treats it as an error (token, revocation and introspection calls
//     must not follow redirects, and nothing else needs to);
//   - every call is bounded by a timeout and every body by [MaxResponseSize]
//     (reading past it fails with ErrResponseTooLarge, it is never silently cut).
//
// A Base client is wrapped, not trusted: its Transport must be nil or an
// *http.Transport. The transport is cloned, a TLSClientConfig with
// InsecureSkipVerify is refused with a *PolicyError, a MinVersion below 1.2 is
// raised, pins are added, and the clone is wrapped with the same scheme, body
// and redirect rules. Base's own Timeout is kept when shorter. A Base with any
// other RoundTripper is refused, because its TLS settings cannot be checked.
//
// The returned client is safe for concurrent use.
func NewHTTPClient(cfg HTTPConfig) (*http.Client, error) {
	var tr *http.Transport
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if cfg.Base != nil {
		switch t := cfg.Base.Transport.(type) {
		case nil:
			tr = http.DefaultTransport.(*http.Transport).Clone()
		case *http.Transport:
			tr = t.Clone()
		case *strictTransport:
			tr = t.base.Clone()
		default:
			return nil, policyf("HTTPClient transport %T cannot be checked for TLS settings; pass an *http.Transport", t)
		}
		if cfg.Base.Timeout > 0 && cfg.Base.Timeout < timeout {
			timeout = cfg.Base.Timeout
		}
	} else {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	tc, err := strictTLS(tr.TLSClientConfig, cfg)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tc
	var jar http.CookieJar
	if cfg.Base != nil {
		jar = cfg.Base.Jar
	}
	return &http.Client{
		Transport:     &strictTransport{base: tr, limit: MaxResponseSize},
		CheckRedirect: refuseRedirect,
		Timeout:       timeout,
		Jar:           jar,
	}, nil
}

// CheckClient reports whether c would pass the strict profile, with the reason
// as a *PolicyError when it would not. It is what [NewHTTPClient] applies to a
// Base client.
func CheckClient(c *http.Client) error {
	_, err := NewHTTPClient(HTTPConfig{Base: c})
	return err
}

func strictTLS(in *tls.Config, cfg HTTPConfig) (*tls.Config, error) {
	var tc *tls.Config
	if in != nil {
		if in.InsecureSkipVerify {
			return nil, policyf("InsecureSkipVerify is not allowed")
		}
		if in.VerifyPeerCertificate != nil || in.VerifyConnection != nil {
			return nil, policyf("custom TLS verification callbacks are not allowed; use RootCAs and PinnedSPKI")
		}
		tc = in.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if tc.MaxVersion != 0 && tc.MaxVersion < tls.VersionTLS12 {
		return nil, policyf("TLS MaxVersion below 1.2")
	}
	if cfg.RootCAs != nil {
		tc.RootCAs = cfg.RootCAs
	}
	if len(cfg.Certificates) > 0 {
		tc.Certificates = append([]tls.Certificate(nil), cfg.Certificates...)
	}
	if len(cfg.PinnedSPKI) > 0 {
		pins := make(map[[32]byte]bool, len(cfg.PinnedSPKI))
		for _, p := range cfg.PinnedSPKI {
			b, err := base64.StdEncoding.DecodeString(p)
			if err != nil || len(b) != 32 {
				return nil, policyf("SPKI pin is not base64 of a SHA-256 digest")
			}
			pins[[32]byte(b)] = true
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			for _, chain := range cs.VerifiedChains {
				for _, cert := range chain {
					if pins[sha256.Sum256(cert.RawSubjectPublicKeyInfo)] {
						return nil
					}
				}
			}
			return policyf("server public key matches no SPKI pin")
		}
	}
	return tc, nil
}

// SPKIPin returns the pin of cert for HTTPConfig.PinnedSPKI.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// strictTransport enforces https, a verified TLS 1.2+ connection and, when
// limit > 0, the body bound on every round trip. The API client uses it
// without a limit: API responses may be large.
type strictTransport struct {
	base  *http.Transport
	limit int64
}

func (t *strictTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "https" {
		closeRequestBody(req)
		return nil, policyf("only https endpoints are allowed")
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 || resp.TLS.Version < tls.VersionTLS12 {
		resp.Body.Close()
		return nil, policyf("connection was not verified TLS 1.2+")
	}
	if t.limit > 0 {
		resp.Body = &boundedBody{rc: resp.Body, left: t.limit}
	}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte: exactly MaxResponseSize is fine, more is not.
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
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return policyf("%s is not an absolute URL", what)
	}
	if u.Scheme != "https" {
		return policyf("%s must use https", what)
	}
	if u.User != nil {
		return policyf("%s must not carry user info", what)
	}
	if u.Fragment != "" {
		return policyf("%s must not have a fragment", what)
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
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			return nil, nil, pe
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
