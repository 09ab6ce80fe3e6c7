package validate

import (
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestLoopbackHTTPJWKS (S1): an http JWKS or introspection URL on
// loopback is accepted only with a client built with AllowLoopbackHTTP,
// and never for another host.
func TestLoopbackHTTPJWKS(t *testing.T) {
	plain, err := strictnet.NewClient(strictnet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	loop, err := strictnet.NewClient(strictnet.Config{AllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url  string
		c    bool
		want error
	}{
		{"http://127.0.0.1:8080/jwks", false, oauthsafe.ErrConfig},
		{"http://127.0.0.1:8080/jwks", true, nil},
		{"http://localhost/jwks", true, nil},
		{"http://keys.example/jwks", true, oauthsafe.ErrConfig},
	} {
		hc := plain
		if tc.c {
			hc = loop
		}
		_, err := NewJWKS(JWKSConfig{URL: tc.url, HTTPClient: hc})
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("NewJWKS(%s, loopback=%v): %v, want %v", tc.url, tc.c, err, tc.want)
		}
	}
}
