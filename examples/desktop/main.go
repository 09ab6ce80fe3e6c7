// Command desktop is a desktop or CLI tool that logs its user in through the
// browser with a loopback redirect (RFC 8252), keeps the refresh token in
// the OS keyring and calls an API with fresh access tokens held in memory.
//
//	go run ./examples/desktop -issuer https://id.example.com -client-id my-cli \
//	    -api https://api.example.com/me
//
// The client must be registered as a public (native) client with the
// redirect URI http://127.0.0.1/callback (any port). Run it twice: the
// second run needs no browser, it refreshes with the keyring's refresh token.
// With -demo it runs against the embedded test server, with the browser part
// played programmatically and an in-memory store instead of the keyring.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/authserver"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
	"github.com/pkg/browser"
)

func main() {
	issuer := flag.String("issuer", "", "issuer URL")
	clientID := flag.String("client-id", "", "public client ID")
	api := flag.String("api", "", "API URL to call (default: the userinfo endpoint)")
	demo := flag.Bool("demo", false, "run against the embedded test server")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	cfg := oauthclient.Config{Issuer: *issuer, ClientID: *clientID, Scopes: []string{"openid", "profile", "offline_access"}}
	var store tokenstore.Store = &keyring.Store{Service: "oauthsafe-desktop-example"}
	open := func(u string) error { browser.Stdout = io.Discard; return browser.OpenURL(u) }
	if *demo {
		srv, err := authserver.Start(authserver.Options{})
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Close()
		cfg.Issuer, cfg.ClientID, cfg.HTTP.RootCAs = srv.Issuer, authserver.ClientNative, srv.RootCAs()
		store = &tokenstore.Memory{}  // demo only: a real tool keeps refresh tokens in the keyring
		open = func(u string) error { // the "browser": sign in as alice, follow the redirect
			go func() {
				cb, err := srv.Login(ctx, u, "alice")
				if err == nil {
					var resp *http.Response
					if resp, err = http.Get(cb); err == nil {
						resp.Body.Close()
					}
				}
				if err != nil {
					log.Print(err)
				}
			}()
			return nil
		}
	}
	client, err := oauthclient.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if *api == "" {
		*api = client.Metadata().UserinfoEndpoint
	}

	// The account is remembered by profile name until the first login
	// tells us the subject.
	key := tokenstore.ProfileKey(cfg.Issuer, cfg.ClientID, "default")
	tsc := oauthclient.TokenSourceConfig{Store: store, Key: key}
	src, err := client.TokenSource(ctx, tsc, nil) // resume from the stored refresh token
	if err != nil {
		log.Fatal(err)
	}
	if _, err := src.TokenContext(ctx); errors.Is(err, tokenstore.ErrLoginRequired) {
		// No usable refresh token: log in through the browser.
		l := &callback.Loopback{Client: client, Open: open} // prints the URL to stderr too
		tokens, err := l.Login(ctx)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("logged in as %s", tokens.Subject())
		// Stores the new refresh token, then serves the login's access token.
		if src, err = client.TokenSource(ctx, tsc, tokens); err != nil {
			log.Fatal(err)
		}
	} else if err != nil {
		log.Fatal(err)
	}

	u, _ := url.Parse(*api)
	httpc, err := oauthclient.NewAPIClient(src, oauthclient.APIConfig{
		AllowedOrigins: []string{u.Scheme + "://" + u.Host},
		HTTP:           oauthclient.HTTPConfig{RootCAs: cfg.HTTP.RootCAs},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := httpc.Get(*api)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("%s -> %s %s\n", *api, resp.Status, strings.TrimSpace(string(body)))
}
