package oauthclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/claims"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// maxRequestURI bounds the request_uri a PAR endpoint may hand back.
const maxRequestURI = 2048

// push sends the authorization request's parameters to the pushed
// authorization request endpoint (RFC 9126 §2) with the client's one
// authentication method and returns the request_uri. The answer must be
// 201 (200 tolerated) with a request_uri string and a positive expires_in;
// anything else is an *AuthError or a *ResponseError.
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
		return &ResponseError{Endpoint: "pushed_authorization_request", StatusCode: resp.StatusCode, Problem: problem}
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

// checkResource: RFC 8707 §2: an absolute URI without a fragment.
func checkResource(r string) error {
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") || len(r) > 2048 {
		return policyf("resource indicator %q must be an absolute URI without a fragment", safetext.Clean(r, 100))
	}
	return nil
}

// checkAudience checks the granted audience where the client can see it:
// an access token that is a JWT with typ at+jwt (RFC 9068) must name one
// of the requested resources in aud. The token is not verified here (the
// resource server does that); an unverified claim can only make the client
// refuse a token, never accept one. Opaque tokens and other JWTs pass.
func checkAudience(at string, resources []string) error {
	if len(resources) == 0 || strings.Count(at, ".") != 2 {
		return nil
	}
	parts := strings.SplitN(at, ".", 3)
	var hdr struct {
		Typ string `json:"typ"`
	}
	var claims struct {
		Aud claims.Audience `json:"aud"`
	}
	if decodeSegment(parts[0], &hdr) != nil || !strings.EqualFold(hdr.Typ, "at+jwt") && !strings.EqualFold(hdr.Typ, "application/at+jwt") {
		return nil
	}
	if decodeSegment(parts[1], &claims) != nil {
		return policyf("access token claims are not readable")
	}
	for _, a := range claims.Aud {
		for _, r := range resources {
			if a == r {
				return nil
			}
		}
	}
	return policyf("access token audience names none of the requested resources")
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || len(b) > strictnet.MaxResponseSize {
		return errors.New("bad segment")
	}
	return json.Unmarshal(b, v)
}
