// Package registration is the stored form of a client that resourceclient
// registered dynamically (RFC 7591) at an issuer: written to the caller's
// tokenstore.Store under storekey.Registration(issuer, redirectURL), read
// back by resourceclient and by the CLI's resource profiles.
package registration

import (
	"encoding/json"
	"errors"
)

// Record is one stored registration. It is written to the Store as it is
// (the Store seals it, as it seals refresh tokens) and names its issuer,
// checked when it is read.
type Record struct {
	V            int    `json:"v"`
	Issuer       string `json:"issuer"`
	RedirectURL  string `json:"redirect_uri"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	AuthMethod   string `json:"token_endpoint_auth_method"`
}

// ErrUnreadable is a stored registration that does not parse, is of
// another version, has no client id or names another issuer than the one
// it was read for: it is never used there.
var ErrUnreadable = errors.New("registration: the stored registration is unreadable or names another issuer")

// Parse reads a stored registration for issuer.
func Parse(b []byte, issuer string) (Record, error) {
	var r Record
	if json.Unmarshal(b, &r) != nil || r.V != 1 || r.Issuer != issuer || r.ClientID == "" {
		return Record{}, ErrUnreadable
	}
	return r, nil
}
