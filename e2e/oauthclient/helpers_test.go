package oauthclient_test

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"golang.org/x/oauth2"
)

// apiServer is an httptest TLS API that records what it received.
type apiServer struct {
	*httptest.Server
	hits   atomic.Int32
	mu     sync.Mutex
	auths  []string
	caches [][]string
	bodies []string
}

func newAPIServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.caches = append(s.caches, r.Header.Values("Cache-Control"))
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

func apiClient(t *testing.T, src oauth2.TokenSource, s *apiServer) *http.Client {
	t.Helper()
	c, err := oauthclient.NewAPIClient(src, oauthclient.APIConfig{
		AllowedOrigins: []string{s.URL},
		HTTP:           oauthclient.HTTPConfig{RootCAs: s.pool(), Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
