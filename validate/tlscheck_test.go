package validate

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// wrapped hides an *http.Transport behind another RoundTripper, as tracing
// wrappers do, so the construction-time TLS check cannot see it.
type wrapped struct{ rt http.RoundTripper }

func (w wrapped) RoundTrip(r *http.Request) (*http.Response, error) { return w.rt.RoundTrip(r) }

func TestUnverifiedTLSBehindAWrapperIsRefused(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	insecure := &http.Client{Transport: wrapped{&http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}

	k, err := NewJWKS(JWKSConfig{URL: srv.URL + "/jwks", HTTPClient: insecure})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.download(context.Background()); !errors.Is(err, ErrKeySet) {
		t.Fatalf("JWKS over unverified TLS: err = %v, want ErrKeySet", err)
	}
	in, err := NewIntrospector(IntrospectionConfig{Endpoint: srv.URL + "/introspect", HTTPClient: insecure,
		Authenticate: func(*http.Request, url.Values) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Introspect(context.Background(), "opaque-token"); !errors.Is(err, ErrIntrospection) {
		t.Fatalf("introspection over unverified TLS: err = %v, want ErrIntrospection", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("hits %d: the test did not reach the server", hits.Load())
	}
}
