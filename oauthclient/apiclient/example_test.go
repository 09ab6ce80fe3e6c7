package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// New makes the API client of a token source: the token goes only to the
// allowed origins, only in the Authorization header. Requests that would
// send it anywhere else are refused before anything leaves the process.
// (oauthclient.Client.ClientCredentials or Client.TokenSource gives the
// source in a real program.)
func ExampleNew() {
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-0123456789", TokenType: "Bearer"})
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = api.Get("https://evil.example/collect")
	fmt.Println("other origin refused:", errors.Is(err, strictnet.ErrPolicy))
	_, err = api.Get("http://api.example.com/v1/items")
	fmt.Println("plain http refused:", errors.Is(err, strictnet.ErrPolicy))
	_, err = api.Get("https://api.example.com/v1/items?access_token=x")
	fmt.Println(err)
	// Output:
	// other origin refused: true
	// plain http refused: true
	// Get "https://api.example.com/v1/items?access_token=x": oauthsafe: refused by security policy: a bearer token must not appear in a request URL
}

// A web backend makes one Transport at start-up and, per request, a client
// for the signed-in user's token source (oauthclient.UserPool gives it in
// a real program): the connections are shared, the tokens are not.
func ExampleTransport_Client() {
	shared, err := apiclient.NewTransport(apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"alice", "bob"} {
		src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-of-" + user})
		api, err := shared.Client(src)
		if err != nil {
			log.Fatal(err)
		}
		_, err = api.Get("https://other.example/")
		fmt.Println(user, "to another origin refused:", errors.Is(err, strictnet.ErrPolicy))
	}
	// Output:
	// alice to another origin refused: true
	// bob to another origin refused: true
}

// Discover asks an API which issuer it wants; a resource that is not
// https is refused before any request is made.
func ExampleDiscover() {
	_, err := apiclient.Discover(context.Background(), apiclient.DiscoveryConfig{
		Resource:       "http://api.example.com",
		AllowedIssuers: []string{"https://login.example.com"},
	}, nil)
	fmt.Println("refused:", errors.Is(err, strictnet.ErrPolicy))
	// Output:
	// refused: true
}
