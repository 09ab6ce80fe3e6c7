package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/dpop"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/validate"
)

// This file is the device authorization grant (RFC 8628) for tools that
// run where no browser can reach a loopback redirect (SSH sessions,
// containers). Both requests go through the strict client: the device
// authorization request is authenticated with the one configured method
// like every other call, its answer is read through the 1 MiB bound, and
// the polling answers go through the same token response parser as every
// other grant.

// deviceGrantType is the grant_type of the device access token request.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// Polling bounds (S24). RFC 8628 §3.2: a missing interval means 5 s;
// slow_down adds 5 s (§3.5). An interval below 1 s is not a rate a server
// means, and gets the default; the 60 s cap keeps a hostile interval from
// stalling a login for hours; the code's expiry stops the loop anyway. So
// one device authorization makes at most one token request per second and
// at most 30 min / 1 s requests in all.
const (
	defaultDeviceInterval = 5 * time.Second
	slowDownStep          = 5 * time.Second
	minDeviceInterval     = 1 * time.Second
	maxDeviceInterval     = 60 * time.Second
	// maxDeviceCodeLifetime caps the lifetime taken from the device
	// authorization response's expires_in. A missing, zero or negative
	// expires_in means 5 min, as for tokens (S18).
	maxDeviceCodeLifetime = 30 * time.Minute
)

// DeviceAuthorization is a device authorization in progress (RFC 8628
// §3.2): what to show the user, and the device code, which stays inside.
// Printing it with any fmt verb, slog or JSON shows no device code. It is
// created by [Client.DeviceAuth], immutable and safe for concurrent use.
type DeviceAuthorization struct {
	// UserCode is the code the user enters at VerificationURI.
	UserCode string
	// VerificationURI is where the user enters UserCode (an https URL).
	VerificationURI string
	// VerificationURIComplete, when not "", is VerificationURI with the
	// user code included, for a QR code or a browser.
	VerificationURIComplete string
	// Expiry is when the device code stops being accepted.
	Expiry time.Time
	// Interval is the polling interval announced by the server, within
	// 1 s to 60 s (5 s when it announced none or less than 1 s).
	Interval time.Duration

	deviceCode string
	scopes     []string
	resources  []string
	dpop       *dpop.Key // with DPoP: the key the polls prove (RFC 9449 §5)
}

func (d DeviceAuthorization) redact() string {
	return fmt.Sprintf("oauthclient.DeviceAuthorization{user_code=%s, verification_uri=%s, expiry=%s, device_code=%s}",
		d.UserCode, d.VerificationURI, d.Expiry.UTC().Format(time.RFC3339), safetext.Redacted)
}

// Format prints the authorization with the device code redacted, under
// every fmt verb; slog's text handler prints the same. encoding/json sees
// only the exported fields, never the device code.
func (d DeviceAuthorization) Format(f fmt.State, verb rune) { io.WriteString(f, d.redact()) }

// DeviceAuth starts a device authorization (RFC 8628 §3.1) for the
// configured scopes and the RFC 8707 resource indicators resource (sent on
// the device authorization request and on every poll, and kept with the
// tokens, so a token source refreshes for them; none: no indicator). Show
// the user UserCode and VerificationURI, then call
// [Client.DeviceToken]. Errors: *AuthError for an OAuth error answer,
// *AuthError with Problem set (ErrMalformedResponse) for an answer without a device
// code, user code or https verification URI, ErrNoEndpoint when the server has
// no device authorization endpoint. Safe for concurrent use.
func (c *Client) DeviceAuth(ctx context.Context, resource ...string) (*DeviceAuthorization, error) {
	if c.md.DeviceAuthorizationEndpoint == "" {
		return nil, fmt.Errorf("%w: device authorization", ErrNoEndpoint)
	}
	form := url.Values{}
	if len(c.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(c.cfg.Scopes, " "))
	}
	for _, r := range resource {
		if err := checkResource(r); err != nil {
			return nil, err
		}
		form.Add("resource", r)
	}
	u := c.endpointURL("device_authorization_endpoint", c.md.DeviceAuthorizationEndpoint)
	resp, body, err := c.postForm(ctx, "device_authorization", u, form)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	fields, err := successObject("device_authorization", resp.StatusCode, body)
	if err != nil {
		return nil, c.withResponse(err, form, resp, body)
	}
	da := &DeviceAuthorization{scopes: slices.Clone(c.cfg.Scopes), resources: slices.Clone(resource)}
	if c.dpopOn() {
		if da.dpop, err = dpop.NewKey(); err != nil {
			return nil, err
		}
	}
	if problem := da.parseFields(fields, now); problem != "" {
		return nil, &AuthError{Endpoint: "device_authorization", StatusCode: resp.StatusCode, Problem: problem}
	}
	return da, nil
}

// parseFields reads the device authorization response's fields into da,
// the answer having arrived at now. It returns the problem of the first
// field refused, or "".
func (da *DeviceAuthorization) parseFields(fields map[string]json.RawMessage, now time.Time) (problem string) {
	var ok bool
	if da.deviceCode, ok = stringField(fields, "device_code"); !ok || da.deviceCode == "" {
		return "device_code missing or not a string"
	}
	if da.UserCode, ok = stringField(fields, "user_code"); !ok || da.UserCode == "" || len(da.UserCode) > 64 || !safetext.IsClean(da.UserCode) {
		return "user_code missing, too long or not printable"
	}
	da.VerificationURI, ok = stringField(fields, "verification_uri")
	if !ok {
		// Some servers spell it verification_url (as x/oauth2 accepts).
		da.VerificationURI, _ = stringField(fields, "verification_url")
	}
	if err := checkVerificationURI(da.VerificationURI); err != nil {
		return "verification_uri: " + err.Error()
	}
	if v, ok := stringField(fields, "verification_uri_complete"); ok && v != "" {
		if checkVerificationURI(v) == nil {
			da.VerificationURIComplete = v
		}
	}
	life, err := expiresIn(fields["expires_in"])
	if err != nil {
		return err.Error()
	}
	da.Expiry = now.Add(min(life, maxDeviceCodeLifetime))
	if da.Interval, err = deviceInterval(fields["interval"]); err != nil {
		return err.Error()
	}
	return ""
}

// deviceInterval reads a device authorization response's interval: a JSON
// number or numeric string of seconds. Missing, null, zero, negative or
// below minDeviceInterval means the RFC 8628 default (5 s); above
// maxDeviceInterval means maxDeviceInterval. The value is clamped as a
// float, before any conversion to a Duration, so no interval can overflow
// (8788434705084852 s would wrap to microseconds).
func deviceInterval(raw json.RawMessage) (time.Duration, error) {
	if raw == nil || isNull(raw) {
		return defaultDeviceInterval, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%w: interval is not valid JSON", ErrMalformedResponse)
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(x), 64); err != nil {
			return 0, fmt.Errorf("%w: interval is not a number", ErrMalformedResponse)
		}
	default:
		return 0, fmt.Errorf("%w: interval is neither a number nor a numeric string", ErrMalformedResponse)
	}
	switch {
	case math.IsNaN(f), f < minDeviceInterval.Seconds():
		return defaultDeviceInterval, nil
	case f >= maxDeviceInterval.Seconds():
		return maxDeviceInterval, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// clampInterval keeps a polling interval within [minDeviceInterval,
// maxDeviceInterval]; below the minimum (zero included) means the default.
func clampInterval(d time.Duration) time.Duration {
	if d < minDeviceInterval {
		return defaultDeviceInterval
	}
	return min(d, maxDeviceInterval)
}

// checkVerificationURI accepts only an https URL without user info: the
// user is told to open it, so it must not be a javascript: or http URL.
func checkVerificationURI(s string) error {
	if s == "" || len(s) > 2048 || !safetext.IsClean(s) {
		return fmt.Errorf("%w: missing, too long or not printable", ErrMalformedResponse)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: not an https URL", ErrMalformedResponse)
	}
	return nil
}

// DeviceToken polls the token endpoint until the user approves or denies
// the device authorization, the device code expires, or ctx ends (RFC 8628
// §3.4–3.5). It waits Interval before each request, answers
// authorization_pending by waiting again and slow_down by waiting 5 s
// longer from then on. The token response is checked like any other:
// token_type, the granted scope against the requested one, and (for
// OpenID Connect) the ID token, which in this grant carries no nonce.
//
// Errors: an *AuthError with Code "access_denied" when the user denied
// it; ErrFlowExpired at the code's expiry or on expired_token (then with
// the *AuthError wrapped too); ctx.Err(); or the first other error, which
// is returned at once. Safe for concurrent use; poll one DeviceAuthorization
// from one goroutine.
func (c *Client) DeviceToken(ctx context.Context, da *DeviceAuthorization) (*Tokens, error) {
	if da == nil || da.deviceCode == "" {
		return nil, cfgerr.New("oauthclient", "DeviceToken needs a DeviceAuthorization from DeviceAuth")
	}
	interval := clampInterval(da.Interval)
	form := url.Values{"grant_type": {deviceGrantType}, "device_code": {da.deviceCode}}
	for _, r := range da.resources {
		form.Add("resource", r)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	dk := da.dpop // a key made after use_dpop_nonce proves the later polls
	for {
		if err := c.waitToPoll(ctx, timer, da.Expiry, interval); err != nil {
			return nil, err
		}
		tr, key, err := c.tokenCall(ctx, cloneValues(form), dk, dpop.NewKey, nil)
		if key != nil {
			dk = key
		}
		if err != nil {
			if interval, err = nextPollInterval(err, interval); err != nil {
				return nil, err
			}
			continue
		}
		return c.deviceTokens(ctx, da, tr, key)
	}
}

// waitToPoll waits interval (or until the device code's expiry, if
// sooner) and reports errDeviceExpired once the code has expired, or
// ctx.Err().
func (c *Client) waitToPoll(ctx context.Context, timer *time.Timer, expiry time.Time, interval time.Duration) error {
	remaining := expiry.Sub(c.cfg.Now())
	if remaining <= 0 {
		return errDeviceExpired
	}
	timer.Reset(min(interval, remaining))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	if !c.cfg.Now().Before(expiry) {
		return errDeviceExpired
	}
	return nil
}

// nextPollInterval reads a poll's error (RFC 8628 §3.5): the interval to
// wait before polling again on authorization_pending or slow_down, or the
// error that ends the polling.
func nextPollInterval(err error, interval time.Duration) (time.Duration, error) {
	var ae *AuthError
	if !errors.As(err, &ae) {
		return 0, err
	}
	switch ae.Code {
	case "authorization_pending":
		return interval, nil
	case "slow_down":
		return clampInterval(interval + slowDownStep), nil
	case "expired_token":
		return 0, fmt.Errorf("%w: %w", errDeviceExpired, ae)
	}
	return 0, err
}

// deviceTokens checks the token response of an approved device
// authorization (scope, audience, the ID token for OpenID Connect) and
// returns its Tokens.
func (c *Client) deviceTokens(ctx context.Context, da *DeviceAuthorization, tr *tokenResponse, key *dpop.Key) (*Tokens, error) {
	scopes, err := c.checkScope(da.scopes, tr)
	if err != nil {
		return nil, err
	}
	if err := checkAudience(tr.token.AccessToken, da.resources); err != nil {
		return nil, err
	}
	out := &Tokens{tok: tr.token, rawID: tr.idToken, scopes: scopes, resources: slices.Clone(da.resources)}
	out.tok, out.dpop = dpop.WithKey(tr.token, key), key
	if slices.Contains(da.scopes, "openid") {
		if tr.idToken == "" {
			return nil, fmt.Errorf("%w: token response has no id_token", ErrIDToken)
		}
		out.idToken, err = c.verifyIDToken(ctx, tr.idToken, validate.IDTokenCheck{AccessToken: tr.token.AccessToken})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
