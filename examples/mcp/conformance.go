package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
)

// headlessRedirect is the redirect URI of the headless browser step. The
// suite's authorization server redirects to it at once; nothing listens
// there, the browser step reads the redirect from the Location header.
const headlessRedirect = "http://127.0.0.1:3000/callback"

// conformanceContext is MCP_CONFORMANCE_CONTEXT: the scenario's name and
// what the client would be configured with in a real deployment.
type conformanceContext struct {
	Name string `json:"name"`
	// A pre-registered client at Issuer.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Issuer       string `json:"issuer"`
}

// known are the context keys the client understands; any other key is
// configuration this client does not support, and it says so rather than
// running a flow the scenario does not test.
var known = map[string]bool{"name": true, "client_id": true, "client_secret": true, "issuer": true}

// conformance configures cfg for a run under the conformance suite:
// loopback http allowed (the suite's servers are http://localhost), the
// browser step played headlessly, nothing stored, and the client
// configuration from the context (raw is MCP_CONFORMANCE_CONTEXT, "" when
// the scenario has none).
func conformance(cfg *resourceclient.Config, raw string) error {
	cfg.HTTP.AllowLoopbackHTTP = true
	cfg.Store = nil
	cfg.RedirectURL = headlessRedirect
	cfg.Browser = headlessBrowser(&http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	})
	if raw == "" {
		return nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &keys); err != nil {
		return fmt.Errorf("MCP_CONFORMANCE_CONTEXT is not a JSON object: %w", err)
	}
	var unknown []string
	for k := range keys {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("MCP_CONFORMANCE_CONTEXT: this client does not support %s", strings.Join(unknown, ", "))
	}
	var c conformanceContext
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
	}
	if ok, err := machine(cfg, raw, c); ok || err != nil {
		return err // a machine client (machine.go)
	}
	if c.ClientID != "" {
		if c.Issuer == "" {
			return errors.New("MCP_CONFORMANCE_CONTEXT: a pre-registered client_id needs the issuer it belongs to")
		}
		cred := &resourceclient.Credentials{Issuer: c.Issuer, ClientID: c.ClientID}
		if c.ClientSecret != "" {
			s, err := secret.FromReader(strings.NewReader(c.ClientSecret))
			if err != nil {
				return fmt.Errorf("MCP_CONFORMANCE_CONTEXT client_secret: %w", err)
			}
			cred.ClientSecret = s
		}
		cfg.Credentials = cred
	}
	return nil
}

// headlessBrowser is the browser step without a browser or a user: it
// loads the authorization URL without following the redirect and returns
// the redirect's URL, as a browser would land on it. It works with
// authorization servers that redirect at once, as the suite's do.
func headlessBrowser(hc *http.Client) func(ctx context.Context, authURL string) (*url.URL, error) {
	return func(ctx context.Context, authURL string) (*url.URL, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return nil, fmt.Errorf("the authorization endpoint answered %s, not a redirect (a login page needs a real browser)", resp.Status)
		}
		return resp.Location()
	}
}
