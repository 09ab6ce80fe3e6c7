package oauthclient_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// benchStub is the base RoundTripper both benchmarks share: no network,
// one prebuilt response. It checks that a token was attached, so that a
// transport that skipped its work would fail rather than look fast.
type benchStub struct {
	resp *http.Response
}

func (s *benchStub) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(r.Header["Authorization"]) != 1 {
		panic("benchStub: no Authorization header")
	}
	return s.resp, nil
}

func newBenchStub() *benchStub {
	return &benchStub{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
}

// benchRequest is a typical API call: a GET with a query and a few headers.
func benchRequest(b *testing.B) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/items?limit=50&cursor=abc", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "oauthsafe-bench/1")
	req.Header.Set("X-Request-Id", "6f1c2a")
	return req
}

func benchToken() *oauth2.Token {
	return &oauth2.Token{
		AccessToken: "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl",
		TokenType:   "Bearer",
		Expiry:      time.Now().Add(time.Hour),
	}
}

// BenchmarkAPITransport is our bearer transport over benchStub: origin,
// URL and redirect checks, a copied request with its own header map,
// Authorization and Cache-Control set, the token read with one atomic load.
func BenchmarkAPITransport(b *testing.B) {
	src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchToken()))
	tr, err := oauthclient.NewAPITransportOver(src, oauthclient.APIConfig{
		AllowedOrigins: []string{"https://api.example.com"},
	}, newBenchStub())
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAPITransportDPoP is BenchmarkAPITransport with a DPoP-bound
// token: the same checks plus a fresh proof per request (jti from
// crypto/rand, iat, htm, htu, ath, one ES256 signature). Compare with
// BenchmarkES256Sign for the cost of a proof.
func BenchmarkAPITransportDPoP(b *testing.B) {
	src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(oauthclient.DPoPBound(benchToken())))
	tr, err := oauthclient.NewAPITransportOver(src, oauthclient.APIConfig{
		AllowedOrigins: []string{"https://api.example.com"},
	}, newBenchStub())
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp
	}
}

// BenchmarkXOAuth2Transport is x/oauth2's Transport with ReuseTokenSource
// over the same stub and request.
func BenchmarkXOAuth2Transport(b *testing.B) {
	tr := &oauth2.Transport{
		Source: oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchToken())),
		Base:   newBenchStub(),
	}
	req := benchRequest(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAPITransportParallel measures the lock-free token read under
// contention (x/oauth2's ReuseTokenSource takes a mutex per request).
func BenchmarkAPITransportParallel(b *testing.B) {
	src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchToken()))
	tr, err := oauthclient.NewAPITransportOver(src, oauthclient.APIConfig{
		AllowedOrigins: []string{"https://api.example.com"},
	}, newBenchStub())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest(b)
		for pb.Next() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkXOAuth2TransportParallel is the x/oauth2 counterpart.
func BenchmarkXOAuth2TransportParallel(b *testing.B) {
	tr := &oauth2.Transport{
		Source: oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchToken())),
		Base:   newBenchStub(),
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest(b)
		for pb.Next() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// hotServiceSource returns a service token source holding a valid token.
func hotServiceSource(b *testing.B) oauth2.TokenSource {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-bench","token_type":"Bearer","expires_in":3600}`))
	}))
	b.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	b.Setenv("OAUTHSAFE_BENCH_SECRET", "bench-secret-value")
	sec, _ := oauthclient.SecretFromEnv("OAUTHSAFE_BENCH_SECRET")
	c, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer: ts.URL, ClientID: "bench", ClientSecret: sec,
		HTTP:     strictnet.Config{RootCAs: pool},
		Metadata: &oauthclient.Metadata{Issuer: ts.URL, TokenEndpoint: ts.URL + "/token"},
	})
	if err != nil {
		b.Fatal(err)
	}
	src := c.ServiceTokenSource(oauthclient.ClientCredentialsOptions{})
	if _, err := src.Token(); err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkServiceTokenHot is the hot path of the client-credentials
// source (the lifecycle engine): one atomic load and one clock read, no
// lock, no allocation. Compare with BenchmarkXOAuth2ReuseTokenSource.
func BenchmarkServiceTokenHot(b *testing.B) {
	src := hotServiceSource(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkXOAuth2ReuseTokenSource is x/oauth2's cache on a valid token,
// the baseline of BenchmarkServiceTokenHot.
func BenchmarkXOAuth2ReuseTokenSource(b *testing.B) {
	tok := &oauth2.Token{AccessToken: "at-bench", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	s := oauth2.ReuseTokenSource(tok, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceTokenHotParallel is BenchmarkServiceTokenHot from every
// core at once.
func BenchmarkServiceTokenHotParallel(b *testing.B) {
	src := hotServiceSource(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := src.Token(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
