package netrule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestHTTPSProblem(t *testing.T) {
	for raw, want := range map[string]string{
		"https://as.example/x":      "",
		"https://as.example:8443":   "",
		"http://as.example":         "must use https",
		"/relative":                 "is not an absolute URL",
		"https://user@as.example":   "must not carry user info",
		"https://as.example/#frag":  "must not have a fragment",
		"https://as.example/%zz":    "is not an absolute URL",
		"javascript:alert(1)":       "is not an absolute URL",
		"HTTPS://AS.EXAMPLE/upper":  "",
		"https:///no-host":          "is not an absolute URL",
		"ftp://as.example/resource": "must use https",
	} {
		if got := HTTPSProblem(raw, false); got != want {
			t.Errorf("HTTPSProblem(%q) = %q, want %q", raw, got, want)
		}
	}
	const notLoop = "must use https (or http on localhost, 127.0.0.0/8 or ::1)"
	for raw, want := range map[string]string{
		"http://localhost:3000/mcp":  "",
		"http://LOCALHOST/":          "",
		"http://127.0.0.2:80":        "",
		"http://[::1]:8080/x":        "",
		"http://localhost.evil.test": notLoop,
		"http://128.0.0.1":           notLoop,
		"http://[::2]":               notLoop,
		"http://0.0.0.0":             notLoop,
		"ftp://localhost":            notLoop,
		"http://u@localhost":         "must not carry user info",
		"https://as.example":         "",
	} {
		if got := HTTPSProblem(raw, true); got != want {
			t.Errorf("HTTPSProblem(%q, loopback) = %q, want %q", raw, got, want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	ctx := context.Background()
	if Endpoint(ctx) != "" || Endpoint(WithEndpoint(ctx, "jwks")) != "jwks" {
		t.Fatal("WithEndpoint/Endpoint")
	}
}

// TestReadBody (S18 at the point of use): exactly MaxResponseSize bytes are
// read whole, one more is ErrResponseTooLarge, never a cut body.
func TestReadBody(t *testing.T) {
	b, err := ReadBody(strings.NewReader(strings.Repeat("a", MaxResponseSize)))
	if err != nil || len(b) != MaxResponseSize {
		t.Fatalf("exactly the bound: %d bytes, %v", len(b), err)
	}
	if b, err := ReadBody(strings.NewReader(strings.Repeat("a", MaxResponseSize+1))); !errors.Is(err, ErrResponseTooLarge) || b != nil {
		t.Fatalf("one byte over: %d bytes, %v", len(b), err)
	}
}

func TestStripURL(t *testing.T) {
	cause := errors.New("connection refused")
	err := &url.Error{Op: "Post", URL: "https://as.example/token?code=secret", Err: cause}
	if got := StripURL(fmt.Errorf("wrapped: %w", err)); got != cause {
		t.Fatalf("StripURL = %v", got)
	}
	if got := StripURL(cause); got != cause {
		t.Fatalf("StripURL of a plain error = %v", got)
	}
}
