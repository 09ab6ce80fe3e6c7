// Package machine_test runs the machine grants (assertions, the
// JWT-bearer grant, token exchange, enterprise-managed authorization and
// DPoP on each) against the in-process provider.
package machine_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

func start(t *testing.T, opts oauthtest.Options) *oauthtest.Server {
	t.Helper()
	srv, err := oauthtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// secretOf loads a constant test secret the way a deployment would.
func secretOf(t *testing.T, s string) secret.Value {
	t.Helper()
	v, err := secret.FromReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newClient builds a client of srv with cfg (Issuer and roots filled in).
func newClient(t *testing.T, srv *oauthtest.Server, cfg oauthclient.Config) *oauthclient.Client {
	t.Helper()
	cfg.Issuer = srv.Issuer
	cfg.HTTP = strictnet.Config{RootCAs: srv.RootCAs()}
	c, err := oauthclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serviceClient is oauthtest.ClientService with its secret.
func serviceClient(t *testing.T, srv *oauthtest.Server, scopes ...string) *oauthclient.Client {
	return newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientService, ClientSecret: secretOf(t, oauthtest.ServiceSecret), Scopes: scopes})
}

// writeSecretFile replaces path with content (mode 0600) by a rename, as
// platforms rotate projected tokens.
func writeSecretFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".tmp-%d", time.Now().UnixNano()))
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tokenRequests records the token endpoint requests of srv: the form of each.
type tokenRequests struct {
	mu    sync.Mutex
	forms []map[string][]string
	dpop  []string // the DPoP header of each
}

func record(t *testing.T, srv *oauthtest.Server) *tokenRequests {
	rec := &tokenRequests{}
	tokenPath := pathOf(t, srv.TokenURL)
	srv.SetHook(func(r *http.Request) {
		if r.URL.Path != tokenPath {
			return
		}
		_ = r.ParseForm()
		rec.mu.Lock()
		rec.forms = append(rec.forms, r.PostForm)
		rec.dpop = append(rec.dpop, r.Header.Get("DPoP"))
		rec.mu.Unlock()
	})
	return rec
}

func (r *tokenRequests) all() ([]map[string][]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string][]string(nil), r.forms...), append([]string(nil), r.dpop...)
}

func (r *tokenRequests) last() (map[string][]string, string) {
	f, d := r.all()
	if len(f) == 0 {
		return nil, ""
	}
	return f[len(f)-1], d[len(d)-1]
}

func pathOf(t *testing.T, u string) string {
	t.Helper()
	i := strings.Index(u[len("https://"):], "/")
	if i < 0 {
		t.Fatalf("no path in %s", u)
	}
	return u[len("https://")+i:]
}

// demoAPI starts the demo API of srv behind a TLS server; the returned
// function calls it with src through the API client and returns the
// status (200 needs an active token of scope api.read, and a proof of its
// key when it is DPoP-bound).
func demoAPI(t *testing.T, srv *oauthtest.Server, cfg demoapi.ResourceConfig) (url string, call func(src oauth2.TokenSource) int, bearer func(token string) int) {
	t.Helper()
	mux := http.NewServeMux()
	api := httptest.NewUnstartedServer(mux)
	api.StartTLS()
	t.Cleanup(api.Close)
	if cfg.Resource == "*" {
		cfg.Resource = api.URL + "/v1/invoices"
	}
	demo, err := demoapi.NewResource(context.Background(), srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/v1/invoices", demo.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[]`)
	}))
	roots := x509.NewCertPool()
	roots.AddCert(api.Certificate())
	call = func(src oauth2.TokenSource) int {
		t.Helper()
		hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: roots}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(api.URL + "/v1/invoices")
		if err != nil {
			t.Fatalf("API call: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer = func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/v1/invoices", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: api.Client().Transport.(*http.Transport).TLSClientConfig}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	return api.URL + "/v1/invoices", call, bearer
}

// validateConfig is the introspection of tokens for resource.
func validateConfig(resource string) validate.IntrospectionConfig {
	return validate.IntrospectionConfig{Audience: resource}
}

// assertionFunc is assertion.Func, named for the tests' tables.
var assertionFunc = assertion.Func
