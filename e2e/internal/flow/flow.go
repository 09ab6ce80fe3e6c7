// Package flow holds the steps the e2e tests share: an authorization-code
// login against the in-process server, with the browser's part played by
// the server's programmatic sign-in.
package flow

import (
	"context"
	"net/url"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// Login starts c's flow with opts, signs user in at srv, and exchanges the
// code from the redirect. It returns the tokens and the authorization URL
// the browser was sent to. Any failure ends the test.
func Login(t testing.TB, srv *oauthtest.Server, c *oauthclient.Client, opts oauthclient.StartOptions, user string) (*oauthclient.Tokens, string) {
	t.Helper()
	ctx := context.Background()
	p, authURL, err := c.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := srv.Login(ctx, authURL, user)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := c.Exchange(ctx, p, u.Query())
	if err != nil {
		t.Fatal(err)
	}
	return toks, authURL
}
