package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/challenge"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file is protected resource discovery (RFC 9728): from an API's
// 401 (or its identifier) to the issuer and scopes it wants, never to an
// issuer the caller did not allow (S28).

// Metadata is the part of an RFC 9728 protected resource metadata
// document this package reads. It is a plain value.
type Metadata struct {
	Resource                      string   `json:"resource"`
	AuthorizationServers          []string `json:"authorization_servers,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported        []string `json:"bearer_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// DiscoveryConfig configures [Discover]. Resource and
// AllowedIssuers are required.
type DiscoveryConfig struct {
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

// Discovery answers "which issuer and scopes does this API want".
type Discovery struct {
	// Issuer is the first of the metadata's authorization_servers that
	// the caller allowed.
	Issuer string
	// Scopes are the scopes of the 401 challenge, or else the metadata's
	// scopes_supported.
	Scopes []string
	// Resource is the resource identifier, for oauthclient.StartOptions.Resource
	// and clientcredentials.Options.Resource.
	Resource string
	// DPoP reports dpop_bound_access_tokens_required: set oauthclient.Config.DPoP.
	DPoP bool
	// Metadata is the document as read.
	Metadata Metadata
}

// Errors of Discover.
var (
	// ErrIssuerNotAllowed: a resource's metadata names no authorization
	// server of DiscoveryConfig.AllowedIssuers (S28). It is a
	// *strictnet.PolicyError, matching strictnet.ErrPolicy too.
	ErrIssuerNotAllowed error = &strictnet.PolicyError{Reason: "the resource names no authorization server the caller allowed"}
	// ErrDiscovery: the resource metadata could not be fetched or read
	// (network, a status other than 200, a body that is not JSON).
	ErrDiscovery = errors.New("apiclient: resource metadata unavailable")
)

// Discover reads an API's RFC 9728 metadata: at the
// resource_metadata URL of resp's WWW-Authenticate (a 401 from the
// API, Bearer or DPoP scheme) when there is one, else at the well-known
// URL of cfg.Resource. The URL must be https; the document is fetched over
// the strict client (bounded, no redirects); its resource must equal
// cfg.Resource. The issuer returned is one the caller allowed: when the
// metadata names none, the error is ErrIssuerNotAllowed and no request at
// all goes to any issuer it names. resp may be nil. Safe for
// concurrent use.
func Discover(ctx context.Context, cfg DiscoveryConfig, resp *http.Response) (*Discovery, error) {
	if len(cfg.AllowedIssuers) == 0 {
		return nil, policyf("DiscoveryConfig.AllowedIssuers is empty: name the issuers a resource may lead to")
	}
	if p := netrule.HTTPSProblem(cfg.Resource, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return nil, policyf("DiscoveryConfig.Resource %s", p)
	}
	metaURL, scopes := "", []string(nil)
	if resp != nil {
		metaURL, scopes = challenge.ResourceHints(resp.Header)
	}
	if metaURL == "" {
		metaURL = resourceMetadataURL(cfg.Resource)
	}
	if p := netrule.HTTPSProblem(metaURL, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return nil, policyf("resource_metadata %s", p)
	}
	hc, err := netrule.NewClient(cfg.HTTP, false)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, metaURL, nil)
	if err != nil {
		return nil, policyf("resource_metadata is not a URL")
	}
	req.Header.Set("Accept", "application/json")
	mresp, err := hc.Do(req.WithContext(netrule.WithEndpoint(ctx, "resource_metadata")))
	if err != nil {
		var pe *strictnet.PolicyError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, netrule.StripURL(err))
	}
	defer mresp.Body.Close()
	body, err := netrule.ReadBody(mresp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, netrule.StripURL(err))
	}
	if mresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: resource_metadata answered HTTP %d", ErrDiscovery, mresp.StatusCode)
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("%w: resource_metadata is not a JSON metadata document", ErrDiscovery)
	}
	if md.Resource != cfg.Resource {
		return nil, policyf("resource metadata names resource %q, expected %q", safetext.Clean(md.Resource, 200), cfg.Resource)
	}
	out := &Discovery{Resource: md.Resource, DPoP: md.DPoPBoundAccessTokensRequired, Metadata: md, Scopes: scopes}
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
