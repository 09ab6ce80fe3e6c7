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
	RedirectURIs    []string   `json:"redirect_uris,omitempty"`
	ClientName      string     `json:"client_name,omitempty"`
	AuthMethod      AuthMethod `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes      []string   `json:"grant_types,omitempty"`
	ResponseTypes   []string   `json:"response_types,omitempty"`
	ApplicationType string     `json:"application_type,omitempty"` // "native" or "web" (OpenID Connect Registration)
	Scope           string     `json:"scope,omitempty"`
}

// RegisteredClient is a registration endpoint's answer (RFC 7591 §3.2.1):
// the client id, its secret (zero for a public client) and the token
// endpoint authentication method registered (the one asked for when the
// answer names none). A plain value; its secret redacts itself when
// printed.
type RegisteredClient struct {
	ClientID     string
	ClientSecret secret.Value
	AuthMethod   AuthMethod
}

// Register registers a client at md's registration endpoint (RFC 7591)
// over the strict client of hc, and returns the registered client. The
// answer must be a JSON object with a client_id (an *AuthError with
// Problem set otherwise); an error answer is an *AuthError (invalid_redirect_uri,
// invalid_client_metadata…); a registration endpoint that is missing is
// ErrNoEndpoint. A method the answer names that this package does not
// support, or one that needs a secret the answer lacks, is refused with
// strictnet.ErrPolicy. Safe for concurrent use.
func Register(ctx context.Context, md *Metadata, hc strictnet.Config, r RegistrationRequest) (*RegisteredClient, error) {
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
	return parseRegistration(resp.StatusCode, rbody, r.AuthMethod)
}

// parseRegistration reads a registration endpoint's answer (status and
// body); asked is the method the request asked for.
func parseRegistration(status int, body []byte, asked AuthMethod) (*RegisteredClient, error) {
	ok201 := status
	if ok201 == http.StatusCreated {
		ok201 = http.StatusOK
	}
	fields, err := successObject("registration", ok201, body)
	if err != nil {
		return nil, err
	}
	out := &RegisteredClient{AuthMethod: asked}
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
		out.AuthMethod = AuthMethod(m)
	}
	if out.AuthMethod == "" {
		out.AuthMethod = AuthClientSecretBasic // RFC 7591 §2: the default
		if out.ClientSecret.IsZero() {
			out.AuthMethod = AuthNone
		}
	}
	switch {
	case !slices.Contains([]AuthMethod{AuthNone, AuthClientSecretBasic, AuthClientSecretPost}, out.AuthMethod):
		return nil, policyf("registration answered token_endpoint_auth_method %q, which this client does not use", safetext.Clean(string(out.AuthMethod), 64))
	case out.AuthMethod != AuthNone && out.ClientSecret.IsZero():
		return nil, policyf("registration answered %s without a client_secret", out.AuthMethod)
	case out.AuthMethod == AuthNone:
		out.ClientSecret = secret.Value{}
	}
	return out, nil
}
