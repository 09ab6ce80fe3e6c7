package strictnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConnErrorHints: each cause ConnError's doc names gets a
// *ConnError whose Hint names the address and what to do, with the cause
// still reachable; other failures (a policy refusal) get none. Servers
// here are hostile (a misnamed or expired certificate), so httptest.
func TestConnErrorHints(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {}
	srv, pool := tlsServer(t, ok)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	// An expired certificate, trusted.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	expired := httptest.NewUnstartedServer(http.HandlerFunc(ok))
	expired.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	expired.StartTLS()
	defer expired.Close()
	expiredPool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	expiredPool.AddCert(cert)

	cases := []struct {
		name  string
		roots *x509.CertPool
		url   string
		cause func(error) bool
		hint  string
	}{
		{"refused", nil, "https://" + closed, func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) },
			"nothing accepts connections at " + closed},
		{"unknown authority", nil, srv.URL, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}, "RootsFromFile"},
		{"host name", pool, "https://localhost:" + port, func(err error) bool {
			var hn x509.HostnameError
			return errors.As(err, &hn)
		}, "does not name that host"},
		{"expired", expiredPool, expired.URL, func(err error) bool {
			var ci x509.CertificateInvalidError
			return errors.As(err, &ci)
		}, "not valid now"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(Config{RootCAs: tc.roots})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Get(tc.url)
			var ce *ConnError
			if !errors.As(err, &ce) || !tc.cause(err) {
				t.Fatalf("%v: no *ConnError, or the cause is lost", err)
			}
			if h := Hint(err); !strings.Contains(h, tc.hint) || h != ce.hint {
				t.Fatalf("hint %q lacks %q", h, tc.hint)
			}
		})
	}
	c, _ := NewClient(Config{})
	if _, err := c.Get("http://127.0.0.1:1/"); Hint(err) != "" || !errors.Is(err, ErrPolicy) {
		t.Fatalf("a policy refusal got a connection hint: %v", err)
	}
	if Hint(nil) != "" || Hint(errors.New("x")) != "" {
		t.Fatal("Hint of an error without one")
	}
}
