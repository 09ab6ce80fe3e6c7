package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func init() {
	register(command{name: "token", summary: "print a valid access token on stdout (refreshing with the keyring's refresh token)", run: runToken})
}

const tokenHelp = `
Usage: oauthsafe token [--profile NAME]
       oauthsafe token --client-credentials --issuer URL --client-id ID --client-secret-file F [--scope S] [--ca-file PEM]

Prints a valid access token on stdout, followed by a newline, and nothing
else. Access tokens are never written to disk, so each call refreshes with
the refresh token kept in the OS keyring; a rotated refresh token is saved
before the new access token is printed, under a lock shared with other
oauthsafe processes. When the refresh token is no longer valid, it exits
with status 3: run ` + "`oauthsafe login`" + `.

With --client-credentials there is no user and nothing is stored: the
client authenticates with the secret from --client-secret-file (mode 0600)
or the OAUTHSAFE_CLIENT_SECRET environment variable.

Examples:
  curl -H "Authorization: Bearer $(oauthsafe token)" https://api.example.com/me
  oauthsafe token --profile work
  oauthsafe token --client-credentials --issuer https://id.example.com \
      --client-id reporting --client-secret-file ~/.config/reporting/secret --scope api.read
`

func runToken(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	var cf clientFlags
	cf.bind(fs, "")
	profileFlag := fs.String("profile", defaultProfile, "profile `NAME` saved by login")
	cc := fs.Bool("client-credentials", false, "use the client credentials grant (no user, nothing stored)")
	fs.Usage = usageFunc(e, fs, tokenHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if *cc {
		if cf.issuer == "" || cf.clientID == "" {
			e.errorf("token: --client-credentials needs --issuer and --client-id")
			return exitUsage
		}
		if cf.secretFile == "" && e.getenv(envClientSecret) == "" {
			e.errorf("token: --client-credentials needs --client-secret-file or %s", envClientSecret)
			return exitUsage
		}
		p := &profile{Issuer: cf.issuer, ClientID: cf.clientID, Scopes: strings.Fields(cf.scope), CAFile: cf.caFile, ClientSecretFile: cf.secretFile}
		c, err := newClient(ctx, e, p)
		if err != nil {
			return e.fail(err)
		}
		tok, err := c.ClientCredentials(ctx, oauthclient.ClientCredentialsOptions{})
		if err != nil {
			return e.fail(fmt.Errorf("token: %w", err))
		}
		fmt.Fprintln(e.stdout, tok.AccessToken)
		return exitOK
	}
	if cf.issuer != "" || cf.clientID != "" || cf.scope != "" || cf.caFile != "" || cf.secretFile != "" {
		e.errorf("token: --issuer, --client-id, --scope, --ca-file and --client-secret-file go with --client-credentials; the profile has them otherwise")
		return exitUsage
	}
	p, err := loadProfile(*profileFlag)
	if err != nil {
		return e.fail(fmt.Errorf("token: %w", err))
	}
	c, err := newClient(ctx, e, p)
	if err != nil {
		return e.fail(err)
	}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: newStore(), Key: p.storeKey(*profileFlag)}, nil)
	if err != nil {
		return e.fail(err)
	}
	tok, err := src.TokenContext(ctx)
	if err != nil {
		var te *tokenstore.TemporaryError
		if errors.As(err, &te) {
			err = te.Err // the retry time means nothing to a one-shot process
		}
		return e.fail(fmt.Errorf("token: %w", err))
	}
	fmt.Fprintln(e.stdout, tok.AccessToken)
	// Remember the expiry for `status` (the token itself is not kept).
	p.AccessTokenExpiry = tok.Expiry.UTC().Truncate(time.Second)
	if err := saveProfile(*profileFlag, p); err != nil {
		e.errorf("token: could not update the profile: %v", err)
	}
	return exitOK
}
