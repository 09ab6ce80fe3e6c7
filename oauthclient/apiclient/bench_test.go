package apiclient_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
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
	tr, err := apiclient.NewTransportOver(src, apiclient.Config{
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
	src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(apiclient.DPoPBound(benchToken())))
	tr, err := apiclient.NewTransportOver(src, apiclient.Config{
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
	tr, err := apiclient.NewTransportOver(src, apiclient.Config{
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
