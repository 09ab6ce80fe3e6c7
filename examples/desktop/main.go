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
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
	"github.com/pkg/browser"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "desktop:", err)
		os.Exit(1)
	}
}

// run is the program: flags in args, results on stdout, progress (and the
// authorization URL) on stderr. It never prints a token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("desktop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "", "issuer URL")
	clientID := fs.String("client-id", "", "public client ID")
	api := fs.String("api", "", "API URL to call (default: the userinfo endpoint)")
	demo := fs.Bool("demo", false, "run against the embedded test server")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg := oauthclient.Config{Issuer: *issuer, ClientID: *clientID, Scopes: []string{"openid", "profile", "offline_access"}}
	var store tokenstore.Store = &keyring.Store{Service: "oauthsafe-desktop-example"}
	open := func(u string) error { browser.Stdout = io.Discard; return browser.OpenURL(u) }
	if *demo {
		srv, err := oauthtest.Start(oauthtest.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg.Issuer, cfg.ClientID, cfg.HTTP.RootCAs = srv.Issuer, oauthtest.ClientNative, srv.RootCAs()
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
					fmt.Fprintln(stderr, "demo browser:", err)
				}
			}()
			return nil
		}
	}
	client, err := oauthclient.New(ctx, cfg)
	if err != nil {
		return err
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
		return err
	}
	if _, err := src.TokenContext(ctx); errors.Is(err, tokenstore.ErrLoginRequired) {
		// No usable refresh token: log in through the browser.
		l := &callback.Loopback{Client: client, Open: open, Out: stderr} // prints the URL too
		tokens, err := l.Login(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "logged in as %q\n", tokens.Subject())
		// Stores the new refresh token, then serves the login's access token.
		if src, err = client.TokenSource(ctx, tsc, tokens); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}

	u, _ := url.Parse(*api)
	httpc, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{u.Scheme + "://" + u.Host},
		HTTP:           strictnet.Config{RootCAs: cfg.HTTP.RootCAs},
	})
	if err != nil {
		return err
	}
	resp, err := httpc.Get(*api)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s -> %s %s\n", *api, resp.Status, strings.TrimSpace(string(body)))
	return nil
}
