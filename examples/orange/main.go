// Command orange is an Orange-style client-credentials integration: the
// client authenticates at the token endpoint with HTTP Basic (client id and
// secret, client_secret_basic), receives a bearer access token, and calls
// the API with it in the Authorization header, and nowhere else.
//
//	ORANGE_CLIENT_SECRET=... go run ./examples/orange \
//	    -token-url https://api.example.com/oauth/v3/token -client-id my-app \
//	    -api https://api.example.com/some-api/v1/resource
//
// Providers of this style often publish no discovery document, so the token
// endpoint is given directly (-token-url); -issuer uses discovery instead.
// The secret comes from $ORANGE_CLIENT_SECRET or a 0600 file
// (-secret-file), never from a flag value. With -demo the example starts
// the embedded test authorization server and a small local API that
// validates the token by introspection, and runs against them.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// envSecret is the environment variable holding the client secret.
const envSecret = "ORANGE_CLIENT_SECRET"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orange:", err)
		os.Exit(1)
	}
}

// settings are what the flags (or the demo) configure.
type settings struct {
	cfg        oauthclient.Config
	secretFile string
	apiURLs    []string
	apiRoots   *x509.CertPool // nil: the system roots
}

// run is the whole program; output goes to stdout (results) and stderr
// (progress). It never prints a token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokenURL := fs.String("token-url", "", "token endpoint (https), when the provider has no discovery document")
	issuer := fs.String("issuer", "", "issuer URL, for discovery (default: the origin of -token-url)")
	clientID := fs.String("client-id", "", "client ID")
	scope := fs.String("scope", "", "space-separated scopes (most Orange-style APIs need none)")
	secretFile := fs.String("secret-file", "", "file (mode 0600) with the client secret; default: $"+envSecret)
	api := fs.String("api", "", "API URL to call (https)")
	demo := fs.Bool("demo", false, "run against an embedded authorization server and API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := settings{
		cfg: oauthclient.Config{
			Issuer:     *issuer,
			ClientID:   *clientID,
			Scopes:     strings.Fields(*scope),
			AuthMethod: "client_secret_basic", // HTTP Basic at the token endpoint, nothing else
		},
		secretFile: *secretFile,
		apiURLs:    []string{*api},
	}
	if *tokenURL != "" {
		u, err := url.Parse(*tokenURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("-token-url must be an https URL")
		}
		if s.cfg.Issuer == "" {
			s.cfg.Issuer = "https://" + u.Host
		}
		s.cfg.Metadata = &oauthclient.Metadata{
			Issuer:                            s.cfg.Issuer,
			TokenEndpoint:                     *tokenURL,
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"},
		}
	}
	if *demo {
		stop, err := startDemo(ctx, &s, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	return callAPI(ctx, s, stdout)
}

// callAPI gets a token with client credentials and calls each API URL.
func callAPI(ctx context.Context, s settings, stdout io.Writer) error {
	var err error
	if s.secretFile != "" {
		s.cfg.ClientSecret, err = secret.FromFile(s.secretFile)
	} else {
		s.cfg.ClientSecret, err = secret.FromEnv(envSecret)
	}
	if err != nil {
		return err
	}
	client, err := oauthclient.New(ctx, s.cfg)
	if err != nil {
		return err
	}
	origin := ""
	for _, a := range s.apiURLs {
		u, err := url.Parse(a)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("-api must be an https URL")
		}
		if origin != "" && origin != "https://"+u.Host {
			return errors.New("the API URLs must share one origin")
		}
		origin = "https://" + u.Host
	}
	// The token source caches the token and fetches the next one ahead of
	// expiry; the API client sends it only to the API's origin, only in the
	// Authorization header ("Bearer ..."), never in a URL, never across a
	// redirect to another origin.
	httpc, err := apiclient.New(client.ClientCredentials(oauthclient.GrantOptions{}), apiclient.Config{
		AllowedOrigins: []string{origin},
		HTTP:           strictnet.Config{RootCAs: s.apiRoots},
	})
	if err != nil {
		return err
	}
	for _, a := range s.apiURLs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a, nil)
		if err != nil {
			return err
		}
		resp, err := httpc.Do(req)
		var ise *validate.InsufficientScopeError
		switch {
		case errors.As(err, &ise):
			// 403 with a Bearer insufficient_scope challenge: the
			// subscription or the requested scopes do not cover this API.
			fmt.Fprintf(stdout, "%s -> refused: the API needs scope %q; ask for it with -scope or extend the subscription\n",
				a, strings.Join(ise.Scope, " "))
			continue
		case err != nil:
			return err // typed: errors.Is(err, tokenstore.ErrLoginRequired), strictnet.ErrPolicy, ...
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			// The transport already dropped the token and retried once with
			// a new one; a second 401 means the API does not accept this
			// client's tokens at all (wrong audience, revoked application).
			return fmt.Errorf("%s: 401 Unauthorized, even with a fresh token (%s)", a, challenge(resp))
		}
		fmt.Fprintf(stdout, "%s -> %s %s\n", a, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// challenge is the error code of a Bearer challenge, for the message.
func challenge(resp *http.Response) string {
	h := resp.Header.Get("WWW-Authenticate")
	if _, rest, ok := strings.Cut(h, `error="`); ok {
		if code, _, ok := strings.Cut(rest, `"`); ok && len(code) < 64 {
			return code
		}
	}
	return "no error code"
}

// startDemo starts the embedded server and a local API that accepts only
// tokens the server says are active for audience "api" (RFC 7662), and
// points s at them. The secret goes to a 0600 file, as a deployment would
// mount it.
func startDemo(ctx context.Context, s *settings, stderr io.Writer) (stop func(), err error) {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (func(), error) { srv.Close(); return nil, err }
	// No discovery, as with providers of this style: the token endpoint is configured.
	s.cfg.Issuer, s.cfg.ClientID, s.cfg.Scopes = srv.Issuer, oauthtest.ClientService, []string{oauthtest.ScopeAPIRead}
	s.cfg.Metadata = &oauthclient.Metadata{
		Issuer:                            srv.Issuer,
		TokenEndpoint:                     srv.TokenURL,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"},
	}
	s.cfg.HTTP.RootCAs = srv.RootCAs()
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	srv.SetHook(func(r *http.Request) { // shows what reaches the token endpoint
		if r.URL.Path != tokenPath {
			return
		}
		id, _, basic := r.BasicAuth()
		inBody := r.ParseForm() == nil && r.PostForm.Has("client_secret")
		fmt.Fprintf(stderr, "demo: token request from client %q: HTTP Basic %v, secret in the body %v\n", id, basic, inBody)
	})
	dir, err := os.MkdirTemp("", "orange-demo-")
	if err != nil {
		return fail(err)
	}
	s.secretFile = filepath.Join(dir, "client-secret")
	if err := os.WriteFile(s.secretFile, []byte(oauthtest.ServiceSecret+"\n"), 0o600); err != nil {
		os.RemoveAll(dir)
		return fail(err)
	}

	// The API accepts a token only when the server says, by introspection,
	// that it is active for audience "api" with the route's scope.
	checker, err := demoapi.New(ctx, srv)
	if err != nil {
		os.RemoveAll(dir)
		return fail(err)
	}
	checker.Seen = demoTokenSeen
	need := checker.Require
	mux := http.NewServeMux()
	mux.Handle("GET /v1/contacts", need(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"contacts":2}`)
	}))
	mux.Handle("GET /v1/admin", need(oauthtest.ScopeAPIWrite, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"admin":true}`)
	}))
	api := httptest.NewTLSServer(mux)
	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	s.apiRoots = pool
	// The second call needs api.write, which this client did not ask for:
	// it shows the typed insufficient_scope error.
	s.apiURLs = []string{api.URL + "/v1/contacts", api.URL + "/v1/admin"}
	fmt.Fprintf(stderr, "demo: authorization server %s, API %s, secret in a 0600 file\n", srv.Issuer, api.URL)
	return func() { api.Close(); srv.Close(); os.RemoveAll(dir) }, nil
}

// demoTokenSeen, when set (by tests), receives each bearer token the demo
// API receives, so that a test can check none of them was printed.
var demoTokenSeen func(string)
