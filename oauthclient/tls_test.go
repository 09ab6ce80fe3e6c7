package oauthclient

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

func discoveryServer(t *testing.T, tlsCfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{}`))
	}))
	if tlsCfg != nil {
		srv.TLS = tlsCfg
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLSRefusals(t *testing.T) {
	trusted := newHostileAS(t)
	ctx := context.Background()

	t.Run("untrusted certificate", func(t *testing.T) {
		cfg := trusted.config()
		cfg.HTTP.RootCAs = nil // system roots do not know the test CA
		_, err := New(ctx, cfg)
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v, want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("wrong host name", func(t *testing.T) {
		cfg := trusted.config()
		// The test certificate names 127.0.0.1 and example.com, not localhost.
		cfg.Issuer = strings.Replace(trusted.srv.URL, "127.0.0.1", "localhost", 1)
		_, err := New(ctx, cfg)
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want x509.HostnameError", err)
		}
	})
	t.Run("TLS 1.1 only server", func(t *testing.T) {
		old := discoveryServer(t, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		cfg := trusted.config()
		cfg.Issuer = old.URL
		cfg.HTTP.RootCAs.AddCert(old.Certificate())
		_, err := New(ctx, cfg)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "version") {
			t.Fatalf("err = %v, want a protocol version error", err)
		}
	})
	t.Run("http issuer", func(t *testing.T) {
		cfg := trusted.config()
		cfg.Issuer = strings.Replace(trusted.srv.URL, "https://", "http://", 1)
		if _, err := New(ctx, cfg); !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("err = %v, want ErrPolicy", err)
		}
	})
	t.Run("http endpoint in static metadata", func(t *testing.T) {
		cfg := trusted.config()
		cfg.Metadata = &Metadata{Issuer: cfg.Issuer, AuthorizationEndpoint: cfg.Issuer + "/authorize", TokenEndpoint: "http://127.0.0.1:1/token"}
		if _, err := New(ctx, cfg); !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("err = %v, want ErrPolicy", err)
		}
	})
	t.Run("strict transport refuses http even when called directly", func(t *testing.T) {
		hc, err := strictnet.NewClient(strictnet.Config{})
		if err != nil {
			t.Fatal(err)
		}
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("plain http server was reached")
		}))
		defer plain.Close()
		if _, err := hc.Get(plain.URL); !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("err = %v, want ErrPolicy", err)
		}
	})
}

func TestSPKIPins(t *testing.T) {
	h := newHostileAS(t)
	cfg := h.config()
	cfg.HTTP.PinnedSPKI = []string{spkiPin(h.srv.Certificate())}
	if _, err := New(context.Background(), cfg); err != nil {
		t.Fatalf("matching pin: %v", err)
	}
	// httptest servers share one key, so pin the digest of something else.
	cfg.HTTP.PinnedSPKI = []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
	_, err := New(context.Background(), cfg)
	if !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("err = %v, want a pin refusal", err)
	}
	cfg.HTTP.PinnedSPKI = []string{"not base64!"}
	if _, err := New(context.Background(), cfg); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("err = %v, want ErrPolicy for a malformed pin", err)
	}
}

func TestRedirectURLPolicy(t *testing.T) {
	good := []string{"https://app.example/cb", "http://127.0.0.1:8080/callback", "http://[::1]/callback", "http://127.0.0.1/callback"}
	bad := []string{"http://localhost/callback", "http://app.example/cb", "https://app.example/cb#frag", "custom:/cb", "//app.example/cb", "https://u:p@app.example/cb", "javascript:alert(1)"}
	for _, u := range good {
		if err := checkRedirectURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range bad {
		if err := checkRedirectURL(u); !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("%s accepted (err %v)", u, err)
		}
	}
	h := newHostileAS(t)
	cfg := h.config()
	cfg.RedirectURL = "http://localhost:8080/callback"
	if _, err := New(context.Background(), cfg); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("New with localhost redirect: %v", err)
	}
	c := h.client(t)
	if _, _, err := c.Start(context.Background(), StartOptions{RedirectURL: "http://evil.example/cb"}); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("Start override: %v", err)
	}
}

func TestStrictClientBoundsEveryBody(t *testing.T) {
	big := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, netrule.MaxResponseSize+1))
	}))
	defer big.Close()
	exact := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, netrule.MaxResponseSize))
	}))
	defer exact.Close()
	pool := x509.NewCertPool()
	pool.AddCert(big.Certificate())
	hc, err := strictnet.NewClient(strictnet.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	// Callers that read the body themselves (as validate's JWKS cache does)
	// are bounded by the transport, not only by netrule.ReadBody.
	resp, err := hc.Get(big.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, strictnet.ErrResponseTooLarge) {
		t.Fatalf("reading %d bytes: err = %v, want strictnet.ErrResponseTooLarge", netrule.MaxResponseSize+1, err)
	}
	resp, err = hc.Get(exact.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != netrule.MaxResponseSize {
		t.Fatalf("exactly netrule.MaxResponseSize: %d bytes, %v", len(b), err)
	}
}

// spkiPin is the strictnet.Config.PinnedSPKI pin of cert: base64 of the
// SHA-256 of its SubjectPublicKeyInfo.
func spkiPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
