package netrule

import (
	"context"
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
		if got := HTTPSProblem(raw); got != want {
			t.Errorf("HTTPSProblem(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	ctx := context.Background()
	if Endpoint(ctx) != "" || Endpoint(WithEndpoint(ctx, "jwks")) != "jwks" {
		t.Fatal("WithEndpoint/Endpoint")
	}
}
