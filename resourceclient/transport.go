package resourceclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

// transport is the Client's RoundTripper.
type transport Client

// maxBuffered bounds a request body read into memory so that it can be
// sent again after an authorization (a body with GetBody is not read).
const maxBuffered = 8 << 20

// errBodyTooLarge: a request body without GetBody is larger than maxBuffered.
var errBodyTooLarge = errors.New("resourceclient: a request body without GetBody is larger than 8 MiB")

// RoundTrip sends req within the resource: without a token until the
// resource asks for one (401), then with the session's token; a 403
// insufficient_scope steps up, a token the resource refuses (401 after a
// refresh) re-runs discovery and the authorization once.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := (*Client)(t)
	if !within(c.res, req.URL) || (req.Host != "" && req.Host != req.URL.Host) {
		closeBody(req)
		return nil, ErrNotWithinResource
	}
	req, err := replayable(req)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	s := c.sess.Load()
	if s == nil {
		resp, err := c.plain.RoundTrip(fresh(req))
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		if s, err = c.authorize(ctx, resp, authAuto, nil); err != nil {
			return nil, err
		}
	}
	stepUps, relogged := 0, false
	for {
		resp, err := s.api.RoundTrip(fresh(req))
		var ise *validate.InsufficientScopeError
		switch {
		case errors.As(err, &ise):
			if stepUps >= c.maxStepUps {
				return nil, &StepUpError{Attempts: stepUps, Scopes: ise.Scope}
			}
			stepUps++
			if s, err = c.stepUp(ctx, s, ise.Scope, stepUps); err != nil {
				return nil, err
			}
			continue
		case !relogged && (err == nil && resp.StatusCode == http.StatusUnauthorized || c.refused(ctx, s, err)):
			relogged = true
			if err != nil { // no 401 at hand: ask the resource for its challenge
				if resp, err = c.plain.RoundTrip(fresh(req)); err != nil || resp.StatusCode != http.StatusUnauthorized {
					return resp, err
				}
			}
			if s, err = c.authorize(ctx, resp, authAuto, s); err != nil {
				return nil, err
			}
			continue
		}
		return resp, err
	}
}

// refused reports whether err means that s can get no more tokens: the
// login is over (tokenstore.ErrLoginRequired), or the server no longer
// knows the dynamically registered client (invalid_client), whose
// registration is then forgotten so that the next authorization
// registers anew.
func (c *Client) refused(ctx context.Context, s *session, err error) bool {
	var ae *oauthclient.AuthError
	if errors.As(err, &ae) && ae.Code == "invalid_client" && s.cl.kind == "dynamic" {
		return c.forget(ctx, s.cl) == nil
	}
	return errors.Is(err, tokenstore.ErrLoginRequired)
}

// replayable returns req with a GetBody, reading a body without one
// into memory.
func replayable(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return req, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxBuffered+1))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > maxBuffered {
		return nil, errBodyTooLarge
	}
	r := req.Clone(req.Context())
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.Body, _ = r.GetBody()
	return r, nil
}

// fresh is a copy of req with its own header map and a new body.
func fresh(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			r.Body = b
		}
	}
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
