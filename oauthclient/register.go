package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file is dynamic client registration (RFC 7591).

// RegistrationRequest is the client metadata sent to a registration
// endpoint (RFC 7591 §2). Empty fields are not sent. A plain value.
type RegistrationRequest struct {
	RedirectURIs    []string `json:"redirect_uris,omitempty"`
	ClientName      string   `json:"client_name,omitempty"`
	AuthMethod      string   `json:"token_endpoint_auth_method,omitempty"` // as Config.AuthMethod; "" lets the server choose
	GrantTypes      []string `json:"grant_types,omitempty"`
	ResponseTypes   []string `json:"response_types,omitempty"`
	ApplicationType string   `json:"application_type,omitempty"` // "native" or "web" (OpenID Connect Registration)
	Scope           string   `json:"scope,omitempty"`
}

// Register registers a client at md's registration endpoint (RFC 7591)
// over the strict client of hc, and returns the registered client as the
// Config to give New: Issuer (md's), ClientID, ClientSecret (zero for a
// public client) and AuthMethod (the one the answer names, else the one
// asked for, else client_secret_basic with a secret and none without, RFC
// 7591 §2); the caller adds the rest (HTTP, Scopes, …). The answer must be
// a JSON object with a client_id (an *AuthError with Problem set
// otherwise); an error answer is an *AuthError (invalid_redirect_uri,
// invalid_client_metadata…); a registration endpoint that is missing is
// ErrNoEndpoint. A method the answer names that this package does not
// support for a registered client (only none, client_secret_basic and
// client_secret_post are), or one that needs a secret the answer lacks,
// is refused with strictnet.ErrPolicy. Safe for concurrent use.
func Register(ctx context.Context, md *Metadata, hc strictnet.Config, r RegistrationRequest) (*Config, error) {
	if md == nil || md.RegistrationEndpoint == "" {
		return nil, fmt.Errorf("%w: registration", ErrNoEndpoint)
	}
	if err := checkHTTPS("registration_endpoint", md.RegistrationEndpoint, hc.AllowLoopbackHTTP); err != nil {
		return nil, err
	}
	for _, u := range r.RedirectURIs {
		if err := checkRedirectURL(u); err != nil {
			return nil, err
		}
	}
	httpc, err := netrule.NewClient(hc, false)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	req, err := http.NewRequest(http.MethodPost, md.RegistrationEndpoint, bytes.NewReader(body))
	if err != nil {
		return nil, policyf("registration_endpoint is not a URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, rbody, err := do(ctx, httpc, req, "registration")
	if err != nil {
		return nil, err
	}
	cfg, err := parseRegistration(resp.StatusCode, rbody, authMethod(r.AuthMethod))
	if err != nil {
		return nil, err
	}
	cfg.Issuer = md.Issuer
	return cfg, nil
}

// parseRegistration reads a registration endpoint's answer (status and
// body); asked is the method the request asked for.
func parseRegistration(status int, body []byte, asked authMethod) (*Config, error) {
	ok201 := status
	if ok201 == http.StatusCreated {
		ok201 = http.StatusOK
	}
	fields, err := successObject("registration", ok201, body)
	if err != nil {
		return nil, err
	}
	out := &Config{AuthMethod: string(asked)}
	var ok bool
	if out.ClientID, ok = stringField(fields, "client_id"); !ok || out.ClientID == "" || len(out.ClientID) > 1024 || !safetext.IsClean(out.ClientID) {
		return nil, &AuthError{Endpoint: "registration", StatusCode: status, Problem: "no usable client_id"}
	}
	if s, _ := stringField(fields, "client_secret"); strings.TrimSpace(s) != "" {
		if out.ClientSecret, err = secret.FromReader(strings.NewReader(s)); err != nil {
			return nil, &AuthError{Endpoint: "registration", StatusCode: status, Problem: "client_secret unusable"}
		}
	}
	if m, _ := stringField(fields, "token_endpoint_auth_method"); m != "" {
		out.AuthMethod = m
	}
	if out.AuthMethod == "" {
		out.AuthMethod = string(authClientSecretBasic) // RFC 7591 §2: the default
		if out.ClientSecret.IsZero() {
			out.AuthMethod = string(authNone)
		}
	}
	switch m := authMethod(out.AuthMethod); {
	case !slices.Contains([]authMethod{authNone, authClientSecretBasic, authClientSecretPost}, m):
		return nil, policyf("registration answered token_endpoint_auth_method %q, which this client does not use", safetext.Clean(out.AuthMethod, 64))
	case m != authNone && out.ClientSecret.IsZero():
		return nil, policyf("registration answered %s without a client_secret", m)
	case m == authNone:
		out.ClientSecret = secret.Value{}
	}
	return out, nil
}
