package resourceclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/challenge"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/resmeta"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
)

// found is what discovery learned about the resource and its
// authorization server.
type found struct {
	resource string // the resource indicator: the metadata's resource, verbatim
	issuer   string
	md       oauthclient.Metadata
	scopes   []string // challenge scope, else scopes_supported, else nil
	dpop     bool     // dpop_bound_access_tokens_required
}

// discover runs the discovery of the package doc from resp, the
// resource's 401 (nil when there is none).
func (c *Client) discover(ctx context.Context, resp *http.Response) (*found, error) {
	d, err := apiclient.Discover(ctx, apiclient.DiscoveryConfig{
		Resource:       c.cfg.Resource,
		AllowedIssuers: c.cfg.AllowedIssuers,
		// The issuer is shown to the user (ConfirmIssuer) later, before
		// anything is sent to it; discovery itself only reads its metadata.
		AcceptIssuer: func(context.Context, string) error { return nil },
		HTTP:         c.cfg.HTTP,
	}, resp)
	if errors.Is(err, resmeta.ErrNotPublished) {
		return c.legacy(ctx, resp)
	}
	if err != nil {
		return nil, err
	}
	md, err := oauthclient.Discover(ctx, d.Issuer, c.cfg.HTTP)
	if err != nil {
		return nil, err
	}
	return &found{resource: d.Resource, issuer: d.Issuer, md: *md, scopes: d.Scopes, dpop: d.DPoP || dpopOnly(resp)}, nil
}

// dpopOnly reports a 401 that challenges with the DPoP scheme and not
// with Bearer (RFC 9449 §7.1): the resource takes DPoP-bound tokens only.
func dpopOnly(resp *http.Response) bool {
	if resp == nil {
		return false
	}
	_, dpop := challenge.Find(resp.Header, "DPoP")
	_, bearer := challenge.Find(resp.Header, "Bearer")
	return dpop && !bearer
}

// legacy is the 2025-03-26 revision for a resource without protected
// resource metadata: the authorization server is the resource's origin,
// with its metadata there, else the default endpoints there, and nowhere
// else.
func (c *Client) legacy(ctx context.Context, resp *http.Response) (*found, error) {
	origin := c.res.Scheme + "://" + c.res.Host
	if len(c.cfg.AllowedIssuers) > 0 && !slices.Contains(c.cfg.AllowedIssuers, origin) {
		return nil, apiclient.ErrIssuerNotAllowed
	}
	f := &found{resource: c.cfg.Resource, issuer: origin}
	if resp != nil {
		f.scopes = challengeScopes(resp.Header)
	}
	md, err := oauthclient.Discover(ctx, origin, c.cfg.HTTP)
	var re *oauthclient.AuthError
	switch {
	case err == nil:
		f.md = *md
	case errors.As(err, &re) && re.Problem != "" && re.StatusCode == http.StatusNotFound:
		f.md = oauthclient.Metadata{
			Issuer:                origin,
			AuthorizationEndpoint: origin + "/authorize",
			TokenEndpoint:         origin + "/token",
			RegistrationEndpoint:  origin + "/register",
		}
	default:
		return nil, err
	}
	return f, nil
}

// within reports whether u is within the resource res: the same origin
// (default ports equal to none), no user info, and a path equal to res's
// or under it by whole segments, with no dot segment (also one followed
// by ";parameters"), no encoded slash and no backslash (which a server
// may resolve to a path outside the resource).
func within(res, u *url.URL) bool {
	if !netrule.SameOrigin(res, u) || u.User != nil || hasDotSegment(u.Path) || hasDotSegment(u.EscapedPath()) {
		return false
	}
	rp := strings.TrimSuffix(res.EscapedPath(), "/")
	p := u.EscapedPath()
	return rp == "" || p == rp || strings.HasPrefix(p, rp+"/")
}

// hasDotSegment reports a "." or ".." segment (also percent-encoded, and
// also with ";parameters", which Tomcat and Spring drop), an encoded
// slash or a backslash (a slash to IIS and several frameworks): a path a
// server may resolve outside the resource.
func hasDotSegment(p string) bool {
	lp := strings.ToLower(p)
	if strings.Contains(lp, "%2f") || strings.Contains(lp, "%5c") || strings.Contains(lp, `\`) {
		return true
	}
	for _, seg := range strings.Split(lp, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		switch seg {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return true
		}
	}
	return false
}

// challengeScopes is the scope of the resource's Bearer or DPoP challenge.
func challengeScopes(h http.Header) []string {
	_, scopes := challenge.ResourceHints(h)
	return scopes
}
