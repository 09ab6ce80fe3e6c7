// Package testkit holds test data shared by the library's tests and the e2e
// module's tests. It is not API.
package testkit

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// BadReturnTo are open-redirect attempts; each must be refused.
var BadReturnTo = []string{
	"//evil.test",
	"//evil.test/path",
	"/\\evil.test",
	"\\\\evil.test",
	"\\/evil.test",
	"%09//evil.test",
	"\t//evil.test",
	" //evil.test",
	"https:evil.test",
	"https://evil.test/",
	"http:/evil.test",
	"HTTPS://evil.test",
	"javascript:alert(1)",
	"data:text/html,x",
	"evil.test",
	"./x",
	"/%2F%2Fevil.test",
	"/%2f/evil.test",
	"/%5Cevil.test",
	"/%5cevil.test",
	"/%252F%252Fevil.test",
	"/%25252F%25252Fevil.test",
	"/%09/evil.test",
	"/%0d%0aSet-Cookie:x=y",
	"/x\r\nSet-Cookie: x=y",
	"/\x00",
	"/a b",
	"/x\\y",
	"/..//evil.test",
	"/a/../..//evil.test",
	"/./x",
	"/%2e%2e//evil.test",
	"/é",
	"/%zz",
	"/" + strings.Repeat("a", 1024), // longer than the 1024 bytes a return-to path may have
}

// APIServer is an httptest TLS API that records what it received: the
// Authorization and Cache-Control headers and the body of every request.
// Lock Mu to read the recorded slices.
type APIServer struct {
	*httptest.Server
	Hits   atomic.Int32
	Mu     sync.Mutex
	Auths  []string
	Caches [][]string
	Bodies []string
}

// NewAPIServer starts an APIServer that records each request, then hands
// it to h. It is closed when the test ends.
func NewAPIServer(t testing.TB, h func(w http.ResponseWriter, r *http.Request)) *APIServer {
	t.Helper()
	s := &APIServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		s.Mu.Lock()
		s.Auths = append(s.Auths, r.Header.Get("Authorization"))
		s.Caches = append(s.Caches, r.Header.Values("Cache-Control"))
		s.Bodies = append(s.Bodies, string(b))
		s.Mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Pool returns a certificate pool that trusts the server.
func (s *APIServer) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

// Client returns an oauthclient API client for tokens from src that may
// call only s, trusting s's certificate.
func (s *APIServer) Client(t testing.TB, src oauth2.TokenSource) *http.Client {
	t.Helper()
	c, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{s.URL},
		HTTP:           strictnet.Config{RootCAs: s.Pool(), Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// OK answers "ok".
func OK(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// Clock is a clock that a test moves, for a Config's Now; safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start until moved.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
