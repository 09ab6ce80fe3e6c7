package oauthclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/challenge"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file is protected resource discovery (RFC 9728): from an API's
// 401 (or its identifier) to the issuer and scopes it wants, never to an
// issuer the caller did not allow (S28).

// ResourceMetadata is the part of an RFC 9728 protected resource metadata
// document this package reads. It is a plain value.
type ResourceMetadata struct {
	Resource                      string   `json:"resource"`
	AuthorizationServers          []string `json:"authorization_servers,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported        []string `json:"bearer_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// ResourceDiscovery configures [DiscoverResource]. Resource and
// AllowedIssuers are required.
type ResourceDiscovery struct {
	// Resource is the API's resource identifier, an https URL: the
	// metadata's resource must equal it exactly (RFC 9728 §3.3), and it
	// is the RFC 8707 resource indicator to request tokens for.
	Resource string
	// AllowedIssuers are the authorization servers the caller accepts,
	// compared exactly. A resource naming none of them is refused: a
	// resource never chooses where the user logs in (S28).
	AllowedIssuers []string
	// HTTP configures the strict client the metadata is fetched with.
	HTTP strictnet.Config
}

// ResourceAuth answers "which issuer and scopes does this API want".
type ResourceAuth struct {
	// Issuer is the first of the metadata's authorization_servers that
	// the caller allowed.
	Issuer string
	// Scopes are the scopes of the 401 challenge, or else the metadata's
	// scopes_supported.
	Scopes []string
	// Resource is the resource identifier, for StartOptions.Resource and
	// ClientCredentialsOptions.Resource.
	Resource string
	// DPoP reports dpop_bound_access_tokens_required: set Config.DPoP.
	DPoP bool
	// Metadata is the document as read.
	Metadata ResourceMetadata
}

// ErrIssuerNotAllowed: a resource's metadata names no authorization
// server of ResourceDiscovery.AllowedIssuers. It matches ErrPolicy too.
var ErrIssuerNotAllowed error = &strictnet.PolicyError{Reason: "the resource names no authorization server the caller allowed"}

// DiscoverResource reads an API's RFC 9728 metadata: at the
// resource_metadata URL of resp's WWW-Authenticate (a 401 from the
// API, Bearer or DPoP scheme) when there is one, else at the well-known
// URL of cfg.Resource. The URL must be https; the document is fetched over
// the strict client (bounded, no redirects); its resource must equal
// cfg.Resource. The issuer returned is one the caller allowed: when the
// metadata names none, the error is ErrIssuerNotAllowed and no request at
// all goes to any issuer it names. resp may be nil. Safe for
// concurrent use.
func DiscoverResource(ctx context.Context, cfg ResourceDiscovery, resp *http.Response) (*ResourceAuth, error) {
	if len(cfg.AllowedIssuers) == 0 {
		return nil, policyf("ResourceDiscovery.AllowedIssuers is empty: name the issuers a resource may lead to")
	}
	if err := checkHTTPS("resource", cfg.Resource); err != nil {
		return nil, err
	}
	metaURL, scopes := "", []string(nil)
	if resp != nil {
		metaURL, scopes = challenge.ResourceHints(resp.Header)
	}
	if metaURL == "" {
		metaURL = resourceMetadataURL(cfg.Resource)
	}
	if err := checkHTTPS("resource_metadata", metaURL); err != nil {
		return nil, err
	}
	hc, err := strictnet.NewClient(cfg.HTTP)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, metaURL, nil)
	if err != nil {
		return nil, policyf("resource_metadata is not a URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, body, err := do(ctx, hc, req, "resource_metadata")
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ResponseError{Endpoint: "resource_metadata", StatusCode: resp.StatusCode, Problem: "unexpected status"}
	}
	var md ResourceMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, &ResponseError{Endpoint: "resource_metadata", StatusCode: resp.StatusCode, Problem: "body is not a JSON metadata document"}
	}
	if md.Resource != cfg.Resource {
		return nil, policyf("resource metadata names resource %q, expected %q", safetext.Clean(md.Resource, 200), cfg.Resource)
	}
	out := &ResourceAuth{Resource: md.Resource, DPoP: md.DPoPBoundAccessTokensRequired, Metadata: md, Scopes: scopes}
	for _, as := range md.AuthorizationServers {
		if slices.Contains(cfg.AllowedIssuers, as) {
			out.Issuer = as
			break
		}
	}
	if out.Issuer == "" {
		return nil, ErrIssuerNotAllowed
	}
	if out.Scopes == nil {
		out.Scopes = slices.Clone(md.ScopesSupported)
	}
	return out, nil
}

// resourceMetadataURL is RFC 9728 §3.1: the well-known segment goes
// between the host and the resource's path.
func resourceMetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.EscapedPath(), "/")
}
