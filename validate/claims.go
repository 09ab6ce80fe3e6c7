package validate

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// StandardClaims are the OIDC profile claims most applications read, from an
// ID token or a UserInfo response. Decoding tolerates the common quirks:
// "email_verified" and "phone_number_verified" given as the strings "true"
// or "false", and "updated_at" given as a number or an RFC 3339 string. A
// verified flag that is absent, null or anything else reads as false, so an
// unverified email is always reported as unverified. It is a plain value.
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

// VerifiedEmail returns the email and true only when the provider marked it
// verified; otherwise it returns "" and false.
func (c StandardClaims) VerifiedEmail() (string, bool) {
	if c.Email == "" || !c.EmailVerified {
		return "", false
	}
	return c.Email, true
}

// ParseStandardClaims decodes StandardClaims from a JSON object (ID token
// payload or UserInfo body). A claim of an unexpected type reads as its
// zero value, except a non-object input which fails with ErrMalformed. It
// is safe for concurrent use.
func ParseStandardClaims(data []byte) (StandardClaims, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return StandardClaims{}, fail(ErrMalformed, "claims are not a JSON object")
	}
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	}
	return StandardClaims{
		Subject:             str("sub"),
		Name:                str("name"),
		GivenName:           str("given_name"),
		FamilyName:          str("family_name"),
		PreferredUsername:   str("preferred_username"),
		Email:               str("email"),
		EmailVerified:       flexBool(raw["email_verified"]),
		PhoneNumber:         str("phone_number"),
		PhoneNumberVerified: flexBool(raw["phone_number_verified"]),
		Picture:             str("picture"),
		Locale:              str("locale"),
		UpdatedAt:           flexTime(raw["updated_at"]),
	}, nil
}

// flexBool reads true, "true" (any case, surrounding space ignored) as true
// and everything else as false.
func flexBool(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if bytes.Equal(v, []byte("true")) {
		return true
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return strings.EqualFold(strings.TrimSpace(s), "true")
	}
	return false
}

// flexTime reads a NumericDate or an RFC 3339 string.
func flexTime(v json.RawMessage) time.Time {
	if len(v) == 0 {
		return time.Time{}
	}
	var d numericDate
	if d.UnmarshalJSON(v) == nil && d.valid {
		return d.t
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
