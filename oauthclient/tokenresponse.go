package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"golang.org/x/oauth2"
)

// missingExpiry is the lifetime assumed for an access token whose response
// has no usable expires_in (missing, zero, negative or not a number): short,
// never forever (S18).
const missingExpiry = 5 * time.Minute

// maxExpiry caps the lifetime taken from expires_in, so that a huge value
// cannot make a token live in memory forever.
const maxExpiry = 24 * time.Hour

// tokenResponse is a parsed, checked token endpoint answer.
type tokenResponse struct {
	token        *oauth2.Token
	idToken      string
	scopes       []string
	scopePresent bool
	issuedType   string // RFC 8693 issued_token_type, "" when absent
}

// endpointURL returns the URL to use for an endpoint, honouring RFC 8705
// mtls_endpoint_aliases when the client authenticates with a certificate.
func (c *Client) endpointURL(name, u string) string {
	if c.method == authTLSClientAuth {
		if a, ok := c.md.MTLSEndpointAliases[name]; ok && a != "" {
			return a
		}
	}
	return u
}

// postForm authenticates the client and POSTs form to an endpoint. The
// strict client never follows a redirect (S2).
func (c *Client) postForm(ctx context.Context, endpoint, u string, form url.Values) (*http.Response, []byte, error) {
	return c.postFormHeader(ctx, endpoint, u, form, nil)
}

// parseTokenResponse turns a token endpoint answer into a token, or a typed
// error: *AuthError for an OAuth error (also inside a 200), *AuthError with
// Problem set for anything malformed (HTML, non-JSON, wrong types, missing fields), and
// ErrMalformedResponse. It never panics on any input. A refresh_token string
// in a 200 JSON object goes to rotated (when not nil) first, before any
// other field is checked: the server has spent the old one by then.
func parseTokenResponse(status int, body []byte, now time.Time, rotated func(string)) (*tokenResponse, error) {
	if status >= 200 && status < 300 && rotated != nil {
		handOverRotated(body, rotated)
	}
	fields, err := successObject("token", status, body)
	if err != nil {
		return nil, err
	}
	tok, err := parseToken(status, fields, now)
	if err != nil {
		return nil, err
	}
	out := &tokenResponse{token: tok}
	if err := out.parseOptional(status, fields); err != nil {
		return nil, err
	}
	extra := map[string]any{}
	if out.idToken != "" {
		extra["id_token"] = out.idToken
	}
	if out.scopePresent {
		extra["scope"] = strings.Join(out.scopes, " ")
	}
	out.token = tok.WithExtra(extra)
	return out, nil
}

// handOverRotated gives rotated the refresh token of a 2xx body, before
// anything else of the body is checked.
//
// Any 2xx body whose first JSON value (after a UTF-8 BOM) is an object
// holding a refresh_token string, whatever else it holds ("error": null,
// an odd token_type, a bad expiry, trailing data, a 201): the server may
// have spent the old token, so the new one is handed over before anything
// is checked (S23). The body may still be refused afterwards.
func handOverRotated(body []byte, rotated func(string)) {
	var first map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(stripBOM(body))).Decode(&first) == nil {
		if rt, ok := stringField(first, "refresh_token"); ok && rt != "" {
			rotated(rt)
		}
	}
}

// parseToken reads the token of a successful answer: access_token,
// token_type, expires_in and refresh_token.
func parseToken(status int, fields map[string]json.RawMessage, now time.Time) (*oauth2.Token, error) {
	at, ok := stringField(fields, "access_token")
	if !ok || at == "" {
		return nil, &AuthError{Endpoint: "token", StatusCode: status, Problem: "access_token missing or not a string"}
	}
	tt, ok := stringField(fields, "token_type")
	if !ok || tt == "" {
		return nil, &AuthError{Endpoint: "token", StatusCode: status, Problem: "token_type missing or not a string"}
	}
	tt, err := knownTokenType(tt)
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: at, TokenType: tt}
	life, err := expiresIn(fields["expires_in"])
	if err != nil {
		return nil, &AuthError{Endpoint: "token", StatusCode: status, Problem: err.Error()}
	}
	tok.ExpiresIn = int64(life / time.Second)
	tok.Expiry = now.Add(life)
	rt, present, err := optionalString(status, fields, "refresh_token")
	if err != nil {
		return nil, err
	}
	if present {
		tok.RefreshToken = rt
	}
	return tok, nil
}

// knownTokenType returns the canonical spelling of a token_type the client
// knows, or an error wrapping ErrMalformedResponse.
func knownTokenType(tt string) (string, error) {
	switch {
	case strings.EqualFold(tt, "Bearer"):
		return "Bearer", nil
	case strings.EqualFold(tt, "DPoP"): // accepted only for a proven request: checkTokenType
		return "DPoP", nil
	case tt == "N_A": // RFC 8693 §2.2.1, accepted only for a token exchange: tokenCall
		return tt, nil
	default:
		return "", fmt.Errorf("%w: %w %q", ErrMalformedResponse, errUnknownTokenType, safetext.Clean(tt, 32))
	}
}

// parseOptional reads the optional fields of a successful answer:
// issued_token_type, id_token and scope.
func (out *tokenResponse) parseOptional(status int, fields map[string]json.RawMessage) error {
	var err error
	if out.issuedType, _, err = optionalString(status, fields, "issued_token_type"); err != nil {
		return err
	}
	if out.idToken, _, err = optionalString(status, fields, "id_token"); err != nil {
		return err
	}
	s, present, err := optionalString(status, fields, "scope")
	if err != nil {
		return err
	}
	if present {
		out.scopePresent = true
		out.scopes = strings.Fields(s)
	}
	return nil
}

// optionalString reads a field that may be absent or null (present is
// then false); any other value that is not a string is an *AuthError with
// Problem set.
func optionalString(status int, fields map[string]json.RawMessage, k string) (s string, present bool, err error) {
	raw, present := fields[k]
	if !present || isNull(raw) {
		return "", false, nil
	}
	s, ok := stringField(fields, k)
	if !ok {
		return "", false, &AuthError{Endpoint: "token", StatusCode: status, Problem: k + " is not a string"}
	}
	return s, true, nil
}

// successObject returns the JSON object of a successful (200) endpoint
// answer. Anything else is an error: *AuthError for an OAuth error object
// (also inside a 200), *AuthError with Problem set for the rest (HTML, non-JSON, an error
// status without an error code). It never panics on any input.
func successObject(endpoint string, status int, body []byte) (map[string]json.RawMessage, error) {
	fields, err := decodeObject(body)
	if err != nil || fields == nil {
		problem := "body is not a JSON object"
		switch {
		case errors.Is(err, errTrailingData):
			problem = errTrailingData.Error()
		case looksLikeHTML(body):
			problem = "body is HTML"
		}
		return nil, &AuthError{Endpoint: endpoint, StatusCode: status, Problem: problem}
	}
	raw, hasError := fields["error"]
	if (!hasError || isNull(raw)) && status == http.StatusOK { // "error": null is no error
		return fields, nil
	}
	code, ok := stringField(fields, "error")
	if (!ok || code == "") && status >= 200 && status < 300 {
		return nil, &AuthError{Endpoint: endpoint, StatusCode: status, Problem: "a successful answer must have status 200"}
	}
	if !ok || code == "" {
		return nil, &AuthError{Endpoint: endpoint, StatusCode: status, Problem: "error status without an error code"}
	}
	desc, _ := stringField(fields, "error_description")
	uri, _ := stringField(fields, "error_uri")
	return nil, &AuthError{Endpoint: endpoint, StatusCode: status, Code: code, Description: desc, URI: uri}
}

// withResponse finishes an error of an endpoint call: an *AuthError is
// scrubbed of every sensitive value of the request, the client secret and
// any token the answer holds (a 200 with an error may carry new ones), and
// gets a sanitized *oauth2.RetrieveError for errors.As (S19): the status
// and headers of the answer without Set-Cookie, no request, no body, the
// error fields cleaned. Other errors pass through.
func (c *Client) withResponse(err error, form url.Values, resp *http.Response, body []byte) error {
	ae, ok := err.(*AuthError)
	if !ok || ae.Problem != "" {
		return err
	}
	ae.grant = form.Get("grant_type")
	var answered []string
	if fields, err := decodeObject(body); err == nil {
		for _, k := range []string{"access_token", "refresh_token", "id_token", "device_code", "issued_token"} {
			if v, ok := stringField(fields, k); ok {
				answered = append(answered, v)
			}
		}
	}
	ae.scrub(form, c.cfg.ClientSecret, answered...)
	ae.retrieve = &oauth2.RetrieveError{Response: statusOnly(resp),
		ErrorCode: safetext.Clean(ae.Code, 64), ErrorDescription: safetext.Clean(ae.Description, 300), ErrorURI: safetext.Clean(ae.URI, 300)}
	return err
}

// statusOnly is a copy of resp for an error: status, protocol and headers
// (without Set-Cookie); no request, no body, no TLS state.
func statusOnly(resp *http.Response) *http.Response {
	if resp == nil {
		return nil
	}
	h := resp.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Del("Set-Cookie")
	return &http.Response{Status: resp.Status, StatusCode: resp.StatusCode, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: h, Body: http.NoBody, ContentLength: resp.ContentLength}
}

// decodeObject decodes a body that is one JSON object, after an optional
// UTF-8 byte order mark. Trailing data after the object is an error
// wrapping ErrMalformedResponse.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	b := stripBOM(body)
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b[d.InputOffset():])) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, errTrailingData)
	}
	return m, nil
}

// stripBOM drops a leading UTF-8 byte order mark, which some servers put
// before their JSON.
func stripBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func stringField(m map[string]json.RawMessage, k string) (string, bool) {
	raw, ok := m[k]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// expiresIn interprets expires_in: a JSON number or a numeric string.
// Missing, null, below one second or negative mean missingExpiry; huge values are capped
// at maxExpiry; other types are an error.
func expiresIn(raw json.RawMessage) (time.Duration, error) {
	if raw == nil || isNull(raw) {
		return missingExpiry, nil
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return 0, fmt.Errorf("%w: expires_in is not valid JSON", ErrMalformedResponse)
	}
	switch x := v.(type) {
	case json.Number:
		n = x
	case string:
		n = json.Number(strings.TrimSpace(x))
	default:
		return 0, fmt.Errorf("%w: expires_in is neither a number nor a numeric string", ErrMalformedResponse)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) {
		return 0, fmt.Errorf("%w: expires_in is not a number", ErrMalformedResponse)
	}
	if f < 1 { // zero, negative or a fraction of a second: no usable lifetime
		return missingExpiry, nil
	}
	if f >= maxExpiry.Seconds() {
		return maxExpiry, nil
	}
	return time.Duration(f) * time.Second, nil
}

func looksLikeHTML(b []byte) bool {
	t := bytes.ToLower(bytes.TrimSpace(b))
	return bytes.HasPrefix(t, []byte("<!doctype html")) || bytes.HasPrefix(t, []byte("<html")) || bytes.HasPrefix(t, []byte("<"))
}

// checkScope enforces S10: a granted scope must be within the requested one,
// unless the configuration accepts wider grants. An absent scope parameter
// means the requested scope was granted (RFC 6749 §5.1).
func (c *Client) checkScope(requested []string, tr *tokenResponse) ([]string, error) {
	if !tr.scopePresent {
		return slices.Clone(requested), nil
	}
	if !c.cfg.AcceptWiderGrant {
		var extra []string
		for _, s := range tr.scopes {
			if !slices.Contains(requested, s) {
				extra = append(extra, s)
			}
		}
		if len(extra) > 0 {
			return nil, fmt.Errorf("%w: %s", errScopeWidened, safetext.Clean(strings.Join(extra, " "), 200))
		}
	}
	return slices.Clone(tr.scopes), nil
}
