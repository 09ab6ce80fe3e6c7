package secret_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

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

// A secret from a secrets manager's answer (any io.Reader): surrounding
// white space is trimmed, and an empty answer is an error matching
// ErrSource rather than an empty client secret.
func ExampleFromReader() {
	s, err := secret.FromReader(strings.NewReader("  answer-of-the-vault\n"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%v %q %x\n", s, s, s)
	_, err = secret.FromReader(strings.NewReader(" \n"))
	fmt.Println(errors.Is(err, secret.ErrSource), err)
	// Output:
	// Secret(redacted) Secret(redacted) Secret(redacted)
	// true secret: cannot load secret: empty secret
}
