package clientcredentials_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// A backend service calls an API with client credentials: the token is
// cached in memory, refreshed ahead of expiry by one request at a time, and
// sent only in the Authorization header, only to the allowed origin. The
// in-process server stands in for the provider, and the demo API checks
// the token by introspection.
func Example_clientCredentials() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	demo, err := demoapi.New(ctx, srv)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/invoices", demo.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[{"id":1}]`)
	}))
	api := httptest.NewTLSServer(mux)
	defer api.Close()
	apiRoots := x509.NewCertPool()
	apiRoots.AddCert(api.Certificate())

	// In production the deployment sets the secret (or use secret.FromFile).
	os.Setenv("SERVICE_CLIENT_SECRET", oauthtest.ServiceSecret)
	clientSecret, err := secret.FromEnv("SERVICE_CLIENT_SECRET")
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:       srv.Issuer,
		ClientID:     oauthtest.ClientService,
		ClientSecret: clientSecret,
		Scopes:       []string{oauthtest.ScopeAPIRead},
		HTTP:         strictnet.Config{RootCAs: srv.RootCAs()}, // production: nil, the system roots
	})
	if err != nil {
		log.Fatal(err)
	}
	src := client.ClientCredentials(oauthclient.GrantOptions{})
	httpc, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{api.URL},
		HTTP:           strictnet.Config{RootCAs: apiRoots},
	})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 { // the second call reuses the cached token
		resp, err := httpc.Get(api.URL + "/v1/invoices")
		var scopeErr *validate.InsufficientScopeError
		switch {
		case errors.As(err, &scopeErr):
			log.Fatalf("the API wants scope %q", scopeErr.Scope)
		case err != nil:
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	fmt.Println("token requests:", srv.TokenRequests("client_credentials"))

	// A request to another origin never gets the token.
	_, err = httpc.Get("https://elsewhere.example/steal")
	fmt.Println("other origin refused:", errors.Is(err, strictnet.ErrPolicy))
	// Output:
	// 200 [{"id":1}]
	// 200 [{"id":1}]
	// token requests: 1
	// other origin refused: true
}
