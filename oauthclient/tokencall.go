package oauthclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
)

// This file carries DPoP proofs on token endpoint calls (RFC 9449 §5)
// and checks the token_type of the answers (S11).

// tokenCall calls the token endpoint with one grant. With a key, each
// attempt carries a fresh proof with the origin's last nonce; a 400
// use_dpop_nonce answer with a valid DPoP-Nonce is retried exactly once
// (RFC 9449 §8). With no key, a use_dpop_nonce answer (a server that
// requires DPoP) takes a key from newKey and retries once with it; a nil
// newKey returns the error instead. The key the request was proven with
// is returned with the response (also for an allowed Bearer downgrade:
// the refresh token may still be bound to it, and with an error: a key
// from newKey is then kept for the next attempt); token_type is checked
// against it.
// rotated, when not nil, gets a new refresh token the moment a 200 JSON
// body yields one, before any other check of the response.
func (c *Client) tokenCall(ctx context.Context, form url.Values, key *dpop.Key, newKey func() (*dpop.Key, error), rotated func(string)) (*tokenResponse, *dpop.Key, error) {
	u := c.endpointURL("token_endpoint", c.md.TokenEndpoint)
	pu, err := url.Parse(u)
	if err != nil {
		return nil, nil, policyf("token endpoint is not a URL")
	}
	var resp *http.Response
	var body []byte
	for attempt := 0; ; attempt++ {
		var extra http.Header
		if key != nil {
			p, err := key.Proof(http.MethodPost, pu, "", c.nonces.Get(pu), c.cfg.Now())
			if err != nil {
				return nil, nil, err
			}
			extra = http.Header{"Dpop": {p}}
		}
		resp, body, err = c.postFormHeader(ctx, "token", u, form, extra)
		if err != nil {
			if resp != nil && rotated != nil {
				// The server answered before the caller's Wrap failed (or
				// the answer was refused, a redirect): a rotated refresh
				// token in a 2xx answer is handed over.
				parseTokenResponse(resp.StatusCode, body, c.cfg.Now(), rotated)
			}
			return nil, key, err
		}
		nerr := c.nonces.Update(pu, resp.Header)
		if attempt > 0 || resp.StatusCode != http.StatusBadRequest || !isErrorCode(body, "use_dpop_nonce") {
			break
		}
		if nerr != nil {
			return nil, key, nerr
		}
		if resp.Header.Get("Dpop-Nonce") == "" {
			break // nothing to retry with: the error is returned below
		}
		if key == nil {
			if newKey == nil {
				break
			}
			if key, err = newKey(); err != nil {
				return nil, nil, err
			}
		}
	}
	tr, err := parseTokenResponse(resp.StatusCode, body, c.cfg.Now(), rotated)
	if err == nil {
		err = c.checkTokenType(tr, key != nil)
	}
	if err == nil && tr.token.TokenType == tokenTypeNotApplied && form.Get("grant_type") != grantTokenExchange {
		err = fmt.Errorf("%w: %w %q outside a token exchange", ErrMalformedResponse, errUnknownTokenType, tokenTypeNotApplied)
	}
	if err != nil {
		return tr, key, c.withResponse(err, form, resp, body)
	}
	return tr, key, nil
}

// checkTokenType is S11 with DPoP: token_type DPoP only when a proof was
// sent; Bearer to a proven request only with AllowBearerDowngrade.
func (c *Client) checkTokenType(tr *tokenResponse, sentProof bool) error {
	switch tt := tr.token.TokenType; {
	case tt == "DPoP" && !sentProof:
		return fmt.Errorf("%w: %w: token_type DPoP answered to a request without a DPoP proof", errUnknownTokenType, ErrDPoP)
	case tt == "Bearer" && sentProof && !c.cfg.AllowBearerDowngrade:
		return fmt.Errorf("%w: the server answered a DPoP request with a Bearer token (Config.AllowBearerDowngrade is off)", ErrDPoP)
	}
	return nil
}

// isErrorCode reports whether body is an OAuth error object with code.
func isErrorCode(body []byte, code string) bool {
	fields, err := decodeObject(body)
	if err != nil {
		return false
	}
	got, _ := stringField(fields, "error")
	return got == code
}

// postFormHeader is postForm with extra request headers.
func (c *Client) postFormHeader(ctx context.Context, endpoint, u string, form url.Values, extra http.Header) (*http.Response, []byte, error) {
	if u == "" {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoEndpoint, endpoint)
	}
	h := http.Header{}
	if err := c.authenticate(ctx, form, h); err != nil {
		return nil, nil, err
	}
	for k, v := range extra {
		h[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return do(ctx, c.http, req, endpoint)
}
