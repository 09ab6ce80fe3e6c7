package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

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

// logoutOptions are the flags and the argument of `oauthsafe logout`.
type logoutOptions struct {
	profile string
	// resource is the URL of a resource-first profile ("" for none).
	resource string
}

func runLogout(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseLogoutOptions(e, args)
	if !ok {
		return code
	}
	p, err := loadProfile(o.profile)
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// The agent forgets the profile's access token first, whatever happens next.
	agentForget(ctx, e, o.profile)
	store, err := openStore(e, p, true)
	if err != nil {
		return e.fail(fmt.Errorf("logout: %w", err))
	}
	cfg := tokenstore.LogoutConfig{Store: store, Key: p.storeKey(o.profile)}
	cerr := revokeAtServer(ctx, e, o.profile, p, &cfg)
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
	agentForget(ctx, e, o.profile)
	keepClientOnly(e, o.profile, p)
	fmt.Fprintf(e.stderr, "Logged out of %s (profile %q).\n", p.Issuer, o.profile)
	if cerr != nil {
		return exitError
	}
	return exitOK
}

// parseLogoutOptions parses logout's flags and resource URL; ok is false
// with the exit code when the command ends there (--help, a usage error).
func parseLogoutOptions(e *env, args []string) (o *logoutOptions, code int, ok bool) {
	o = &logoutOptions{}
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	fs.StringVar(&o.profile, "profile", currentProfile(), "profile `NAME` saved by login")
	fs.Usage = usageFunc(e, fs, logoutHelp)
	if o.resource, code, ok = parseFlagsResource(e, fs, args); !ok {
		return nil, code, false
	}
	resourceProfileFor(fs, &o.profile, o.resource)
	return o, exitOK, true
}

// revokeAtServer sets cfg to revoke the refresh token at the server when
// it offers revocation, saying on stderr when it cannot; the error is the
// client's that could not be built (the local copy is deleted anyway).
func revokeAtServer(ctx context.Context, e *env, name string, p *profile, cfg *tokenstore.LogoutConfig) error {
	c, cerr := cachedClient(ctx, e, name, p)
	if cerr != nil {
		e.errorf("logout: cannot reach the server to revoke (%v); deleting the local copy only", cerr)
	} else if c.Metadata().RevocationEndpoint != "" {
		cfg.Revoke = func(ctx context.Context, rt string) error {
			return c.Revoke(ctx, rt, "refresh_token")
		}
	} else {
		e.errorf("logout: the server offers no revocation endpoint; deleting the local copy only")
	}
	return cerr
}

// keepClientOnly saves the profile without its login: it keeps the
// client for the next login.
func keepClientOnly(e *env, name string, p *profile) {
	p.LoggedInAt = time.Time{}
	if err := saveProfile(name, p); err != nil {
		e.errorf("logout: updating the profile: %v", err)
	}
}
