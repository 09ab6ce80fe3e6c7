package oauthclient

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestZeroValuesDoNotPanic: every method of a zero value of an exported
// type answers (an empty value or an error) rather than panicking.
func TestZeroValuesDoNotPanic(t *testing.T) {
	calls := map[string]func(){
		"Tokens":                         func() { zeroTokens(&Tokens{}) },
		"nil Tokens":                     func() { zeroTokens(nil) },
		"Source":                         func() { zeroService(t, &TokenSource{}) },
		"nil Source":                     func() { zeroService(t, nil) },
		"zero Client ServiceTokenSource": func() { zeroService(t, (&Client{}).serviceSource(nil, nil)) },
		"DeviceAuthorization": func() {
			_ = fmt.Sprintf("%v %+v %#v", DeviceAuthorization{}, DeviceAuthorization{}, &DeviceAuthorization{})
		},
		"Pending":               func() { p := &Pending{}; _ = p.State(); _ = fmt.Sprint(p) },
		"AuthError":             func() { _ = (&AuthError{}).Error() },
		"strictnet.PolicyError": func() { _ = (&strictnet.PolicyError{}).Error() },
		"AuthError malformed":   func() { _ = (&AuthError{Problem: "p"}).Error() },
		"Secret":                func() { var s secret.Value; _ = s.Reveal(); _ = s.IsZero(); _ = fmt.Sprint(s) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panic: %v", r)
				}
			}()
			call()
		})
	}
}

func zeroTokens(tk *Tokens) {
	_ = tk.Scopes()
	_ = tk.IDToken()
	_ = tk.RawIDToken()
	_ = tk.Subject()
	_ = tk.OAuth2Token()
	if tk != nil {
		_ = fmt.Sprintf("%v %+v %#v %q", *tk, tk, tk, tk)
		slog.New(slog.DiscardHandler).Info("x", "t", tk)
	}
}

func zeroService(t *testing.T, s *TokenSource) {
	if _, err := s.Token(); err == nil {
		t.Error("a zero source handed out a token")
	}
	if _, err := s.TokenContext(context.Background()); err == nil {
		t.Error("a zero source handed out a token")
	}
	s.Invalidate(nil)
	_ = s.Scopes()
}
