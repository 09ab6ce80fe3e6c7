package oauthclient_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

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
	sec, _ := secret.FromEnv("OAUTHSAFE_BENCH_SECRET")
	c, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer: ts.URL, ClientID: "bench", ClientSecret: sec,
		HTTP:     strictnet.Config{RootCAs: pool},
		Metadata: &oauthclient.Metadata{Issuer: ts.URL, TokenEndpoint: ts.URL + "/token"},
	})
	if err != nil {
		b.Fatal(err)
	}
	src := c.ClientCredentials(oauthclient.GrantOptions{})
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
