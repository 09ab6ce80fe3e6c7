package validate_test

import (
	"fmt"

	"github.com/oauthsafe/oauthsafe/validate"
)

// ExampleParseStandardClaims shows the email_verified quirk: the string
// "true" counts as verified, anything but true or "true" does not.
func ExampleParseStandardClaims() {
	for _, body := range []string{
		`{"sub":"1","email":"a@example.test","email_verified":"true"}`,
		`{"sub":"2","email":"b@example.test","email_verified":"no"}`,
	} {
		c, err := validate.ParseStandardClaims([]byte(body))
		if err != nil {
			fmt.Println(err)
			continue
		}
		email, ok := c.VerifiedEmail()
		fmt.Printf("%s: %q verified=%v\n", c.Subject, email, ok)
	}
	// Output:
	// 1: "a@example.test" verified=true
	// 2: "" verified=false
}
