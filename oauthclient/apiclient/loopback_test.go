package apiclient_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// TestLoopbackHTTPOrigins (S1, S14): an http origin is refused without
// AllowLoopbackHTTP and for a host that is not loopback; with the option
// the token goes over http to the loopback origin named, while an https
// origin never matches an http URL of the same host and port.
func TestLoopbackHTTPOrigins(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok", TokenType: "Bearer"})
	loop := strictnet.Config{AllowLoopbackHTTP: true}
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, cfg := range []apiclient.Config{
		{AllowedOrigins: []string{srv.URL}},
		{AllowedOrigins: []string{"http://api.example"}, HTTP: loop},
	} {
		if _, err := apiclient.New(src, cfg); !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("%v: %v, want ErrPolicy", cfg.AllowedOrigins, err)
		}
	}
	c, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{srv.URL}, HTTP: loop})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 1 || got[0] != "Bearer tok" {
		t.Fatalf("the loopback API got %q", got)
	}
	https, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://" + host}, HTTP: loop})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := https.Get(srv.URL + "/v1"); !errors.Is(err, apiclient.ErrOriginNotAllowed) {
		t.Fatalf("an https origin matched http: %v", err)
	}
	if len(got) != 1 {
		t.Fatal("a token went over http to an https origin")
	}
}
