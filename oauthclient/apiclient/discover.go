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
	"github.com/oauthsafe/oauthsafe/internal/resmeta"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file is protected resource discovery (RFC 9728): from an API's
// 401 (or its identifier) to the issuer and scopes it wants, never to an
// issuer the caller did not allow (S28).

// resourceMetadata is the part of an RFC 9728 protected resource
// metadata document this package reads.
type resourceMetadata struct {
	Resource                      string   `json:"resource"`
	AuthorizationServers          []string `json:"authorization_servers,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	DPoPBoundAccessTokensRequired bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// DiscoveryConfig configures [Discover]. Resource is required, and
// AllowedIssuers or AcceptIssuer.
type DiscoveryConfig struct {
	// Resource is the API's resource identifier, an https URL: the
	// metadata's resource must equal it exactly (RFC 9728 §3.3), or equal
	// its origin for the document found at the root well-known URL, and it
	// is the RFC 8707 resource indicator to request tokens for.
	Resource string
	// AllowedIssuers are the authorization servers the caller accepts,
	// compared exactly. A resource naming none of them is refused: a
	// resource never chooses where the user logs in (S28). Empty means
	// AcceptIssuer decides.
	AllowedIssuers []string
	// AcceptIssuer, when set, is asked about the issuer Discover is about
	// to return (the first allowed one, or with no AllowedIssuers the
	// first the metadata names): a resource-first client shows it to the
	// user or checks it against its own rule, and an error refuses it and
	// is returned. nil with no AllowedIssuers is refused (a
	// *strictnet.PolicyError): one of the two must decide.
	AcceptIssuer func(ctx context.Context, issuer string) error
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
	// and oauthclient.GrantOptions.Resource: the metadata's resource,
	// verbatim (DiscoveryConfig.Resource, or its origin when the document
	// was found at the root well-known URL).
	Resource string
	// DPoP reports dpop_bound_access_tokens_required: set oauthclient.Config.DPoP.
	DPoP bool
}

// Errors of Discover.
var (
	// ErrIssuerNotAllowed: a resource's metadata names no authorization
	// server of DiscoveryConfig.AllowedIssuers (S28). It is a
	// *strictnet.PolicyError, matching strictnet.ErrPolicy too.
	ErrIssuerNotAllowed error = &strictnet.PolicyError{Reason: "the resource names no authorization server the caller allowed"}
	// ErrDiscovery: the resource metadata could not be had: the resource
	// publishes none (no resource_metadata in its challenge, and 404 at
	// every well-known URL), or it could not be fetched or read (network,
	// a status other than 200, a body that is not JSON).
	ErrDiscovery = errors.New("apiclient: resource metadata unavailable")
)

// errNoResourceMetadata: the resource publishes no metadata.
var errNoResourceMetadata = marked{fmt.Errorf("%w: the resource publishes none", ErrDiscovery), resmeta.ErrNotPublished}

// errResourceMismatch: the metadata names another resource than the one
// it was fetched for (RFC 9728 §3.3); no issuer it names is returned.
var errResourceMismatch error = &strictnet.PolicyError{Reason: "the resource metadata names another resource than the one asked"}

// marked is err, also matching mark (a sentinel of internal/resmeta that
// resourceclient tells apart), without printing it.
type marked struct {
	error
	mark error
}

func (m marked) Unwrap() []error { return []error{m.error, m.mark} }

// Discover reads an API's RFC 9728 metadata: at the
// resource_metadata URL of resp's WWW-Authenticate (a 401 from the
// API, Bearer or DPoP scheme) when there is one, else at the well-known
// URL of cfg.Resource with its path inserted, then (on 404, for a
// resource with a path) at the root well-known URL. The URLs must be
// https (or http on a loopback host with cfg.HTTP.AllowLoopbackHTTP); the
// documents are fetched over the strict client (bounded, no redirects);
// the resource a document names must equal cfg.Resource (its origin for
// the root document), else the error is a *strictnet.PolicyError. The
// issuer returned is one the caller allowed, or accepted with
// AcceptIssuer: when the metadata names none, the error is
// ErrIssuerNotAllowed and no request at all goes to any issuer it names.
// Every refusal matches strictnet.ErrPolicy; metadata that cannot be had,
// ErrDiscovery. resp may be nil. Safe for concurrent use.
func Discover(ctx context.Context, cfg DiscoveryConfig, resp *http.Response) (*Discovery, error) {
	if len(cfg.AllowedIssuers) == 0 && cfg.AcceptIssuer == nil {
		return nil, policyf("DiscoveryConfig.AllowedIssuers is empty and there is no AcceptIssuer: name the issuers a resource may lead to")
	}
	if p := netrule.HTTPSProblem(cfg.Resource, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return nil, policyf("DiscoveryConfig.Resource %s", p)
	}
	metaURL, scopes := "", []string(nil)
	if resp != nil {
		metaURL, scopes = challenge.ResourceHints(resp.Header)
	}
	md, err := findResourceMetadata(ctx, cfg, metaURL)
	if err != nil {
		return nil, err
	}
	out := &Discovery{Resource: md.Resource, DPoP: md.DPoPBoundAccessTokensRequired, Scopes: scopes}
	if out.Issuer, err = chooseIssuer(ctx, cfg, md); err != nil {
		return nil, err
	}
	if out.Scopes == nil {
		out.Scopes = slices.Clone(md.ScopesSupported)
	}
	return out, nil
}

// findResourceMetadata fetches the metadata at metaURL, the challenge's
// resource_metadata, or when there is none at the well-known URLs of
// cfg.Resource, the first that is not 404.
func findResourceMetadata(ctx context.Context, cfg DiscoveryConfig, metaURL string) (*resourceMetadata, error) {
	hc, err := netrule.NewClient(cfg.HTTP, false)
	if err != nil {
		return nil, err
	}
	if metaURL != "" {
		return fetchResourceMetadata(ctx, hc, cfg, metaURL, cfg.Resource, false)
	}
	for _, w := range wellKnownURLs(cfg.Resource) {
		md, err := fetchResourceMetadata(ctx, hc, cfg, w.url, w.resource, true)
		if err != nil || md != nil {
			return md, err
		}
	}
	return nil, errNoResourceMetadata
}

// chooseIssuer returns the first authorization server of md that the
// caller allowed, once AcceptIssuer (if any) accepted it.
func chooseIssuer(ctx context.Context, cfg DiscoveryConfig, md *resourceMetadata) (string, error) {
	issuer := ""
	for _, as := range md.AuthorizationServers {
		if len(cfg.AllowedIssuers) == 0 || slices.Contains(cfg.AllowedIssuers, as) {
			issuer = as
			break
		}
	}
	if issuer == "" {
		return "", ErrIssuerNotAllowed
	}
	if p := netrule.HTTPSProblem(issuer, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return "", policyf("the resource's authorization server %q %s", safetext.Clean(issuer, 200), p)
	}
	if cfg.AcceptIssuer != nil {
		if err := cfg.AcceptIssuer(ctx, issuer); err != nil {
			return "", err
		}
	}
	return issuer, nil
}

// fetchResourceMetadata fetches one metadata document and checks that it
// names want. With notFoundOK, a 404 is (nil, nil): try the next URL.
func fetchResourceMetadata(ctx context.Context, hc *http.Client, cfg DiscoveryConfig, metaURL, want string, notFoundOK bool) (*resourceMetadata, error) {
	if p := netrule.HTTPSProblem(metaURL, cfg.HTTP.AllowLoopbackHTTP); p != "" {
		return nil, policyf("resource_metadata %s", p)
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
	if mresp.StatusCode == http.StatusNotFound && notFoundOK {
		return nil, nil
	}
	if mresp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: resource_metadata answered HTTP %d", ErrDiscovery, mresp.StatusCode)
	}
	var md resourceMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("%w: resource_metadata is not a JSON metadata document", ErrDiscovery)
	}
	if md.Resource != want {
		return nil, marked{fmt.Errorf("%w: it names %q, expected %q", errResourceMismatch, safetext.Clean(md.Resource, 200), want), resmeta.ErrResourceMismatch}
	}
	return &md, nil
}

type wellKnown struct{ url, resource string }

// wellKnownURLs are RFC 9728 §3.1's URL (the well-known segment between
// the host and the resource's path) and then, for a resource with a
// path, the root one, whose document names the origin.
func wellKnownURLs(resource string) []wellKnown {
	u, err := url.Parse(resource)
	if err != nil {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	out := []wellKnown{{resourceMetadataURL(resource), resource}}
	if strings.TrimSuffix(u.EscapedPath(), "/") != "" {
		out = append(out, wellKnown{origin + "/.well-known/oauth-protected-resource", origin})
	}
	return out
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
