package strictnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
)

func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

// TestBodyBound (S18): NewClient's bodies are bounded at netrule.MaxResponseSize,
// exactly the bound is read whole and one byte more fails with
// ErrResponseTooLarge; the API client's bodies are not bounded.
func TestBodyBound(t *testing.T) {
	size := netrule.MaxResponseSize
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("a"), size))
	})
	read := func(c *http.Client) (int, error) {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	c, err := NewClient(Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := read(c); err != nil || n != netrule.MaxResponseSize {
		t.Fatalf("exactly the bound: %d bytes, %v", n, err)
	}
	size = netrule.MaxResponseSize + 1
	if _, err := read(c); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("one byte over: %v, want ErrResponseTooLarge", err)
	}
	api, err := netrule.NewClient(Config{RootCAs: pool}, true)
	if err != nil {
		t.Fatal(err)
	}
	size = 3 * netrule.MaxResponseSize
	if n, err := read(api); err != nil || n != size {
		t.Fatalf("API client: %d bytes, %v; its bodies are the caller's", n, err)
	}
}

// TestRefusals (S1, S2): http, an unverified certificate and a pin that
// matches no certificate are refused with *PolicyError; a bad Config field
// is named.
func TestRefusals(t *testing.T) {
	hits := 0
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { hits++ })
	ok, err := NewClient(Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ok.Get(strings.Replace(srv.URL, "https:", "http:", 1)); !errors.Is(err, ErrPolicy) {
		t.Errorf("http: %v, want ErrPolicy", err)
	}
	system, _ := NewClient(Config{}) // the system roots do not know the test CA
	if _, err := system.Get(srv.URL); err == nil {
		t.Error("a certificate from an unknown CA was accepted")
	}
	otherKey := sha256.Sum256([]byte("another public key"))
	pinned, err := NewClient(Config{RootCAs: pool, PinnedSPKI: []string{base64.StdEncoding.EncodeToString(otherKey[:])}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Get(srv.URL); !errors.Is(err, ErrPolicy) {
		t.Errorf("pin mismatch: %v, want ErrPolicy", err)
	}
	if hits != 0 {
		t.Errorf("%d requests reached the server", hits)
	}
	right, _ := NewClient(Config{RootCAs: pool, PinnedSPKI: []string{spkiPin(srv.Certificate())}})
	if resp, err := right.Get(srv.URL); err != nil {
		t.Errorf("matching pin: %v", err)
	} else {
		resp.Body.Close()
	}
	for field, cfg := range map[string]Config{
		"Timeout":    {Timeout: -1},
		"PinnedSPKI": {PinnedSPKI: []string{"AAAA"}},
		"Wrap": {Wrap: func(http.RoundTripper) http.RoundTripper {
			return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		}},
	} {
		var pe *PolicyError
		if _, err := NewClient(cfg); !errors.As(err, &pe) || pe.Field != field || !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v, want a *PolicyError naming it", field, err)
		}
	}
}

// TestOwned: validate accepts only clients made here; a copy is still
// one, a replaced transport is not.
func TestOwned(t *testing.T) {
	c, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	cp := *c
	cp.Timeout = 0
	if !owned(c) || !owned(&cp) {
		t.Fatal("a strict client (or its copy) is not owned")
	}
	if owned(http.DefaultClient) || owned(&http.Client{Transport: &http.Transport{}}) || owned(nil) {
		t.Fatal("a foreign client is owned")
	}
}

// TestLogEvent: one event per call, naming the endpoint (from the context,
// else the client's kind), without the query values.
func TestLogEvent(t *testing.T) {
	srv, pool := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {})
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	c, _ := NewClient(Config{RootCAs: pool, Logger: logger})
	req, _ := http.NewRequestWithContext(netrule.WithEndpoint(context.Background(), "token"), http.MethodGet, srv.URL+"/t?code=secret-code", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	api, _ := netrule.NewClient(Config{RootCAs: pool, Logger: logger}, true)
	if resp, err = api.Get(srv.URL + "/v1"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := buf.String()
	if !strings.Contains(out, "endpoint=token") || !strings.Contains(out, "endpoint=api") || strings.Contains(out, "secret-code") {
		t.Fatalf("log:\n%s", out)
	}
}

// spkiPin is the Config.PinnedSPKI pin of cert: base64 of the SHA-256 of
// its SubjectPublicKeyInfo.
func spkiPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
