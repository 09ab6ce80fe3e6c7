package resourceclient_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// An agent is given a resource's URL and nothing else: the first call's
// 401 leads to the resource's metadata, its authorization server, a
// dynamic registration and a login, and the call is retried with the
// token. The in-process server stands in for the provider and its test
// user for the browser.
func ExampleNew() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mcp := httptest.NewUnstartedServer(mux)
	srv.StartTLS(mcp)
	defer mcp.Close()
	resource := mcp.URL + "/mcp"
	api, err := demoapi.NewResource(ctx, srv, demoapi.ResourceConfig{Resource: resource, ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	if err != nil {
		log.Fatal(err)
	}
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", api.ServeMetadata)
	mux.Handle("/mcp/tools", api.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `["search"]`)
	}))

	rc, err := resourceclient.New(ctx, resourceclient.Config{
		Resource:    resource,
		RedirectURL: "http://127.0.0.1/callback",
		// A desktop tool leaves Browser nil: the loopback receiver and the
		// user's browser. Here the test user signs in.
		Browser: func(ctx context.Context, authURL string) (*url.URL, error) {
			cb, err := srv.Login(ctx, authURL, oauthtest.UserAlice)
			if err != nil {
				return nil, err
			}
			return url.Parse(cb)
		},
		ConfirmIssuer: func(_ context.Context, issuer string) error {
			fmt.Println("sign in at the resource's issuer:", issuer == srv.Issuer)
			return nil
		},
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()}, // production: nil, the system roots
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := rc.HTTPClient().Get(resource + "/tools")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))

	_, err = rc.HTTPClient().Get(mcp.URL + "/admin") // outside the resource
	fmt.Println("outside the resource refused:", err != nil)
	// Output:
	// sign in at the resource's issuer: true
	// 200 ["search"]
	// outside the resource refused: true
}
