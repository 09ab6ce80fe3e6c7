package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/secret"
)

// TestDemo runs the example against the embedded server and the
// introspecting API: the token request uses HTTP Basic, the first call
// succeeds, the second is refused with insufficient_scope, and neither
// output shows a token.
func TestDemo(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	demoTokenSeen = func(tok string) { mu.Lock(); seen = append(seen, tok); mu.Unlock() }
	t.Cleanup(func() { demoTokenSeen = nil })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"-demo"}, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errb)
	}
	for _, want := range []string{"/v1/contacts -> 200 OK", `/v1/admin -> refused: the API needs scope "api.write"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, &out)
		}
	}
	if want := `client "service": HTTP Basic true, secret in the body false`; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, &errb)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the API received no bearer token")
	}
	all := out.String() + errb.String()
	if strings.Contains(all, "eyJ") {
		t.Error("output contains a JWT")
	}
	for _, tok := range seen {
		if strings.Contains(all, tok) {
			t.Error("output contains the access token")
		}
	}
}

// TestSecretNeverFromFlags: without the environment variable or a file the
// example refuses to run; there is no flag that takes the secret itself.
func TestSecretNeverFromFlags(t *testing.T) {
	t.Setenv(envSecret, "")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-token-url", "https://127.0.0.1:1/token", "-client-id", "x", "-api", "https://127.0.0.1:1/a"}, &out, &errb)
	if !errors.Is(err, secret.ErrSource) {
		t.Fatalf("without a secret: %v, want secret.ErrSource", err)
	}
	if err := run(context.Background(), []string{"-client-secret", "s3cret"}, &out, &errb); err == nil {
		t.Fatal("accepted a -client-secret flag")
	}
}
