package oauthclient

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/claims"
	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file checks RFC 8707 resource indicators: the values sent, and the
// audience of a JWT access token granted for them.

// checkResource: RFC 8707 §2: an absolute URI without a fragment.
func checkResource(r string) error {
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") || len(r) > 2048 {
		return policyf("resource indicator %q must be an absolute URI without a fragment", safetext.Clean(r, 100))
	}
	return nil
}

// checkAudience checks the granted audience where the client can see it:
// an access token that is a JWT with typ at+jwt (RFC 9068) must name one
// of the requested resources in aud. The token is not verified here (the
// resource server does that); an unverified claim can only make the client
// refuse a token, never accept one. Opaque tokens and other JWTs pass.
func checkAudience(at string, resources []string) error {
	if len(resources) == 0 || strings.Count(at, ".") != 2 {
		return nil
	}
	parts := strings.SplitN(at, ".", 3)
	var hdr struct {
		Typ string `json:"typ"`
	}
	var claims struct {
		Aud claims.Audience `json:"aud"`
	}
	if decodeSegment(parts[0], &hdr) != nil || !strings.EqualFold(hdr.Typ, "at+jwt") && !strings.EqualFold(hdr.Typ, "application/at+jwt") {
		return nil
	}
	if decodeSegment(parts[1], &claims) != nil {
		return policyf("access token claims are not readable")
	}
	for _, a := range claims.Aud {
		for _, r := range resources {
			if a == r {
				return nil
			}
		}
	}
	return policyf("access token audience names none of the requested resources")
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || len(b) > netrule.MaxResponseSize {
		return fmt.Errorf("%w: a JWT segment is not base64url JSON", ErrMalformedResponse)
	}
	return json.Unmarshal(b, v)
}
