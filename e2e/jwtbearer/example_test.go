package jwtbearer_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// A workload with no stored secret calls an API: the platform writes a
// short-lived signed token to a file (here the in-process server's
// workload issuer stands in for Kubernetes), the JWT-bearer grant trades
// it for an access token, DPoP-bound because the server lists DPoP
// algorithms, and the API client proves possession on each call.
func Example_jwtBearer() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	platform, err := srv.NewWorkloadIssuer("https://cluster.example/workloads")
	if err != nil {
		log.Fatal(err)
	}
	token, err := platform.Sign("system:serviceaccount:shop:orders", srv.Issuer, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "workload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		log.Fatal(err)
	}
	demo, err := demoapi.New(ctx, srv)
	if err != nil {
		log.Fatal(err)
	}
	api := httptest.NewTLSServer(demo.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "[]")
	}))
	defer api.Close()
	apiRoots := x509.NewCertPool()
	apiRoots.AddCert(api.Certificate())

	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   srv.Issuer,
		ClientID: oauthtest.ClientNative,                   // no secret: the assertion is the credential
		HTTP:     strictnet.Config{RootCAs: srv.RootCAs()}, // production: nil, the system roots
	})
	if err != nil {
		log.Fatal(err)
	}
	src := client.JWTBearer(assertion.File(tokenFile), // read again when the platform rotates it
		oauthclient.GrantOptions{Scopes: []string{oauthtest.ScopeAPIRead}})
	httpc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: apiRoots}})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := httpc.Get(api.URL + "/v1/orders")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	tok, err := src.TokenContext(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, tok.Type())
	// Output: 200 DPoP
}
