package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Standard are the OIDC profile claims, field for field those of
// validate.StandardClaims (which converts from it and documents them).
type Standard struct {
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
	UpdatedAt           time.Time
}

// ErrNotObject reports claims that are not a JSON object.
var ErrNotObject = errors.New("claims: not a JSON object")

// ParseStandard decodes the profile claims of a JSON object (an ID token
// payload or a UserInfo body), tolerating the common quirks:
// "email_verified" and "phone_number_verified" given as the strings "true"
// or "false", and "updated_at" given as a number or an RFC 3339 string. A
// verified flag that is absent, null or anything else reads as false. A
// claim of an unexpected type reads as its zero value; a non-object input
// fails with ErrNotObject.
func ParseStandard(data []byte) (Standard, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return Standard{}, ErrNotObject
	}
	str := func(k string) string {
		var s string
		if v, ok := raw[k]; ok && json.Unmarshal(v, &s) == nil {
			return s
		}
		return ""
	}
	return Standard{
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
	var d NumericDate
	if d.UnmarshalJSON(v) == nil && d.Valid {
		return d.Time
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
