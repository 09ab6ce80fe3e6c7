package resourceclient_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// hostile is a resource and an authorization server in one TLS server
// that answer whatever a case says, recording every path asked.
type hostile struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	docs  map[string]string // path -> JSON document
	chal  string            // WWW-Authenticate of the resource's 401
}

func newHostile(t *testing.T) *hostile {
	h := &hostile{docs: map[string]string{}}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.paths = append(h.paths, r.URL.Path)
		doc, ok := h.docs[r.URL.Path]
		chal := h.chal
		h.mu.Unlock()
		switch {
		case ok:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(strings.ReplaceAll(doc, "$URL", h.URL)))
		case strings.HasPrefix(r.URL.Path, "/mcp"):
			w.Header().Set("WWW-Authenticate", strings.ReplaceAll(chal, "$URL", h.URL))
			w.WriteHeader(http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostile) asked() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

// TestResourceMismatchRefused (S28): resource metadata that names another
// resource than the URL it was found for, or an authorization server
// whose metadata names another issuer, stops the chain before anything
// is sent to an authorization server; so does an issuer outside the
// allow-list or one the user refuses.
func TestResourceMismatchRefused(t *testing.T) {
	const as = `{"issuer":"$URL/as","authorization_endpoint":"$URL/as/authorize","token_endpoint":"$URL/as/token","registration_endpoint":"$URL/as/register","code_challenge_methods_supported":["S256"]}`
	refusedIssuer := errors.New("user said no")
	for _, tc := range []struct {
		name string
		chal string
		docs map[string]string
		cfg  func(*resourceclient.Config)
		want error
	}{
		{"challenge metadata names another resource", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"https://evil.example/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			nil, resourceclient.ErrResourceMismatch},
		{"path-inserted metadata names the origin", `Bearer`,
			map[string]string{"/.well-known/oauth-protected-resource/mcp": `{"resource":"$URL","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			nil, resourceclient.ErrResourceMismatch},
		{"root metadata names the path", `Bearer`,
			map[string]string{"/.well-known/oauth-protected-resource": `{"resource":"$URL/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			nil, resourceclient.ErrResourceMismatch},
		{"trailing slash is another resource", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"$URL/mcp/","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			nil, resourceclient.ErrResourceMismatch},
		{"authorization server metadata names another issuer", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"$URL/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": strings.Replace(as, `"issuer":"$URL/as"`, `"issuer":"https://attacker.example"`, 1)},
			nil, oauthclient.ErrIssuerMismatch},
		{"issuer with a trailing slash", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"$URL/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": strings.Replace(as, `"issuer":"$URL/as"`, `"issuer":"$URL/as/"`, 1)},
			nil, oauthclient.ErrIssuerMismatch},
		{"issuer outside the allow-list", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"$URL/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			func(c *resourceclient.Config) { c.AllowedIssuers = []string{"https://login.example"} }, apiclient.ErrIssuerNotAllowed},
		{"issuer the user refuses", `Bearer resource_metadata="$URL/meta"`,
			map[string]string{"/meta": `{"resource":"$URL/mcp","authorization_servers":["$URL/as"]}`, "/.well-known/oauth-authorization-server/as": as},
			func(c *resourceclient.Config) {
				c.ConfirmIssuer = func(context.Context, string) error { return refusedIssuer }
			}, refusedIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostile(t)
			h.chal, h.docs = tc.chal, tc.docs
			pool := x509.NewCertPool()
			pool.AddCert(h.Certificate())
			cfg := resourceclient.Config{
				Resource: h.URL + "/mcp", RedirectURL: redirect, HTTP: strictnet.Config{RootCAs: pool},
				Browser: func(context.Context, string) (*url.URL, error) {
					t.Fatal("the browser step ran")
					return nil, nil
				},
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			rc, err := resourceclient.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rc.HTTPClient().Post(h.URL+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0"}`))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, p := range h.asked() {
				if strings.HasPrefix(p, "/as/") {
					t.Fatalf("%s was requested at the authorization server", p)
				}
			}
		})
	}
}
