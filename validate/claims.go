package validate

import (
	"time"

	"github.com/oauthsafe/oauthsafe/internal/claims"
)

// StandardClaims are the OIDC profile claims most applications read, from an
// ID token (an [IDToken] embeds them) or a UserInfo response. Decoding
// tolerates the common quirks: "email_verified" and "phone_number_verified"
// given as the strings "true" or "false", and "updated_at" given as a number
// or an RFC 3339 string. A verified flag that is absent, null or anything
// else reads as false, so an unverified email is always reported as
// unverified: an email is verified when EmailVerified is true and Email is
// not empty. A claim of an unexpected type reads as its zero value. It is
// a plain value.
type StandardClaims struct {
	Subject             string
	Name                string
	GivenName           string
	FamilyName          string
	PreferredUsername   string
	Email               string
	EmailVerified       bool
	PhoneNumber         string
	PhoneNumberVerified bool
	Picture             string
	Locale              string
	UpdatedAt           time.Time // zero when absent or unparsable
}

// The one decoder lives in internal/claims (oauthclient's UserInfo uses it
// too); this conversion fails to compile if the two field lists part.
var _ = StandardClaims(claims.Standard{})
