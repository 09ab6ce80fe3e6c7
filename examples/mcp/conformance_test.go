package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/resourceclient"
)

func TestConformanceContext(t *testing.T) {
	for _, tc := range []struct {
		name, raw  string
		wantErr    string // "" means no error
		wantClient string
		wantSecret bool
	}{
		{name: "no context", raw: ""},
		{name: "pre-registered", raw: `{"name":"auth/pre-registration","client_id":"c","client_secret":"s","issuer":"http://localhost:1"}`, wantClient: "c", wantSecret: true},
		{name: "public pre-registered", raw: `{"name":"x","client_id":"c","issuer":"http://localhost:1"}`, wantClient: "c"},
		{name: "client without issuer", raw: `{"name":"x","client_id":"c","client_secret":"s"}`, wantErr: "needs the issuer"},
		{name: "unsupported keys named", raw: `{"name":"x","tls_client_cert":"k","mtls_key":"j"}`, wantErr: "does not support mtls_key, tls_client_cert"},
		{name: "not an object", raw: `[1]`, wantErr: "not a JSON object"},
		{name: "wrong type", raw: `{"client_id":1}`, wantErr: "MCP_CONFORMANCE_CONTEXT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg resourceclient.Config
			err := conformance(&cfg, tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.HTTP.AllowLoopbackHTTP || cfg.Browser == nil || cfg.RedirectURL != headlessRedirect || cfg.Store != nil {
				t.Fatalf("not configured for the suite: %+v", cfg)
			}
			if tc.wantClient == "" {
				if cfg.Credentials != nil {
					t.Fatalf("credentials %+v from a context without a client", cfg.Credentials)
				}
				return
			}
			c := cfg.Credentials
			if c == nil || c.ClientID != tc.wantClient || c.Issuer != "http://localhost:1" || c.ClientSecret.IsZero() == tc.wantSecret {
				t.Fatalf("credentials = %+v", c)
			}
			if tc.wantSecret && c.ClientSecret.Reveal() != "s" {
				t.Fatal("client secret not kept")
			}
		})
	}
}

func TestHeadlessBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			w.Write([]byte("<form>a login page</form>"))
			return
		}
		http.Redirect(w, r, "http://127.0.0.1:3000/callback?code=c1&state="+r.URL.Query().Get("state")+"&iss=http%3A%2F%2Fas", http.StatusFound)
	}))
	defer srv.Close()
	var cfg resourceclient.Config
	if err := conformance(&cfg, ""); err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Browser(context.Background(), srv.URL+"/authorize?state=s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "http://127.0.0.1:3000/callback?code=c1&state=s1&iss=http%3A%2F%2Fas" {
		t.Fatalf("landed on %s", got)
	}
	if _, err := cfg.Browser(context.Background(), srv.URL+"/login"); err == nil || !strings.Contains(err.Error(), "not a redirect") {
		t.Fatalf("a login page: err = %v", err)
	}
}
