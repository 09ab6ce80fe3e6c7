package validate

import (
	"crypto/tls"
	"net/http"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// checkHTTPS requires an absolute https URL with a host and no user info,
// or http to a loopback host when c was built with
// strictnet.Config.AllowLoopbackHTTP.
func checkHTTPS(what, raw string, c *http.Client) error {
	if p := netrule.HTTPSProblem(raw, netrule.ClientAllowsLoopbackHTTP(c)); p != "" {
		return configError(what + " " + p)
	}
	return nil
}

// prepareClient returns the client to use (S2): nil means a new strict
// client (system roots, 30 s timeout); a client built by
// strictnet.NewClient, or a copy of one, is used as a copy; any other
// client is refused with a configuration error naming field, because a transport
// oauthsafe does not own may dial its own TLS or skip verification
// whatever its settings look like. The copy never follows a redirect: no
// server call of this package does (a 3xx answer is an error).
func prepareClient(field string, c *http.Client) (*http.Client, error) {
	if c == nil {
		var err error
		c, err = strictnet.NewClient(strictnet.Config{})
		if err != nil {
			return nil, configError(err.Error())
		}
	} else if !netrule.ClientOwned(c) {
		return nil, configError(field + " must be nil or built by strictnet.NewClient (roots, pins, proxy, dialer and a tracing Wrap are set there): oauthsafe cannot check the TLS of a transport it does not own")
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp, nil
}

// verifiedTLS reports whether resp came over a verified TLS 1.2+ connection
// (or plain http to a loopback host, from a client c built with
// AllowLoopbackHTTP). The strict transport already refuses anything else;
// this is a second, independent check at the point of use.
func verifiedTLS(resp *http.Response, c *http.Client) bool {
	if resp.TLS == nil && resp.Request != nil && netrule.LoopbackHTTPURL(resp.Request.URL) {
		return netrule.ClientAllowsLoopbackHTTP(c)
	}
	return resp.TLS != nil && len(resp.TLS.VerifiedChains) > 0 && resp.TLS.Version >= tls.VersionTLS12
}
