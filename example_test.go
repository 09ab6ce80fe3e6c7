package oauthsafe_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// Every package reports a configuration mistake with an error matching
// oauthsafe.ErrConfig, which says what to fix.
func ExampleErrConfig() {
	err := tokenstore.Logout(context.Background(), tokenstore.LogoutConfig{}) // no Store, no Key
	fmt.Println(errors.Is(err, oauthsafe.ErrConfig))
	fmt.Println(err)
	// Output:
	// true
	// tokenstore: Logout needs a Store and a Key (invalid configuration)
}
