package oauthclient

import (
	"errors"
	"strings"
	"testing"
)

// TestIssuerMismatchHints: discovery naming the configured issuer but for
// a trailing slash suggests the exact value (cleaned server text); a
// callback's iss never suggests a value to configure, whatever it holds.
func TestIssuerMismatchHints(t *testing.T) {
	md := newIssuerMismatch("metadata", "https://id.example/", "https://id.example")
	if h := md.Hint(); !strings.Contains(h, `exactly "https://id.example/"`) {
		t.Fatalf("metadata, trailing slash: %q", h)
	}
	if h := newIssuerMismatch("metadata", "https://other.example", "https://id.example").Hint(); strings.Contains(h, "other.example") {
		t.Fatalf("metadata, another issuer: the hint suggests the server's value: %q", h)
	}
	if h := newIssuerMismatch("callback", "https://id.example/", "https://id.example").Hint(); strings.Contains(h, "exactly") || !strings.Contains(h, "redirect URI") {
		t.Fatalf("callback: %q", h)
	}
	if h := newIssuerMismatch("metadata", "https://id.example/\x1b[31m", "https://id.example").Error(); strings.ContainsRune(h, 0x1b) {
		t.Fatalf("server text reached the message raw: %q", h)
	}
	if !errors.Is(error(md), ErrIssuerMismatch) {
		t.Fatal("not ErrIssuerMismatch")
	}
}
