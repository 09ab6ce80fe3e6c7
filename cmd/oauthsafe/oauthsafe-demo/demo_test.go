package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoPassesAndPrintsNoToken(t *testing.T) {
	var out, errb bytes.Buffer
	code := runDemo(context.Background(), &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, nil)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"blocked  callback with a forged state", "blocked  callback with another issuer's iss", "nonce matched",
		"blocked  unsigned ID token (alg:none)", "== Web application", "answered 303 See Other", "== Desktop login",
		"blocked  API redirect to another host", "rotated refresh token was stored before", "All checks passed",
		"blocked  stolen DPoP token sent as a Bearer token", "blocked  stolen token replayed with its captured proof",
		"refreshed with a proof of the key stored in the record", "blocked  stolen refresh token used without the key",
		"the browser URL carries only client_id and request_uri", "blocked  an authorization request in the URL",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(s, "FAILED") {
		t.Errorf("demo reported a failure:\n%s", s)
	}
	// Tokens issued by the embedded server are JWTs or opaque strings; neither
	// may appear. JWTs start with "eyJ".
	if strings.Contains(s, "eyJ") || strings.Contains(errb.String(), "eyJ") {
		t.Error("demo printed a JWT")
	}
}

func TestUsageExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := runDemo(context.Background(), e, []string{"--nope"}); code != exitUsage {
		t.Fatalf("unknown flag: exit %d", code)
	}
	if code := runDemo(context.Background(), e, []string{"--help"}); code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	if out.Len() != 0 {
		t.Fatal("usage went to stdout")
	}
}
