package callback_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// A desktop or CLI tool logs its user in through the browser: the receiver
// listens on 127.0.0.1 on an ephemeral port, prints the URL (and opens it
// with Open), and accepts exactly one callback that passes the state,
// error and issuer checks. Here the in-process server logs alice in, and a
// plain HTTP client plays the browser that follows the redirect back.
func ExampleLoopback_Login() {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   srv.Issuer,
		ClientID: oauthtest.ClientNative, // a public client registered with http://127.0.0.1/callback
		Scopes:   []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:     strictnet.Config{RootCAs: srv.RootCAs()}, // production: nil, the system roots
	})
	if err != nil {
		log.Fatal(err)
	}
	browser := func(authURL string) error { // production: Open: browser.Open, or nil to print the URL
		go func() {
			redirect, err := srv.Login(ctx, authURL, "alice")
			if err != nil {
				log.Print(err)
				return
			}
			if resp, err := http.Get(redirect); err == nil { // to the receiver on 127.0.0.1
				resp.Body.Close()
			}
		}()
		return nil
	}
	l := &callback.Loopback{Client: client, Open: browser, Out: io.Discard}
	tokens, err := l.Login(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as", tokens.Subject())
	fmt.Println("scopes:", strings.Join(tokens.Scopes(), " "))
	// Output:
	// signed in as sub-alice-7f3a
	// scopes: openid offline_access api.read
}
