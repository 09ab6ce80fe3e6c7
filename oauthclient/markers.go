package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"

	"github.com/oauthsafe/oauthsafe/internal/engine"
)

// This file tells the lifecycle engine what became of a refresh request
// (did it leave, was it answered) and wires its marker resolution to the
// provider's introspection endpoint (RFC 7662).

// refreshTokenActive returns the engine's introspection step
// (engine.ActiveCheck) on the provider's introspection_endpoint,
// authenticated as this client with its one method, over the strict HTTP
// client; nil when the metadata names no introspection endpoint. It
// returns true or false only for a 200 JSON object whose "active" is a
// JSON boolean; anything else (no answer, an OAuth error such as
// invalid_client, a malformed answer) is an error, classified as a token
// request's (fetchError: a network failure, a timeout, a 5xx or 429 is
// engine.Transient, and the engine asks again later; a refusal leaves
// its behaviour as without the step).
func (c *Client) refreshTokenActive() engine.ActiveCheck {
	if c.md.IntrospectionEndpoint == "" {
		return nil
	}
	u := c.endpointURL("introspection_endpoint", c.md.IntrospectionEndpoint)
	return func(ctx context.Context, refreshToken string) (bool, error) {
		form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
		resp, body, err := c.postForm(ctx, "introspection", u, form)
		if err != nil {
			return false, fetchError(err)
		}
		fields, err := successObject("introspection", resp.StatusCode, body)
		if err != nil {
			return false, fetchError(c.withResponse(err, form, resp, body))
		}
		var active bool
		if raw, ok := fields["active"]; !ok || json.Unmarshal(raw, &active) != nil {
			return false, &AuthError{Endpoint: "introspection", StatusCode: resp.StatusCode, Problem: "active missing or not a boolean"}
		}
		return active, nil
	}
}

// delivery notes, through an httptrace hook in the request's context,
// whether a connection was obtained for a token request: before that the
// request cannot have reached the server (a refused dial, a name that did
// not resolve, a failed TLS handshake, a policy refusal).
type delivery struct{ conn atomic.Bool }

func (d *delivery) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { d.conn.Store(true) },
	})
}

// report tells the engine what became of the request (tokenstore's
// Refresh.Answered and Sent): answered when the server's answer was read
// whole (a token response, an OAuth error, a malformed error status),
// sent when a connection was obtained and no usable answer was read (a
// reset, a timeout, a body cut short or too large, a 2xx (200 or another)
// that is not a usable token response: the server may have rotated unseen,
// and parseTokenResponse hands a rotation over from any 2xx), and neither
// when no connection was made.
func (d *delivery) report(r *engine.Refresh, tr *tokenResponse, err error) {
	var ae *AuthError
	switch {
	case err == nil, tr != nil, errors.As(err, &ae) && (ae.Problem == "" || ae.StatusCode != 0 && (ae.StatusCode < 200 || ae.StatusCode > 299)):
		r.Answered()
	case d.conn.Load() || errors.Is(err, engine.ErrPanic):
		r.Sent()
	}
}
