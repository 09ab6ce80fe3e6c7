package validate

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe"
)

// wrapped hides an *http.Transport behind another RoundTripper, as tracing
// wrappers do, so the construction-time TLS check cannot see it.
type wrapped struct{ rt http.RoundTripper }

func (w wrapped) RoundTrip(r *http.Request) (*http.Response, error) { return w.rt.RoundTrip(r) }

func TestForeignClientIsRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	insecure := &http.Client{Transport: wrapped{&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	// A client whose transport oauthsafe does not own is refused when the
	// verifier is built: no call is ever made with it.
	if _, err := NewJWKS(JWKSConfig{URL: srv.URL + "/jwks", HTTPClient: insecure}); !errors.Is(err, oauthsafe.ErrConfig) ||
		!strings.Contains(err.Error(), "JWKSConfig.HTTPClient") {
		t.Fatalf("JWKS with a foreign client: err = %v, want oauthsafe.ErrConfig naming the field", err)
	}
	if _, err := NewIntrospector(IntrospectionConfig{Endpoint: srv.URL + "/introspect", HTTPClient: insecure,
		Authenticate: func(*http.Request, url.Values) error { return nil }}); !errors.Is(err, oauthsafe.ErrConfig) ||
		!strings.Contains(err.Error(), "IntrospectionConfig.HTTPClient") {
		t.Fatalf("introspection with a foreign client: err = %v, want oauthsafe.ErrConfig naming the field", err)
	}
	// The default client verifies: the test server's CA is unknown to it.
	k, err := newKeySet(JWKSConfig{URL: srv.URL + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.download(context.Background()); !errors.Is(err, errKeySet) {
		t.Fatalf("JWKS from an unknown CA: err = %v, want errKeySet", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("hits %d: a request reached a server that was not verified", hits.Load())
	}
}
