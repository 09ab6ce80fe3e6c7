package validate

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxResponseSize bounds every body this package reads from a server (S18).
const maxResponseSize = 1 << 20

// defaultTimeout bounds a fetch or introspection call when the caller's
// client and context set nothing shorter.
const defaultTimeout = 30 * time.Second

var errTooLarge = errors.New("response larger than 1 MiB")

// readBounded reads at most maxResponseSize bytes and fails if r has more.
func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseSize {
		return nil, errTooLarge
	}
	return b, nil
}

// checkHTTPS requires an absolute https URL with a host and no user info.
func checkHTTPS(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fail(ErrConfig, what+" must be an absolute https URL")
	}
	return nil
}

// prepareClient returns the client to use: a copy of c (or a default one)
// that refuses redirects when noRedirect is set and otherwise follows only
// https redirects. A client that skips certificate verification or allows
// TLS below 1.2 is refused (S2).
func prepareClient(c *http.Client, noRedirect bool) (*http.Client, error) {
	if c == nil {
		c = &http.Client{Timeout: defaultTimeout}
	}
	if t, ok := c.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		if t.TLSClientConfig.InsecureSkipVerify {
			return nil, fail(ErrConfig, "HTTPClient skips TLS certificate verification")
		}
		if v := t.TLSClientConfig.MinVersion; v != 0 && v < tls.VersionTLS12 {
			return nil, fail(ErrConfig, "HTTPClient allows TLS below 1.2")
		}
	}
	cp := *c
	if noRedirect {
		cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	} else {
		prev := c.CheckRedirect
		cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("redirect to a non-https URL refused")
			}
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if prev != nil {
				return prev(req, via)
			}
			return nil
		}
	}
	return &cp, nil
}

// verifiedTLS reports whether resp came over a verified TLS 1.2+ connection.
// It holds whatever RoundTripper the caller's client uses, wrapped or not,
// where the check in prepareClient only sees an *http.Transport.
func verifiedTLS(resp *http.Response) bool {
	return resp.TLS != nil && len(resp.TLS.VerifiedChains) > 0 && resp.TLS.Version >= tls.VersionTLS12
}
