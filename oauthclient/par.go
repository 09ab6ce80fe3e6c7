package oauthclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file is the pushed authorization request (RFC 9126).

// maxRequestURI bounds the request_uri a PAR endpoint may hand back.
const maxRequestURI = 2048

// push sends the authorization request's parameters to the pushed
// authorization request endpoint (RFC 9126 §2) with the client's one
// authentication method and returns the request_uri. The answer must be
// 201 (200 tolerated) with a request_uri string and a positive expires_in;
// anything else is an *AuthError (an error answer, or Problem set).
func (c *Client) push(ctx context.Context, params url.Values) (string, error) {
	form := cloneValues(params)
	u := c.endpointURL("pushed_authorization_request_endpoint", c.md.PushedAuthorizationRequestEndpoint)
	resp, body, err := c.postForm(ctx, "pushed_authorization_request", u, form)
	if err != nil {
		return "", err
	}
	status := resp.StatusCode
	if status == http.StatusCreated {
		status = http.StatusOK // successObject's notion of success
	}
	fields, err := successObject("pushed_authorization_request", status, body)
	if err != nil {
		return "", c.withResponse(err, form, resp, body)
	}
	bad := func(problem string) error {
		return &AuthError{Endpoint: "pushed_authorization_request", StatusCode: resp.StatusCode, Problem: problem}
	}
	ru, ok := stringField(fields, "request_uri")
	if !ok || ru == "" || len(ru) > maxRequestURI || !safetext.IsClean(ru) || strings.ContainsAny(ru, " \t") {
		return "", bad("request_uri missing, too long or not printable")
	}
	var exp json.Number
	if raw, ok := fields["expires_in"]; !ok || json.Unmarshal(raw, &exp) != nil {
		return "", bad("expires_in missing or not a number")
	}
	if f, err := exp.Float64(); err != nil || f < 1 {
		return "", bad("expires_in is not positive")
	}
	return ru, nil
}
