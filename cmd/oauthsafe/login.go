package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/pkg/browser"
)

func init() {
	register(command{name: "login", summary: "log in through the browser (or the device grant) and keep the refresh token in the keyring", run: runLogin})
}

const loginHelp = `
Usage: oauthsafe login --issuer URL --client-id ID [flags]

Logs in with the authorization-code flow and PKCE: a receiver listens on
127.0.0.1 on a free port, the browser is opened on the authorization URL
(which is always printed too), and the callback is checked before anything
is kept. With --device, or when no browser can be opened and the server
offers it, the device grant (RFC 8628) is used instead: open the printed
address on any device and enter the code.

The refresh token goes to the OS keyring, keyed by issuer, client and
subject; the access token stays in memory. The profile (issuer, client id,
scopes, CA file; never a secret) is saved in the user config directory.
A client secret, if the client has one, comes from --client-secret-file or
the OAUTHSAFE_CLIENT_SECRET environment variable, never from a flag value.

Examples:
  oauthsafe login --issuer https://id.example.com --client-id my-cli
  oauthsafe login --issuer https://id.example.com --client-id my-cli --no-browser   # over SSH
  oauthsafe login --issuer https://id.example.com --client-id my-cli --device
  oauthsafe login --profile work --issuer https://sso.corp.example --client-id cli \
      --scope "openid offline_access api.read" --ca-file corp-ca.pem --listen 127.0.0.1:8400
`

func runLogin(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	var cf clientFlags
	cf.bind(fs, "openid offline_access")
	profileFlag := fs.String("profile", defaultProfile, "profile `NAME` to save the login under")
	noBrowser := fs.Bool("no-browser", false, "do not open a browser: print the URL alone on one line of stderr and wait for the callback")
	device := fs.Bool("device", false, "use the device grant (RFC 8628) instead of a browser redirect")
	listen := fs.String("listen", "", "fixed loopback `address` 127.0.0.1:PORT for servers that demand one (default: a free port)")
	timeout := fs.Duration("timeout", callback.DefaultLoopbackTimeout, "how long to wait for the login")
	fs.Usage = usageFunc(e, fs, loginHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	p := &profile{Issuer: cf.issuer, ClientID: cf.clientID, Scopes: strings.Fields(cf.scope), CAFile: cf.caFile, ClientSecretFile: cf.secretFile}
	if p.Issuer == "" || p.ClientID == "" {
		// Reuse the saved profile's client when it exists.
		if old, err := loadProfile(*profileFlag); err == nil {
			p.Issuer, p.ClientID = old.Issuer, old.ClientID
			if p.CAFile == "" {
				p.CAFile = old.CAFile
			}
			if p.ClientSecretFile == "" {
				p.ClientSecretFile = old.ClientSecretFile
			}
			if !flagSet(fs, "scope") {
				p.Scopes = old.Scopes
			}
		} else {
			e.errorf("login: --issuer and --client-id are required")
			fs.Usage()
			return exitUsage
		}
	}
	if *device && (*noBrowser || *listen != "") {
		e.errorf("login: --device cannot be combined with --no-browser or --listen")
		return exitUsage
	}
	if _, err := profilePath(*profileFlag); err != nil {
		e.errorf("login: %v", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+30*time.Second)
	defer cancel()
	c, err := newClient(ctx, e, p)
	if err != nil {
		return e.fail(err)
	}

	useDevice := *device
	if !useDevice && !*noBrowser && !browserUsable(e) && c.Metadata().DeviceAuthorizationEndpoint != "" {
		fmt.Fprintln(e.stderr, "No browser available here; using the device grant (use --no-browser for a loopback login instead).")
		useDevice = true
	}
	var tokens *oauthclient.Tokens
	if useDevice {
		tokens, err = deviceLogin(ctx, e, c, *timeout)
	} else {
		l := &callback.Loopback{Client: c, Listen: *listen, Timeout: *timeout, Out: e.stderr}
		if !*noBrowser && browserUsable(e) {
			l.Open = func(u string) error {
				// pkg/browser copies the opener's output to its Stdout:
				// keep stdout for tokens only.
				browser.Stdout, browser.Stderr = e.stderr, e.stderr
				return browser.OpenURL(u)
			}
		}
		tokens, err = l.Login(ctx)
	}
	if err != nil {
		return e.fail(fmt.Errorf("login: %w", err))
	}
	return finishLogin(ctx, e, *profileFlag, p, tokens)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// browserUsable reports whether a browser can be opened on this machine:
// always on macOS and Windows, and on other systems only with a display
// (or $BROWSER), which an SSH session or a container lacks.
func browserUsable(e *env) bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	return e.getenv("DISPLAY") != "" || e.getenv("WAYLAND_DISPLAY") != "" || e.getenv("BROWSER") != ""
}

// deviceLogin runs the device grant, showing the code on stderr.
func deviceLogin(ctx context.Context, e *env, c *oauthclient.Client, timeout time.Duration) (*oauthclient.Tokens, error) {
	da, err := c.DeviceAuth(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "To sign in, open %s on any device and enter the code:\n\n    %s\n\n", safetext.Clean(da.VerificationURI, 2048), safetext.Clean(da.UserCode, 64))
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "(or open %s)\n", safetext.Clean(da.VerificationURIComplete, 2048))
	}
	fmt.Fprintf(e.stderr, "Waiting for approval until %s (Ctrl-C to cancel)…\n", da.Expiry.Local().Format(time.Kitchen))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.DeviceToken(ctx, da)
}

// finishLogin stores the record (refresh token, subject, granted scopes) in
// the keyring in one store transaction, then saves the profile. Nothing goes to stdout.
func finishLogin(ctx context.Context, e *env, name string, p *profile, t *oauthclient.Tokens) int {
	old, _ := loadProfile(name)
	p.Subject = t.Subject()
	p.LoggedInAt = time.Now().UTC().Truncate(time.Second)
	p.AccessTokenExpiry = t.Expiry().UTC().Truncate(time.Second)
	store := newStore()
	key := p.storeKey(name)
	if t.RefreshToken() == "" {
		e.errorf("login: the server issued no refresh token (request the offline_access scope?); `oauthsafe token` will ask for a new login")
	} else {
		err := tokenstore.SaveRecord(ctx, store, key, &tokenstore.Record{RefreshToken: t.RefreshToken(),
			Subject: t.Subject(), Scopes: t.Scopes(), Issuer: p.Issuer, ClientID: p.ClientID})
		if err != nil {
			return e.fail(fmt.Errorf("login: keeping the refresh token in the keyring: %w", err))
		}
	}
	if old != nil {
		if oldKey := old.storeKey(name); oldKey != key {
			// Another account was logged in under this profile: forget its
			// refresh token locally so accounts never mix.
			if err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: store, Key: oldKey}); err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
				e.errorf("login: could not remove the previous account's refresh token: %v", err)
			}
		}
	}
	if err := saveProfile(name, p); err != nil {
		return e.fail(fmt.Errorf("login: saving the profile: %w", err))
	}
	who := p.Subject
	if who == "" {
		who = "(no ID token)"
	}
	fmt.Fprintf(e.stderr, "Logged in as %s at %s (profile %q); the refresh token is in the OS keyring.\n", safetext.Quote(who, 200), p.Issuer, name)
	return exitOK
}
