package resourceclient

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/internal/challenge"
)

// hasDotSegment reports a "." or ".." segment (also percent-encoded),
// which a server may resolve to a path outside the resource.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return true
		}
	}
	return strings.Contains(strings.ToLower(p), "%2f")
}

// challengeScopes is the scope of the resource's Bearer or DPoP challenge.
func challengeScopes(h http.Header) []string {
	_, scopes := challenge.ResourceHints(h)
	return scopes
}

// union returns the scopes of a then those of b not in a, without repeats.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(slices.Clone(a), b...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// tokenOf asks src for a token, honouring ctx when src can.
func tokenOf(ctx context.Context, src oauth2.TokenSource) (*oauth2.Token, error) {
	if cs, ok := src.(interface {
		TokenContext(context.Context) (*oauth2.Token, error)
	}); ok {
		return cs.TokenContext(ctx)
	}
	return src.Token()
}
