package validate

import (
	"errors"
	"strings"
	"testing"
)

// TestIssuerMismatchHint: an iss that differs from the configured issuer
// only by a trailing slash (either way) is errIssuer with a hint that
// repeats no token value; any other mismatch has no hint.
func TestIssuerMismatchHint(t *testing.T) {
	hint := func(err error) string {
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			return h.Hint()
		}
		return ""
	}
	for _, tc := range []struct{ iss, want string }{
		{"https://id.example/", "https://id.example"},
		{"https://id.example", "https://id.example/"},
	} {
		iss := tc.iss
		err := checkIssuer(&commonClaims{Iss: &iss}, tc.want)
		if !errors.Is(err, errIssuer) {
			t.Fatalf("%q vs %q: %v", tc.iss, tc.want, err)
		}
		if h := hint(err); !strings.Contains(h, "trailing slash") || strings.Contains(h, "id.example") {
			t.Fatalf("%q vs %q: hint %q", tc.iss, tc.want, h)
		}
	}
	other := "https://evil.example"
	if err := checkIssuer(&commonClaims{Iss: &other}, "https://id.example"); !errors.Is(err, errIssuer) || hint(err) != "" {
		t.Fatalf("another issuer: %v, hint %q", err, hint(err))
	}
}
