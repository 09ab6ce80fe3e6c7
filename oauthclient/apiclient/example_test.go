package apiclient_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"golang.org/x/oauth2"
)

// New makes the API client of a token source: the token goes only to the
// allowed origins, only in the Authorization header. Requests that would
// send it anywhere else are refused before anything leaves the process.
// (clientcredentials.NewSource or oauthclient.Client.TokenSource gives the
// source in a real program.)
func ExampleNew() {
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-0123456789", TokenType: "Bearer"})
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = api.Get("https://evil.example/collect")
	fmt.Println("other origin:", errors.Is(err, apiclient.ErrOriginNotAllowed))
	_, err = api.Get("http://api.example.com/v1/items")
	fmt.Println("plain http:", errors.Is(err, apiclient.ErrOriginNotAllowed))
	_, err = api.Get("https://api.example.com/v1/items?access_token=at-0123456789")
	fmt.Println("token in the URL:", errors.Is(err, apiclient.ErrTokenInURL))
	// Output:
	// other origin: true
	// plain http: true
	// token in the URL: true
}
