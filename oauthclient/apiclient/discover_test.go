package apiclient

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestResourceMetadataOnlyAllowedIssuers (S28): a resource whose metadata
// names an issuer the caller did not allow is refused before any request
// reaches that issuer; an allowed one is chosen even when listed second.
func TestResourceMetadataOnlyAllowedIssuers(t *testing.T) {
	var evilHits, goodHits atomic.Int32
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	defer evil.Close()
	good := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { goodHits.Add(1) }))
	defer good.Close()
	var servers []string
	var resourceID string
	var metaHits atomic.Int32
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/v1":
			metaHits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{
				"resource": resourceID, "authorization_servers": servers,
				"scopes_supported": []string{"read", "write"}, "dpop_bound_access_tokens_required": true,
			})
		default:
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+resourceID[:len(resourceID)-3]+`/.well-known/oauth-protected-resource/v1", scope="read"`)
			w.WriteHeader(401)
		}
	}))
	defer api.Close()
	resourceID = api.URL + "/v1"
	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	cfg := DiscoveryConfig{Resource: resourceID, AllowedIssuers: []string{good.URL}, HTTP: strictnet.Config{RootCAs: pool}}
	get401 := func() *http.Response {
		hc := api.Client()
		resp, err := hc.Get(api.URL + "/v1/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ctx := context.Background()

	servers = []string{evil.URL}
	if _, err := Discover(ctx, cfg, get401()); !errors.Is(err, ErrIssuerNotAllowed) || !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("unknown issuer: err = %v", err)
	}
	if evilHits.Load() != 0 || metaHits.Load() != 1 {
		t.Fatalf("requests: issuer %d, metadata %d", evilHits.Load(), metaHits.Load())
	}

	servers = []string{evil.URL, good.URL}
	ra, err := Discover(ctx, cfg, get401())
	if err != nil {
		t.Fatal(err)
	}
	if ra.Issuer != good.URL || ra.Resource != resourceID || !ra.DPoP || len(ra.Scopes) != 1 || ra.Scopes[0] != "read" {
		t.Fatalf("got %+v", ra)
	}
	// Without a challenge: the well-known URL of the resource.
	if ra, err := Discover(ctx, cfg, nil); err != nil || ra.Issuer != good.URL || len(ra.Scopes) != 2 {
		t.Fatalf("well-known: %+v %v", ra, err)
	}
	if evilHits.Load() != 0 || goodHits.Load() != 0 {
		t.Fatal("discovery contacted an authorization server")
	}

	// A document for another resource, no allowed issuers, plain http.
	if _, err := Discover(ctx, DiscoveryConfig{Resource: api.URL + "/other", AllowedIssuers: cfg.AllowedIssuers, HTTP: cfg.HTTP}, get401()); !errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("resource mismatch: %v", err)
	}
	if _, err := Discover(ctx, DiscoveryConfig{Resource: resourceID, HTTP: cfg.HTTP}, nil); !errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("no allowed issuers: %v", err)
	}
	bad := &http.Response{Header: http.Header{"Www-Authenticate": {`Bearer resource_metadata="http://` + api.Listener.Addr().String() + `/.well-known/oauth-protected-resource/v1"`}}}
	if _, err := Discover(ctx, cfg, bad); !errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("http metadata URL: %v", err)
	}
}

// TestDiscoverUnusableMetadata: a metadata document that cannot be had (an
// error status, a body that is not JSON, one over the 1 MiB bound, a
// redirect, which is not followed) is ErrDiscovery or a policy refusal,
// never a panic or a partial answer.
func TestDiscoverUnusableMetadata(t *testing.T) {
	var mode atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
		case "html":
			w.Write([]byte("<html>sign in</html>"))
		case "huge":
			w.Write([]byte(`{"resource":"` + strings.Repeat("a", netrule.MaxResponseSize) + `"}`))
		case "redirect":
			http.Redirect(w, r, "https://elsewhere.example/meta", http.StatusFound)
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := DiscoveryConfig{Resource: srv.URL + "/v1", AllowedIssuers: []string{"https://as.example"}, HTTP: strictnet.Config{RootCAs: pool}}
	for _, m := range []string{"500", "html", "huge", "redirect"} {
		mode.Store(m)
		got, err := Discover(context.Background(), cfg, nil)
		if got != nil || !errors.Is(err, ErrDiscovery) && !errors.Is(err, strictnet.ErrResponseTooLarge) {
			t.Errorf("%s: %+v, %v; want ErrDiscovery", m, got, err)
		}
	}
}
