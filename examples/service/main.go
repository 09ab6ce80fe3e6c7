// Command service is a backend service that calls an API with the client
// credentials grant: no user, the token cached in memory and refreshed ahead
// of expiry by a single flight, sent only to the allowed API origin.
//
//	SERVICE_CLIENT_SECRET=... go run ./examples/service \
//	    -issuer https://id.example.com -client-id reporting -scope api.read \
//	    -api https://api.example.com/v1/reports
//
// The secret comes from the environment or a 0600 file (-secret-file),
// never from a flag value; or the client signs private_key_jwt assertions
// with a PEM key from a 0600 file (-key-file, -key-id). A private CA's
// certificates come from -ca-file, loaded once for the server and the API. With -demo the example starts the embedded test
// authorization server and a small local API, and runs against them.
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
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

// run is the whole program: results on stdout, never a token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "", "issuer URL")
	clientID := fs.String("client-id", "", "client ID")
	scope := fs.String("scope", "", "space-separated scopes")
	secretFile := fs.String("secret-file", "", "file (mode 0600) with the client secret; default: $SERVICE_CLIENT_SECRET")
	api := fs.String("api", "", "API URL to call")
	caFile := fs.String("ca-file", "", "PEM file of the CA certificates that sign the server's and the API's certificates (yours or root's, not writable by others); default: the system roots")
	keyFile := fs.String("key-file", "", "PEM private key (mode 0600) that signs private_key_jwt assertions, instead of a client secret")
	keyID := fs.String("key-id", "", "the kid registered for -key-file's key")
	demo := fs.Bool("demo", false, "run against an embedded authorization server and API")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg := oauthclient.Config{Issuer: *issuer, ClientID: *clientID, Scopes: strings.Fields(*scope)}
	var apiRoots *x509.CertPool
	if *demo {
		stop, err := startDemo(&cfg, api, &apiRoots, secretFile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var err error
	if *caFile != "" {
		// One pool, read and checked once, for the server and the API.
		roots, err := strictnet.RootsFromFile(*caFile)
		if err != nil {
			return err
		}
		cfg.HTTP.RootCAs, apiRoots = roots, roots
	}
	switch {
	case *keyFile != "":
		cfg.PrivateKey, err = secret.PrivateKeyFromFile(*keyFile)
		cfg.KeyID = *keyID
	case *secretFile != "":
		cfg.ClientSecret, err = secret.FromFile(*secretFile)
	default:
		cfg.ClientSecret, err = secret.FromEnv("SERVICE_CLIENT_SECRET")
	}
	if err != nil {
		return err
	}
	client, err := oauthclient.New(ctx, cfg)
	if err != nil {
		return err
	}
	u, err := url.Parse(*api)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return errors.New("-api must be an https URL")
	}
	// The token goes only to the API's origin, in the Authorization header.
	httpc, err := apiclient.New(client.ClientCredentials(oauthclient.GrantOptions{}), apiclient.Config{
		AllowedOrigins: []string{u.Scheme + "://" + u.Host},
		HTTP:           strictnet.Config{RootCAs: apiRoots},
	})
	if err != nil {
		return err
	}
	for range 2 { // the second call reuses the cached token
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, *api, nil)
		if err != nil {
			return err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return err // typed: a *validate.InsufficientScopeError (errors.As), ...
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s -> %s", *api, resp.Status)
		}
		fmt.Fprintf(stdout, "%s -> %s %s\n", *api, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// startDemo starts the embedded server and a local API that accepts only
// tokens the server says are active (RFC 7662 introspection, internal/demoapi).
func startDemo(cfg *oauthclient.Config, api *string, apiRoots **x509.CertPool, secretFile *string) (func(), error) {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		return nil, err
	}
	cfg.Issuer, cfg.ClientID, cfg.Scopes = srv.Issuer, oauthtest.ClientService, []string{oauthtest.ScopeAPIRead}
	cfg.HTTP.RootCAs = srv.RootCAs()
	*secretFile = ""
	os.Setenv("SERVICE_CLIENT_SECRET", oauthtest.ServiceSecret) // demo only: a real service gets it from its environment
	checker, err := demoapi.New(context.Background(), srv)
	if err != nil {
		srv.Close()
		return nil, err
	}
	checker.Seen = demoTokenSeen
	apiSrv := httptest.NewTLSServer(checker.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"reports":3}`)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(apiSrv.Certificate())
	*apiRoots, *api = pool, apiSrv.URL+"/v1/reports"
	return func() { apiSrv.Close(); srv.Close() }, nil
}

// demoTokenSeen, when set (by tests), receives each bearer token the demo
// API receives, so that a test can check none of them was printed.
var demoTokenSeen func(string)
