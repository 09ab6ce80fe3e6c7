package strictnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestLoopbackHTTPOnlyWhenAllowed (S1): plain http is refused by default;
// with AllowLoopbackHTTP it reaches localhost, 127.0.0.0/8 and ::1 only,
// a name that resolves to any address that is not loopback is refused
// before a connection is made, an https URL is still verified, and the
// client logs one warning when it is built.
func TestLoopbackHTTPOnlyWhenAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	get := func(c *http.Client, u string) (string, error) {
		resp, err := c.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// Off by default: refused before any connection.
	def, err := NewClient(Config{DialContext: dial})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{srv.URL, "http://localhost:" + port} {
		if _, err := get(def, u); !errors.Is(err, ErrPolicy) {
			t.Fatalf("default client, %s: %v, want ErrPolicy", u, err)
		}
	}
	if len(dialed) != 0 {
		t.Fatalf("default client dialed %v", dialed)
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := NewClient(Config{DialContext: dial, AllowLoopbackHTTP: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "AllowLoopbackHTTP"); n != 1 {
		t.Fatalf("building the client logged %d warnings, want 1: %s", n, logs.String())
	}
	for _, u := range []string{srv.URL, "http://localhost:" + port, "http://127.0.0.1:" + port + "/x"} {
		if body, err := get(c, u); err != nil || body != "ok" {
			t.Fatalf("%s with AllowLoopbackHTTP: %q, %v", u, body, err)
		}
	}
	if n := strings.Count(logs.String(), "AllowLoopbackHTTP"); n != 1 {
		t.Fatalf("calls logged more warnings: %s", logs.String())
	}

	// Hosts that are not loopback, even when they look close.
	dialed = nil
	for _, u := range []string{"http://example.com:" + port, "http://localhost.example:" + port, "http://10.0.0.1:" + port, "http://[::2]:" + port} {
		if _, err := get(c, u); !errors.Is(err, ErrPolicy) {
			t.Fatalf("%s: %v, want ErrPolicy", u, err)
		}
	}

	// localhost resolving (also) to an address that is not loopback (a
	// new client: no connection kept from the calls above).
	c, err = NewClient(Config{DialContext: dial, AllowLoopbackHTTP: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	orig := lookupIPAddr
	t.Cleanup(func() { lookupIPAddr = orig })
	for _, addrs := range [][]net.IPAddr{
		{{IP: net.ParseIP("192.0.2.10")}},
		{{IP: net.ParseIP("127.0.0.1")}, {IP: net.ParseIP("192.0.2.10")}},
		{{IP: net.ParseIP("::ffff:192.0.2.10")}},
	} {
		lookupIPAddr = func(context.Context, string) ([]net.IPAddr, error) { return addrs, nil }
		if _, err := get(c, "http://localhost:"+port); !errors.Is(err, ErrPolicy) {
			t.Fatalf("localhost resolving to %v: %v, want ErrPolicy", addrs, err)
		}
	}
	lookupIPAddr = orig
	if len(dialed) != 0 {
		t.Fatalf("refused hosts were dialed: %v", dialed)
	}

	// https is never downgraded: still verified (the test server's
	// certificate is not trusted here).
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(tlsSrv.Close)
	if _, err := get(c, tlsSrv.URL); err == nil || errors.Is(err, ErrPolicy) {
		t.Fatalf("https to an untrusted certificate with AllowLoopbackHTTP: %v, want a TLS error", err)
	}
}
