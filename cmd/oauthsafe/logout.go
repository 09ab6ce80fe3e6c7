package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func init() {
	register(command{name: "logout", summary: "revoke the refresh token at the server and delete it from the keyring", run: runLogout})
}

const logoutHelp = `
Usage: oauthsafe logout [--profile NAME]

Revokes the stored refresh token at the server (RFC 7009), then deletes it
from the OS keyring, even if the server could not be reached (the exit
status is then 1). The profile itself is kept, so the next login needs no
flags. Holds the refresh lock, so a concurrent ` + "`oauthsafe token`" + ` cannot
write the token back.

Examples:
  oauthsafe logout
  oauthsafe logout --profile work
`

func runLogout(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	profileFlag := fs.String("profile", defaultProfile, "profile `NAME` saved by login")
	fs.Usage = usageFunc(e, fs, logoutHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	p, err := loadProfile(*profileFlag)
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cfg := tokenstore.LogoutConfig{Store: newStore(), Key: p.storeKey(*profileFlag)}
	c, cerr := newClient(ctx, e, p)
	if cerr != nil {
		e.errorf("logout: cannot reach the server to revoke (%v); deleting the local copy only", cerr)
	} else if c.Metadata().RevocationEndpoint != "" {
		cfg.Revoke = func(ctx context.Context, rt string) error {
			return c.Revoke(ctx, rt, oauthclient.HintRefreshToken)
		}
	} else {
		e.errorf("logout: the server offers no revocation endpoint; deleting the local copy only")
	}
	err = tokenstore.Logout(ctx, cfg)
	if errors.Is(err, tokenstore.ErrRevocationFailed) {
		e.errorf("logout: %v", err)
		return exitError
	}
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	fmt.Fprintf(e.stderr, "Logged out of %s (profile %q).\n", p.Issuer, *profileFlag)
	if cerr != nil {
		return exitError
	}
	return exitOK
}
