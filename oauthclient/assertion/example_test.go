package assertion_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
)

// jwtWithExp is a compact JWS-shaped token with exp (the signature is the
// authorization server's to check, not this package's).
func jwtWithExp(exp int64) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"system:serviceaccount:shop:orders","exp":%d}`, exp))) + ".c2lnbmF0dXJl"
}

// A Kubernetes workload reads its projected service-account token, which
// the kubelet rotates, with File: the file is read again when it changes,
// and an expired token is refused before it is sent. The source goes to
// oauthclient.Client.JWTBearer or oauthclient.Config.ClientAssertion,
// which parse what it returns at once and never print it; what Assertion
// returns is the token itself, so do not print or log it.
func ExampleFile() {
	dir, err := os.MkdirTemp("", "projected")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token") // in a pod: /var/run/secrets/tokens/<name>
	if err := os.WriteFile(path, []byte(jwtWithExp(4102444800)), 0o600); err != nil {
		log.Fatal(err)
	}
	src := assertion.File(path)
	_, err = src.Assertion(context.Background(), "https://login.example.com")
	fmt.Println("read:", err == nil)
	// The file now holds a token whose exp has passed.
	if err := os.WriteFile(path, []byte(jwtWithExp(1000)), 0o600); err != nil {
		log.Fatal(err)
	}
	_, err = src.Assertion(context.Background(), "https://login.example.com")
	fmt.Println("expired:", errors.Is(err, assertion.ErrExpired))
	// Output:
	// read: true
	// expired: true
}

// A workload that was handed one assertion (or asks a platform API for one
// per audience) uses Func; an expired answer is refused before it is sent.
func ExampleFunc() {
	handed := jwtWithExp(1000) // expired in 1970
	src := assertion.Func(func(ctx context.Context, audience string) (string, error) {
		return handed, nil
	})
	_, err := src.Assertion(context.Background(), "https://login.example.com")
	fmt.Println("expired:", errors.Is(err, assertion.ErrExpired))
	_, err = assertion.Func(func(context.Context, string) (string, error) { return "not a JWT", nil }).
		Assertion(context.Background(), "https://login.example.com")
	fmt.Println("unusable:", errors.Is(err, assertion.ErrSource))
	// Output:
	// expired: true
	// unusable: true
}
