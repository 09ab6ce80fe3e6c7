// Package netrule holds the network rules shared by strictnet, oauthclient,
// its api package and validate: the one check of a server URL, and the
// marks a server call carries in its context for the strict transport (the
// endpoint kind named in log events, and the API calls whose bodies are
// the caller's and so not bounded).
package netrule

import (
	"context"
	"net/url"
)

type callKey struct{}

// call is what a context tells the strict transport about one server call.
type call struct {
	endpoint  string
	unbounded bool
}

var apiCall = &call{endpoint: "api", unbounded: true}

// WithEndpoint names the kind of server call made under ctx ("token",
// "jwks", "introspection"…) for the log event.
func WithEndpoint(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, callKey{}, &call{endpoint: kind})
}

// WithAPI marks ctx as an API call: the endpoint kind is "api" and the
// response body is not bounded (the API is the caller's).
func WithAPI(ctx context.Context) context.Context {
	if c, _ := ctx.Value(callKey{}).(*call); c == apiCall {
		return ctx
	}
	return context.WithValue(ctx, callKey{}, apiCall)
}

// Endpoint returns the kind named in ctx, or "" when none is.
func Endpoint(ctx context.Context) string {
	if c, _ := ctx.Value(callKey{}).(*call); c != nil {
		return c.endpoint
	}
	return ""
}

// Unbounded reports whether ctx is an API call, whose body is not bounded.
func Unbounded(ctx context.Context) bool {
	c, _ := ctx.Value(callKey{}).(*call)
	return c != nil && c.unbounded
}

// HTTPSProblem is the module's one rule for a server URL (S1): "" for an
// absolute https URL with a host, no user info and no fragment, else what
// is wrong with it, to follow the URL's name in an error.
func HTTPSProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "is not an absolute URL"
	case u.Scheme != "https":
		return "must use https"
	case u.User != nil:
		return "must not carry user info"
	case u.Fragment != "":
		return "must not have a fragment"
	}
	return ""
}
