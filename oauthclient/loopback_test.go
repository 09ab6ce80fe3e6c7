package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestLoopbackHTTPIssuer (S1): an http issuer on loopback is refused by
// default, before any request; with HTTP.AllowLoopbackHTTP its metadata is
// read (RFC 8414 first) and its http endpoints accepted, while an http
// endpoint on another host is still refused.
func TestLoopbackHTTPIssuer(t *testing.T) {
	var hits int
	var endpoint string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		iss := "http://" + r.Host
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": endpoint})
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	if _, err := New(ctx, Config{Issuer: srv.URL, ClientID: "c"}); !errors.Is(err, strictnet.ErrPolicy) || hits != 0 {
		t.Fatalf("default: %v after %d requests, want ErrPolicy before any", err, hits)
	}
	loop := strictnet.Config{AllowLoopbackHTTP: true}
	endpoint = srv.URL + "/token"
	c, err := New(ctx, Config{Issuer: srv.URL, ClientID: "c", HTTP: loop})
	if err != nil || c.Metadata().TokenEndpoint != endpoint {
		t.Fatalf("with AllowLoopbackHTTP: %v", err)
	}
	endpoint = "http://token.example/token"
	if _, err := Discover(ctx, srv.URL, loop); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("an http endpoint on another host: %v, want ErrPolicy", err)
	}
}
