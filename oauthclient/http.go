package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// checkHTTPS enforces S1 for a server URL named what; loopbackHTTP is
// Config.HTTP.AllowLoopbackHTTP.
func checkHTTPS(what, raw string, loopbackHTTP bool) error {
	if p := netrule.HTTPSProblem(raw, loopbackHTTP); p != "" {
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

// do sends req with c and reads the bounded body. A 3xx is reported as a
// policy refusal. When the caller's Wrap failed after the server answered
// (an error, a panic), the answer is returned with the error: it may hold
// a rotated refresh token.
func do(ctx context.Context, c *http.Client, req *http.Request, endpoint string) (*http.Response, []byte, error) {
	slot := &netrule.AnswerSlot{}
	resp, err := c.Do(req.WithContext(netrule.WithAnswerSlot(netrule.WithEndpoint(ctx, endpoint), slot)))
	if err != nil {
		var pe *strictnet.PolicyError
		var wp *netrule.PanicError
		switch {
		case errors.As(err, &pe):
			err = pe
		case errors.As(err, &wp):
			err = fmt.Errorf("oauthclient: %s request: %w: %s", endpoint, engine.ErrPanic, wp.Error())
		default:
			err = fmt.Errorf("oauthclient: %s request failed: %w", endpoint, &requestError{netrule.StripURL(err)})
		}
		answer := slot.Response
		slot.Response = nil // the slot lives on in contexts a wrapper may keep
		if answer == nil {
			return nil, nil, err
		}
		defer answer.Body.Close()
		body, _ := netrule.ReadBody(answer.Body)
		return answer, body, err
	}
	defer resp.Body.Close()
	body, err := netrule.ReadBody(resp.Body)
	if err != nil {
		if errors.Is(err, strictnet.ErrResponseTooLarge) {
			return resp, nil, fmt.Errorf("%w (%s endpoint)", strictnet.ErrResponseTooLarge, endpoint)
		}
		return resp, nil, fmt.Errorf("oauthclient: reading %s response: %w", endpoint, netrule.StripURL(err))
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp, body, policyf("%s endpoint answered with a redirect, which is not followed", endpoint)
	}
	return resp, body, nil
}

// requestError is a request the transport could not complete, for a
// reason below the policy and TLS checks: a refused or reset connection,
// a timeout, or a connection the server closed while idle (net/http's
// "server closed idle connection", which has no exported sentinel). It is
// worth retrying (fetchError), unless a TLS verification error is inside.
type requestError struct{ err error }

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }
