package secret_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/oauthsafe/oauthsafe/secret"
)

// A client secret loaded from the environment prints redacted however it
// is printed; Reveal is the one way to its value.
func ExampleFromEnv() {
	os.Setenv("APP_CLIENT_SECRET", "s3cr3t-from-the-deployment") // set by the deployment in production
	s, err := secret.FromEnv("APP_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	fmt.Printf("%#v\n", s)
	j, _ := json.Marshal(struct{ ClientSecret secret.Value }{s})
	fmt.Println(string(j))
	fmt.Println(len(s.Reveal()))
	// Output:
	// Secret(redacted)
	// Secret(redacted)
	// {"ClientSecret":"Secret(redacted)"}
	// 26
}
