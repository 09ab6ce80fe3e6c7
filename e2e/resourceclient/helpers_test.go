package resourceclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// redirect is the loopback redirect URI the tests register: the headless
// browser step (the provider's Login) never contacts it.
const redirect = "http://127.0.0.1/callback"

func startAS(t *testing.T) *oauthtest.Server {
	t.Helper()
	as, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	return as
}

// authLog records the authorization and token requests an AS sees.
type authLog struct {
	mu        sync.Mutex
	authorize []url.Values
	token     []url.Values
	revoke    []url.Values
	clientIDs []string // every client_id seen at /authorize and the token endpoint
}

func watch(as *oauthtest.Server) *authLog {
	l := &authLog{}
	as.SetHook(func(r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case r.URL.Path == "/authorize":
			q := r.URL.Query()
			l.authorize = append(l.authorize, q)
			l.clientIDs = append(l.clientIDs, q.Get("client_id"))
		case r.Method == http.MethodPost && r.URL.Path == "/revoke":
			b, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(b))
			l.revoke = append(l.revoke, f)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token"):
			b, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(b))
			l.token = append(l.token, f)
			if f.Get("client_id") != "" {
				l.clientIDs = append(l.clientIDs, f.Get("client_id"))
			}
			if id, _, ok := r.BasicAuth(); ok {
				id, _ = url.QueryUnescape(id)
				l.clientIDs = append(l.clientIDs, id)
			}
		}
	})
	return l
}

func (l *authLog) authorizations() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.authorize)
}

func (l *authLog) tokens() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.token)
}

func (l *authLog) revocations() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.revoke)
}

func (l *authLog) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.clientIDs)
}

// resourceHost serves protected resources under paths of one TLS host
// (certificate from the AS's CA), each checked by its own demoapi.API
// (introspection at its AS, audience = the resource URL), and records
// every Authorization header each path prefix receives.
type resourceHost struct {
	*httptest.Server
	mu   sync.Mutex
	mux  *http.ServeMux
	seen map[string][]string // path prefix -> Authorization values
	hits atomic.Int64
}

func newResourceHost(t *testing.T, as *oauthtest.Server) *resourceHost {
	t.Helper()
	h := &resourceHost{mux: http.NewServeMux(), seen: map[string][]string{}}
	h.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			prefix := "/" + strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
			h.mu.Lock()
			h.seen[prefix] = append(h.seen[prefix], a)
			h.mu.Unlock()
		}
		h.mux.ServeHTTP(w, r)
	}))
	as.StartTLS(h.Server)
	t.Cleanup(h.Close)
	return h
}

// add mounts a resource at path (its URL is h.URL+path) whose routes
// path+"/read" and path+"/write" need api.read and api.write. It returns
// the resource URL.
func (h *resourceHost) add(t *testing.T, as *oauthtest.Server, path string, cfg demoapi.ResourceConfig) string {
	t.Helper()
	resource := h.URL + path
	cfg.Resource = resource
	api, err := demoapi.NewResource(context.Background(), as, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }
	h.mux.Handle(path+"/read", api.Require(oauthtest.ScopeAPIRead, ok))
	h.mux.Handle(path+"/write", api.Require(oauthtest.ScopeAPIWrite, ok))
	h.mux.HandleFunc("/.well-known/oauth-protected-resource"+path, api.ServeMetadata)
	return resource
}

func (h *resourceHost) seenAt(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen[prefix])
}

// browser is the headless browser step: alice signs in at the provider.
func browser(as *oauthtest.Server, user string) func(context.Context, string) (*url.URL, error) {
	return func(ctx context.Context, authURL string) (*url.URL, error) {
		cb, err := as.Login(ctx, authURL, user)
		if err != nil {
			return nil, err
		}
		return url.Parse(cb)
	}
}

// config is a resource-first client configuration for resource at as.
func config(as *oauthtest.Server, resource string, store tokenstore.Store) resourceclient.Config {
	return resourceclient.Config{
		Resource:    resource,
		Store:       store,
		RedirectURL: redirect,
		Browser:     browser(as, oauthtest.UserAlice),
		HTTP:        strictnet.Config{RootCAs: as.RootCAs()},
	}
}

func get(t *testing.T, c *http.Client, u string) (int, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
