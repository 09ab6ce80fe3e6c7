// Package claims holds the JWT claim types the module's packages share.
package claims

import "encoding/json"

// Audience is the "aud" claim: one string or an array of strings (RFC 7519
// §4.1.3). Any other JSON is an error.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}
