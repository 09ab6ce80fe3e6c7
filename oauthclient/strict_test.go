package oauthclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// countingServer is a TLS server that counts what reaches it: connections
// whose first request byte was read (http.StateActive) and requests.
type countingServer struct {
	*httptest.Server
	active atomic.Int64
	hits   atomic.Int64
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"error":"invalid_request"}`))
	}))
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateActive {
			cs.active.Add(1)
		}
	}
	cs.Config.ErrorLog = nil
	cs.StartTLS()
	t.Cleanup(cs.Close)
	return cs
}

func (cs *countingServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(cs.Certificate())
	return p
}

func (cs *countingServer) reached() int64 { return cs.active.Load() + cs.hits.Load() }

// clientKind is one kind of client the SDK builds, driven once.
type clientKind struct {
	name string
	call func(ctx context.Context, srv *countingServer, hc strictnet.Config) (constructErr, callErr error)
}

func staticConfig(srv *countingServer, hc strictnet.Config) Config {
	u := srv.URL
	return Config{
		Issuer: u, ClientID: "client", ClientSecret: mustSecret("client-secret-value"),
		HTTP: hc,
		Metadata: &Metadata{
			Issuer: u, TokenEndpoint: u + "/token", JWKSURI: u + "/jwks", UserinfoEndpoint: u + "/userinfo",
			RevocationEndpoint: u + "/revoke", IntrospectionEndpoint: u + "/introspect",
			DeviceAuthorizationEndpoint: u + "/device",
		},
	}
}

// withClient builds a Client over static metadata and runs call with it.
func withClient(call func(ctx context.Context, c *Client) error) func(context.Context, *countingServer, strictnet.Config) (error, error) {
	return func(ctx context.Context, srv *countingServer, hc strictnet.Config) (error, error) {
		c, err := New(ctx, staticConfig(srv, hc))
		if err != nil {
			return err, nil
		}
		return nil, call(ctx, c)
	}
}

func fakeJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc([]byte(`{"sub":"x"}`)) + "." + enc([]byte("sig"))
}

var clientKinds = []clientKind{
	{"discovery", func(ctx context.Context, srv *countingServer, hc strictnet.Config) (error, error) {
		cfg := staticConfig(srv, hc)
		cfg.Metadata = nil
		_, err := New(ctx, cfg)
		var pe *strictnet.PolicyError
		if errors.As(err, &pe) && pe.Field != "" {
			return err, nil
		}
		return nil, err
	}},
	{"token", withClient(func(ctx context.Context, c *Client) error {
		_, err := c.serviceSource(nil, nil).TokenContext(ctx)
		return err
	})},
	{"jwks", withClient(func(ctx context.Context, c *Client) error {
		_, err := c.keys.VerifySignature(ctx, fakeJWT())
		return err
	})},
	{"introspection", withClient(func(ctx context.Context, c *Client) error {
		in, err := c.Introspector(validate.IntrospectionConfig{})
		if err != nil {
			return err
		}
		_, err = in.Verify(ctx, "opaque-access-token")
		return err
	})},
	{"userinfo", withClient(func(ctx context.Context, c *Client) error {
		_, err := c.UserInfo(ctx, &Tokens{tok: &oauth2.Token{AccessToken: "access-token-value", TokenType: "Bearer"}, idToken: &validate.IDToken{StandardClaims: validate.StandardClaims{Subject: "alice"}}})
		return err
	})},
	{"revocation", withClient(func(ctx context.Context, c *Client) error {
		return c.Revoke(ctx, "refresh-token-value", "refresh_token")
	})},
	{"device", withClient(func(ctx context.Context, c *Client) error {
		_, err := c.DeviceAuth(ctx)
		return err
	})},
	{"api", func(ctx context.Context, srv *countingServer, hc strictnet.Config) (error, error) {
		src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "access-token-value", TokenType: "Bearer"})
		api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{srv.URL}, HTTP: hc})
		if err != nil {
			return err, nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/resource", nil)
		resp, err := api.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return nil, err
	}},
}

// passThrough is an otelhttp-style wrapper: it records each call and hands
// the request to the RoundTripper it was given.
type passThrough struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []string
	errs  []error
}

func (p *passThrough) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	p.mu.Lock()
	p.calls = append(p.calls, r.Method+" "+r.URL.Path)
	p.errs = append(p.errs, err)
	p.mu.Unlock()
	return resp, err
}

func (p *passThrough) wrap(next http.RoundTripper) http.RoundTripper { p.next = next; return p }

// wrongPin is the pin of a key no test server uses.
const wrongPin = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

// TestNoOptionWeakensTLS (S2): every configuration path a caller has,
// for every kind of client the SDK builds, is either refused when the
// client is built, or the handshake is ours and fails; in every case no
// byte of a request reaches a server that is unverified (unknown CA) or
// that fails the pins, counted at the server. A control row shows that
// the same calls do reach a verified server.
func TestNoOptionWeakensTLS(t *testing.T) {
	other := otherCAPool(t) // a CA the test servers' certificate is not under
	insecure := &tls.Config{InsecureSkipVerify: true}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	type path struct {
		name      string
		trusted   bool // the server's CA is in RootCAs (then a wrong pin must stop it)
		hc        func(srv *countingServer) strictnet.Config
		construct bool // refused when the client is built
	}
	paths := []path{
		{"unknown CA", false, func(*countingServer) strictnet.Config { return strictnet.Config{RootCAs: other} }, false},
		{"pin mismatch", true, func(s *countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}}
		}, false},
		{"plain TCP dialer, unknown CA", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: other, DialContext: dialer.DialContext}
		}, false},
		{"plain TCP dialer, pin mismatch", true, func(s *countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}, DialContext: dialer.DialContext}
		}, false},
		{"proxy function (none), pin mismatch", true, func(s *countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}, Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
		}, false},
		{"tracing wrapper, unknown CA", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: other, Wrap: (&passThrough{}).wrap}
		}, false},
		{"tracing wrapper, pin mismatch", true, func(s *countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}, Wrap: (&passThrough{}).wrap}
		}, false},
		{"wrapper returning an InsecureSkipVerify transport", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper { return &http.Transport{TLSClientConfig: insecure} }}
		}, true},
		{"wrapper returning a transport with its own DialTLSContext", true, func(s *countingServer) strictnet.Config {
			return strictnet.Config{RootCAs: s.pool(), PinnedSPKI: []string{wrongPin}, Wrap: func(http.RoundTripper) http.RoundTripper {
				return &http.Transport{DialTLSContext: func(ctx context.Context, n, a string) (net.Conn, error) {
					return tls.Dial(n, a, insecure)
				}}
			}}
		}, true},
		{"wrapper returning a transport with its own DialTLS", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper {
				//lint:ignore SA1019 the deprecated field is set on purpose: it must be refused
				return &http.Transport{DialTLS: func(n, a string) (net.Conn, error) { return tls.Dial(n, a, insecure) }}
			}}
		}, true},
		{"wrapper returning a transport with VerifyPeerCertificate", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper {
				return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
					VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}}
			}}
		}, true},
		{"wrapper returning a transport with VerifyConnection", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper {
				return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
					VerifyConnection: func(tls.ConnectionState) error { return nil }}}
			}}
		}, true},
		{"wrapper returning nil", false, func(*countingServer) strictnet.Config {
			return strictnet.Config{Wrap: func(http.RoundTripper) http.RoundTripper { return nil }}
		}, true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, p := range paths {
		for _, k := range clientKinds {
			t.Run(p.name+"/"+k.name, func(t *testing.T) {
				srv := newCountingServer(t)
				cerr, err := k.call(ctx, srv, p.hc(srv))
				switch {
				case p.construct:
					var pe *strictnet.PolicyError
					if !errors.As(cerr, &pe) || pe.Field != "HTTP.Wrap" {
						t.Fatalf("not refused at construction naming HTTP.Wrap: construct %v, call %v", cerr, err)
					}
				case cerr != nil:
					t.Fatalf("refused at construction: %v", cerr)
				case err == nil:
					t.Fatal("the call succeeded")
				}
				if n := srv.reached(); n != 0 {
					t.Fatalf("%d request connections or requests reached the server (err %v)", n, err)
				}
			})
		}
	}
	// Control: the same calls reach a verified server with the right pin,
	// so the counters above can see a request.
	for _, k := range clientKinds {
		t.Run("control/"+k.name, func(t *testing.T) {
			srv := newCountingServer(t)
			hc := strictnet.Config{RootCAs: srv.pool(), PinnedSPKI: []string{spkiPin(srv.Certificate())}, Wrap: (&passThrough{}).wrap}
			if cerr, err := k.call(ctx, srv, hc); cerr != nil {
				t.Fatalf("construct: %v (call %v)", cerr, err)
			}
			if srv.hits.Load() == 0 {
				t.Fatal("the verified server was not reached: the counters cannot fail")
			}
		})
	}
}

// TestValidateRefusesForeignClients: validate's HTTPClient accepts only
// nil or oauthsafe's strict client; every other client, whatever it holds,
// is refused when the verifier is built, naming the field, and no byte
// reaches the server.
func TestValidateRefusesForeignClients(t *testing.T) {
	srv := newCountingServer(t)
	insecure := &tls.Config{InsecureSkipVerify: true}
	strict, err := strictnet.NewClient(strictnet.Config{RootCAs: srv.pool()})
	if err != nil {
		t.Fatal(err)
	}
	wrappedStrict := &http.Client{Transport: (&passThrough{}).wrap(strict.Transport)}
	foreign := map[string]*http.Client{
		"InsecureSkipVerify": {Transport: &http.Transport{TLSClientConfig: insecure}},
		"DialTLSContext":     {Transport: &http.Transport{DialTLSContext: func(ctx context.Context, n, a string) (net.Conn, error) { return tls.Dial(n, a, insecure) }}},
		//lint:ignore SA1019 the deprecated field is set on purpose: it must be refused
		"DialTLS":                              {Transport: &http.Transport{DialTLS: func(n, a string) (net.Conn, error) { return tls.Dial(n, a, insecure) }}},
		"VerifyPeerCertificate":                {Transport: &http.Transport{TLSClientConfig: &tls.Config{VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}}},
		"VerifyConnection":                     {Transport: &http.Transport{TLSClientConfig: &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return nil }}}},
		"opaque RoundTripper":                  {Transport: &passThrough{next: &http.Transport{TLSClientConfig: insecure}}},
		"strict behind a foreign RoundTripper": wrappedStrict,
		"default transport":                    {},
		"httptest client":                      srv.Client(),
	}
	for name, hc := range foreign {
		t.Run(name, func(t *testing.T) {
			_, err := validate.NewJWKS(validate.JWKSConfig{URL: srv.URL + "/jwks", HTTPClient: hc})
			if !errors.Is(err, oauthsafe.ErrConfig) || !strings.Contains(err.Error(), "JWKSConfig.HTTPClient") {
				t.Fatalf("JWKS: %v", err)
			}
			_, err = validate.NewIntrospector(validate.IntrospectionConfig{Endpoint: srv.URL + "/introspect", HTTPClient: hc,
				Authenticate: func(*http.Request, url.Values) error { return nil }})
			if !errors.Is(err, oauthsafe.ErrConfig) || !strings.Contains(err.Error(), "IntrospectionConfig.HTTPClient") {
				t.Fatalf("introspection: %v", err)
			}
		})
	}
	if n := srv.reached(); n != 0 {
		t.Fatalf("%d connections or requests reached the server", n)
	}
	// A copy of the strict client (as Client.HTTPClient returns) is accepted.
	cp := *strict
	if _, err := validate.NewJWKS(validate.JWKSConfig{URL: srv.URL + "/jwks", HTTPClient: &cp}); err != nil {
		t.Fatalf("copy of the strict client refused: %v", err)
	}
}

// otherCAPool holds one fresh self-signed CA (httptest servers all share
// one certificate, so another server's pool would trust them all).
func otherCAPool(t *testing.T) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"example.com"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AddCert(cert)
	return p
}

// TestWrapperObservesWithoutWeakening: an otelhttp-style wrapper sees
// every server call of every kind, and a verification failure still
// happens under it (seen by the wrapper as the call's error). A wrapper
// that answers without calling the transport it was given fails the call.
func TestWrapperObservesWithoutWeakening(t *testing.T) {
	ctx := context.Background()
	srv := newCountingServer(t)
	w := &passThrough{}
	hc := strictnet.Config{RootCAs: srv.pool(), Wrap: w.wrap}
	for _, k := range clientKinds {
		if cerr, _ := k.call(ctx, srv, hc); cerr != nil {
			t.Fatalf("%s: %v", k.name, cerr)
		}
	}
	w.mu.Lock()
	seen := len(w.calls)
	w.mu.Unlock()
	if seen == 0 || int64(seen) != srv.hits.Load() {
		t.Fatalf("wrapper saw %d calls, server answered %d", seen, srv.hits.Load())
	}

	bad := newCountingServer(t)
	w2 := &passThrough{}
	for _, k := range clientKinds {
		k.call(ctx, bad, strictnet.Config{RootCAs: bad.pool(), PinnedSPKI: []string{wrongPin}, Wrap: w2.wrap})
	}
	if bad.reached() != 0 {
		t.Fatal("a pin-mismatched server was reached under a wrapper")
	}
	w2.mu.Lock()
	defer w2.mu.Unlock()
	if len(w2.errs) == 0 {
		t.Fatal("the wrapper saw no call")
	}
	for i, err := range w2.errs {
		if !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("call %s: wrapper saw %v, want the pin refusal", w2.calls[i], err)
		}
	}

	// A RoundTripper that ignores the transport it was given.
	liar := func(http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		})
	}
	c, err := strictnet.NewClient(strictnet.Config{Wrap: liar})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(srv.URL); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("a wrapper going around the transport: %v, want ErrPolicy", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// recordingServer records every request it receives, headers and body.
type recordingServer struct {
	*countingServer
	mu   sync.Mutex
	seen bytes.Buffer
}

func newRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	rs := &recordingServer{countingServer: newCountingServer(t)}
	inner := rs.Config.Handler
	rs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, _ := httputil.DumpRequest(r, true)
		rs.mu.Lock()
		rs.seen.Write(dump)
		rs.mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	return rs
}

func (rs *recordingServer) text() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.seen.String()
}

// secretsOfClientKinds are the credential values clientKinds send.
var secretsOfClientKinds = []string{"client-secret-value", "access-token-value", "refresh-token-value", "opaque-access-token", "Y2xpZW50OmNsaWVudC1zZWNyZXQtdmFsdWU"}

// TestWrapperNeverSeesCredentials: a wrapper sees method, URL and ordinary
// headers, never a credential header or a body, while the server still gets
// both; and a wrapper that sends the request itself (here over a transport
// that skips verification) sends nothing secret before the call fails.
func TestWrapperNeverSeesCredentials(t *testing.T) {
	ctx := context.Background()
	srv := newRecordingServer(t)
	var mu sync.Mutex
	var seenByWrapper bytes.Buffer
	record := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			dump, err := httputil.DumpRequestOut(r, true)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			seenByWrapper.Write(dump)
			mu.Unlock()
			r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			return next.RoundTrip(r)
		})
	}
	for _, k := range clientKinds {
		if cerr, _ := k.call(ctx, srv.countingServer, strictnet.Config{RootCAs: srv.pool(), Wrap: record}); cerr != nil {
			t.Fatalf("%s: %v", k.name, cerr)
		}
	}
	atServer := srv.text()
	for _, want := range []string{"Authorization: Basic", "Authorization: Bearer access-token-value", "grant_type=client_credentials", "Traceparent: 00-0af7"} {
		if !strings.Contains(atServer, want) {
			t.Errorf("the server did not receive %q through the wrapper", want)
		}
	}
	mu.Lock()
	wrapped := seenByWrapper.String()
	mu.Unlock()
	if !strings.Contains(wrapped, "/token") {
		t.Fatal("the wrapper saw no token call")
	}
	for _, s := range append(secretsOfClientKinds, "Authorization", "grant_type") {
		if strings.Contains(wrapped, s) {
			t.Errorf("the wrapper saw %q", s)
		}
	}

	// A wrapper that ignores the transport it was given.
	rogue := newRecordingServer(t)
	bypass := func(http.RoundTripper) http.RoundTripper {
		own := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			u := *r.URL
			u.Host = strings.TrimPrefix(rogue.URL, "https://")
			r2 := r.Clone(r.Context())
			r2.URL, r2.Host = &u, ""
			return own.RoundTrip(r2)
		})
	}
	for _, k := range clientKinds {
		_, callErr := k.call(ctx, srv.countingServer, strictnet.Config{RootCAs: srv.pool(), Wrap: bypass})
		if k.name != "discovery" && callErr == nil {
			t.Errorf("%s: a wrapper going around the transport did not fail the call", k.name)
		}
	}
	leaked := rogue.text()
	for _, s := range append(secretsOfClientKinds, "Authorization", "grant_type") {
		if strings.Contains(leaked, s) {
			t.Errorf("a bypassing wrapper delivered %q to an unverified server", s)
		}
	}
}

// TestRefusalsAreTyped (S19: TLS and policy refusals are typed): a pin
// mismatch fails every kind of call with an error matching ErrPolicy, and
// an unknown CA with an x509.UnknownAuthorityError reachable by errors.As,
// the key set and introspection calls of package validate included.
func TestRefusalsAreTyped(t *testing.T) {
	ctx := context.Background()
	other := otherCAPool(t)
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			srv := newCountingServer(t)
			cerr, err := k.call(ctx, srv, strictnet.Config{RootCAs: srv.pool(), PinnedSPKI: []string{wrongPin}})
			if err == nil {
				err = cerr
			}
			if !errors.Is(err, strictnet.ErrPolicy) {
				t.Errorf("pin mismatch: %v, want ErrPolicy", err)
			}
			cerr, err = k.call(ctx, srv, strictnet.Config{RootCAs: other})
			if err == nil {
				err = cerr
			}
			var ua x509.UnknownAuthorityError
			if !errors.As(err, &ua) {
				t.Errorf("unknown CA: %v, want x509.UnknownAuthorityError", err)
			}
		})
	}
}
