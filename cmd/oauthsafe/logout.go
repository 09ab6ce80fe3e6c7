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

const logoutHelp = `
Usage: oauthsafe logout [RESOURCE-URL | --profile NAME]

Tells the agent to forget the profile's access token, revokes the stored
refresh token at the server (RFC 7009), then deletes it from the store, even if the server could not be reached (the exit
status is then 1). The profile itself is kept, so the next login needs no
flags. Holds the refresh lock, so a concurrent ` + "`oauthsafe token`" + ` cannot
write the token back.

Examples:
  oauthsafe logout
  oauthsafe logout --profile work
`

func runLogout(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	profileFlag := fs.String("profile", currentProfile(), "profile `NAME` saved by login")
	fs.Usage = usageFunc(e, fs, logoutHelp)
	resource, code, ok := parseFlagsResource(e, fs, args)
	if !ok {
		return code
	}
	resourceProfileFor(fs, profileFlag, resource)
	p, err := loadProfile(*profileFlag)
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// The agent forgets the profile's access token first, whatever happens next.
	agentForget(ctx, e, *profileFlag)
	store, err := openStore(e, p, true)
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	cfg := tokenstore.LogoutConfig{Store: store, Key: p.storeKey(*profileFlag)}
	c, cerr := cachedClient(ctx, e, *profileFlag, p)
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
	// And again: a token call between the first forget and the delete may
	// have handed the agent a fresh access token.
	agentForget(ctx, e, *profileFlag)
	// The profile keeps the client (for the next login), not the login.
	p.LoggedInAt = time.Time{}
	if err := saveProfile(*profileFlag, p); err != nil {
		e.errorf("logout: updating the profile: %v", err)
	}
	fmt.Fprintf(e.stderr, "Logged out of %s (profile %q).\n", p.Issuer, *profileFlag)
	if cerr != nil {
		return exitError
	}
	return exitOK
}
