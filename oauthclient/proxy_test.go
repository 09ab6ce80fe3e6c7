package oauthclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// connectProxy is a plain-http forward proxy that tunnels CONNECT requests
// byte for byte, as a corporate proxy does; it counts the tunnels.
type connectProxy struct {
	*httptest.Server
	tunnels atomic.Int64
}

func newConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
		if err != nil {
			http.Error(w, "dial failed", http.StatusBadGateway)
			return
		}
		p.tunnels.Add(1)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		buf.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		buf.Flush()
		go func() { io.Copy(up, buf); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *connectProxy) proxy(*http.Request) (*url.URL, error) { return url.Parse(p.URL) }

// TestProxyTunnelKeepsTLSChecks (S2; strictnet.Config.Proxy: "TLS to the server
// runs through the proxy's tunnel and is verified as without one"): for
// every kind of client, through a CONNECT proxy, a server outside
// RootCAs or failing the SPKI pins gets no request, while the control
// (right roots and pin) is reached through the tunnel.
func TestProxyTunnelKeepsTLSChecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other := otherCAPool(t)
	cases := []struct {
		name    string
		hc      func(srv *countingServer, p *connectProxy) strictnet.Config
		refused bool
	}{
		{"unknown CA", func(_ *countingServer, p *connectProxy) strictnet.Config {
			return strictnet.Config{RootCAs: other, Proxy: p.proxy}
		}, true},
		{"pin mismatch", func(s *countingServer, p *connectProxy) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}, Proxy: p.proxy}
		}, true},
		{"control", func(s *countingServer, p *connectProxy) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{spkiPin(s.Certificate())}, Proxy: p.proxy}
		}, false},
	}
	for _, c := range cases {
		for _, k := range clientKinds {
			t.Run(c.name+"/"+k.name, func(t *testing.T) {
				srv, p := newCountingServer(t), newConnectProxy(t)
				cerr, err := k.call(ctx, srv, c.hc(srv, p))
				if cerr != nil {
					t.Fatalf("refused at construction: %v (call %v)", cerr, err)
				}
				if p.tunnels.Load() == 0 {
					t.Fatalf("no tunnel went through the proxy (err %v): the case proves nothing", err)
				}
				if !c.refused {
					if srv.hits.Load() == 0 {
						t.Fatalf("the verified server was not reached through the proxy: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("the call succeeded")
				}
				if n := srv.reached(); n != 0 {
					t.Fatalf("%d request connections or requests reached the server through the proxy (err %v)", n, err)
				}
				if c.name == "pin mismatch" && !errors.Is(err, strictnet.ErrPolicy) {
					t.Fatalf("pin mismatch through the proxy: %v, want ErrPolicy", err)
				}
			})
		}
	}
}
