package strictnet_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// NewClient refuses a plain-http URL before any connection is made; a
// Config that would weaken TLS cannot be written, and a bad pin is refused
// with the field it is in.
func ExampleNewClient() {
	c, err := strictnet.NewClient(strictnet.Config{}) // system roots, TLS 1.2+, 30 s, 1 MiB bodies
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Get("http://login.example.com/.well-known/openid-configuration")
	fmt.Println("http refused:", errors.Is(err, strictnet.ErrPolicy))

	_, err = strictnet.NewClient(strictnet.Config{PinnedSPKI: []string{"not-a-pin"}})
	var pe *strictnet.PolicyError
	fmt.Println("bad pin refused:", errors.As(err, &pe), pe.Field)
	// Output:
	// http refused: true
	// bad pin refused: true PinnedSPKI
}
