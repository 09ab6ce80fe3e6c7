package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const loginHelp = `
Usage: oauthsafe login --issuer URL --client-id ID [--store keyring|file] [--resource URI]... [--dpop] [flags]
       oauthsafe login RESOURCE-URL [--store keyring|file] [--scope CEILING] [--allow-loopback-http] [flags]

Logs in with the authorization-code flow and PKCE: a receiver listens on
127.0.0.1 on a free port, the browser is opened on the authorization URL
(which is always printed too), and the callback is checked before anything
is kept. Where no browser can be opened (SSH, a container), login says so
and waits for the printed URL to be opened by hand:
it never changes the grant by itself.
With --device the device grant (RFC 8628) is used instead: open the
printed address on any device and enter the code before the deadline
shown (with its time zone).
--issuer and --client-id go together: without both, the saved profile's
client is reused (and named on stderr).

The refresh token, with the subject and the scopes the server granted,
goes to the OS keyring (--store keyring, the default) or, by choice, to a
passphrase-encrypted file (--store file; the passphrase comes from
OAUTHSAFE_FILE_PASSPHRASE or is asked on the terminal with echo off, never
from a flag), keyed by issuer, client and subject; the access token stays
in memory. The store is checked (a throwaway write, read and delete)
before the browser opens. The profile (issuer, client id, requested
scopes, resources, store, CA file; never a secret) is saved in the user
config directory, with the server's metadata cached for an hour.
--resource (repeatable) asks for tokens for that API (RFC 8707) on the
authorization request and on every refresh.
--dpop binds the tokens to a new key (DPoP, RFC 9449): a stolen access or
refresh token is useless without it. The private key is kept with the
refresh token, sealed in the same store (never in the profile, never
printed); ` + "`oauthsafe token`" + ` and the agent prove every refresh with it. The
choice is remembered in the profile. A DPoP-bound access token is usable
only by a client that proves possession of the key, so kubectl
(--output exec-credential) and git-credential refuse such a profile.
A client secret, if the client has one, comes from --client-secret-file or
the OAUTHSAFE_CLIENT_SECRET environment variable, never from a flag value.

With a resource URL alone (an MCP server, an API), the resource says
where to sign in: its 401 and RFC 9728 metadata name the authorization
server (shown on stderr before the browser opens), the client registers
itself there (RFC 7591, kept in the store) unless the server accepts this
tool's metadata document, and the scopes are those the resource asks for
(--scope then bounds them). The profile is named after the resource
unless --profile is given; ` + "`oauthsafe token URL`" + `, status, logout and the
agent then use it. --allow-loopback-http allows plain http to localhost,
127.0.0.0/8 and ::1 only (local and test servers; status shows it).

Examples:
  oauthsafe login --issuer https://id.example.com --client-id my-cli
  oauthsafe login https://mcp.example.com/mcp
  oauthsafe login --issuer https://id.example.com --client-id my-cli --no-browser   # over SSH
  oauthsafe login --issuer https://id.example.com --client-id my-cli --device
  OAUTHSAFE_FILE_PASSPHRASE=... oauthsafe login --issuer https://id.example.com --client-id my-cli --store file
  oauthsafe login --issuer https://id.example.com --client-id my-cli --resource https://api.example.com
  oauthsafe login --issuer https://id.example.com --client-id my-cli --dpop
  oauthsafe login --profile work --issuer https://sso.corp.example --client-id cli \
      --scope "openid offline_access api.read" --ca-file corp-ca.pem --listen 127.0.0.1:8400
`

func runLogin(ctx context.Context, e *env, args []string) (code int) {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	var cf clientFlags
	cf.bind(fs, "openid offline_access")
	profileFlag := fs.String("profile", currentProfile(), "profile `NAME` to save the login under")
	noBrowser := fs.Bool("no-browser", false, "do not open a browser: print the URL alone on one line of stderr and wait for the callback")
	device := fs.Bool("device", false, "use the device grant (RFC 8628) instead of a browser redirect")
	listen := fs.String("listen", "", "fixed loopback `address` 127.0.0.1:PORT for servers that demand one (default: a free port)")
	timeout := fs.Duration("timeout", callback.DefaultLoopbackTimeout, "how long to wait for the login")
	storeFlag := fs.String("store", storeKeyring, "where to keep the refresh token: `keyring` (the OS keyring) or file (an encrypted file)")
	storeFileFlag := fs.String("store-file", "", "`path` of the encrypted file for --store file (default: tokens.enc in the profile directory)")
	var resources stringList
	fs.Var(&resources, "resource", "RFC 8707 resource indicator `URI` to ask tokens for (repeatable)")
	dpop := fs.Bool("dpop", false, "bind the tokens to a key kept with the refresh token in the store (DPoP, RFC 9449)")
	loopbackHTTP := fs.Bool("allow-loopback-http", false, "allow plain http to localhost, 127.0.0.0/8 and ::1 (local development and test servers only; remembered in the profile)")
	fs.Usage = usageFunc(e, fs, loginHelp)
	resource, code, ok := parseFlagsResource(e, fs, args)
	if !ok {
		return code
	}
	if *storeFlag != storeKeyring && *storeFlag != storeFile {
		return e.usageError("login", "--store must be keyring or file, not %q", clean(*storeFlag))
	}
	if *storeFileFlag != "" && *storeFlag != storeFile {
		return e.usageError("login", "--store-file goes with --store file")
	}
	for _, r := range resources {
		if err := checkResource(r); err != nil {
			return e.usageError("login", "%v", err)
		}
	}
	if resource != "" {
		if cf.issuer != "" || cf.clientID != "" || cf.secretFile != "" || *device || *dpop || len(resources) > 0 {
			return e.usageError("login", "a resource URL is all a resource-first login needs: --issuer, --client-id, --client-secret-file, --resource, --device and --dpop do not go with it")
		}
		resourceProfileFor(fs, profileFlag, resource)
		var ceiling []string
		if flagSet(fs, "scope") {
			ceiling = strings.Fields(cf.scope)
		}
		return runResourceLogin(ctx, e, resource, resourceLogin{profile: *profileFlag, noBrowser: *noBrowser, listen: *listen, timeout: *timeout,
			store: *storeFlag, storeFile: *storeFileFlag, caFile: cf.caFile, scopeCeiling: ceiling, allowLoopback: *loopbackHTTP})
	}
	p := &profile{Issuer: cf.issuer, ClientID: cf.clientID, Scopes: strings.Fields(cf.scope), CAFile: cf.caFile, ClientSecretFile: cf.secretFile, Resources: resources, DPoP: *dpop}
	p.AllowLoopbackHTTP = *loopbackHTTP
	if *storeFlag == storeFile {
		p.Store = storeFile
		p.StoreFile = *storeFileFlag
		if p.StoreFile != "" {
			abs, err := filepath.Abs(p.StoreFile)
			if err != nil {
				return e.usageError("login", "--store-file: %v", err)
			}
			p.StoreFile = abs
		}
	}
	if (p.Issuer == "") != (p.ClientID == "") {
		// A client id belongs to one issuer: never pair a new issuer with
		// the profile's client id, or the reverse.
		return e.usageError("login", "--issuer and --client-id go together (give both, or neither to log in again with the saved profile)")
	}
	if p.Issuer == "" {
		// Reuse the saved profile's client when it exists.
		if old, err := loadProfile(*profileFlag); err == nil {
			fmt.Fprintf(e.stderr, "Logging in again with profile %q: client %s at %s.\n", *profileFlag, clean(old.ClientID), clean(old.Issuer))
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
			if !flagSet(fs, "resource") {
				p.Resources = old.Resources
			}
			if !flagSet(fs, "store") && !flagSet(fs, "store-file") {
				p.Store, p.StoreFile = old.Store, old.StoreFile
			}
			if !flagSet(fs, "dpop") {
				p.DPoP = old.DPoP
			}
			if !flagSet(fs, "allow-loopback-http") {
				p.AllowLoopbackHTTP = old.AllowLoopbackHTTP
			}
		} else {
			return e.usageError("login", "--issuer and --client-id are required")
		}
	}
	if *device && (*noBrowser || *listen != "") {
		return e.usageError("login", "--device cannot be combined with --no-browser or --listen")
	}
	if _, err := profilePath(*profileFlag); err != nil {
		return e.usageError("login", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+30*time.Second)
	defer cancel()
	// A failed login leaves no store file or lock it created.
	leftovers := newStoreLeftovers(p)
	defer func() {
		if code != exitOK {
			leftovers.remove()
		}
	}()
	// The store must work before the user signs in, not after.
	store, code := workingStore(ctx, e, p)
	if store == nil {
		return code
	}
	c, err := newClient(ctx, e, p)
	if err != nil {
		return e.fail(fmt.Errorf("login: %w", err))
	}

	if !*device && !*noBrowser && !browserUsable(e) {
		fmt.Fprintln(e.stderr, "No browser can be opened here: open the URL below yourself (on a machine without a browser, use --device).")
	}
	var tokens *oauthclient.Tokens
	if *device {
		tokens, err = deviceLogin(ctx, e, c, *timeout, p.Resources)
	} else {
		l := &callback.Loopback{Client: c, Listen: *listen, Timeout: *timeout, Out: e.stderr,
			StartOptions: oauthclient.StartOptions{Resource: p.Resources}}
		if !*noBrowser && browserUsable(e) {
			l.Open = openBrowser(e)
		}
		tokens, err = l.Login(ctx)
	}
	if err != nil {
		return e.fail(fmt.Errorf("login: %w", err))
	}
	_ = saveMetadata(*profileFlag, c)
	return finishLogin(ctx, e, *profileFlag, p, c, store, tokens)
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

// deadlineFormat shows a deadline with its date and time zone.
const deadlineFormat = "2006-01-02 15:04:05 MST"

// deviceLogin runs the device grant, showing the code on stderr.
func deviceLogin(ctx context.Context, e *env, c *oauthclient.Client, timeout time.Duration, resources []string) (*oauthclient.Tokens, error) {
	da, err := c.DeviceAuth(ctx, oauthclient.DeviceOptions{Resource: resources})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "To sign in, open %s on any device and enter the code:\n\n    %s\n\n", safetext.Clean(da.VerificationURI, 2048), safetext.Clean(da.UserCode, 64))
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "(or open %s)\n", safetext.Clean(da.VerificationURIComplete, 2048))
	}
	fmt.Fprintf(e.stderr, "Waiting for approval until %s (Ctrl-C to cancel)…\n", da.Expiry.Local().Format(deadlineFormat))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.DeviceToken(ctx, da)
}

// finishLogin keeps the login's record (refresh token, subject, granted
// scopes, issuer, client) in the chosen store in one store transaction,
// through the engine that will refresh it, then saves the profile
// (requested scopes and resources) and tells the agent to forget what it
// held for the profile. Nothing goes to stdout.
func finishLogin(ctx context.Context, e *env, name string, p *profile, c *oauthclient.Client, store tokenstore.Store, t *oauthclient.Tokens) int {
	old, _ := loadProfile(name)
	p.Subject = t.Subject()
	p.LoggedInAt = time.Now().UTC().Truncate(time.Second)
	key := p.storeKey(name)
	if t.RefreshToken() == "" {
		e.errorf("login: the server issued no refresh token (request the offline_access scope?); `oauthsafe token` will ask for a new login")
		// A record of an earlier login of this account would outlive
		// this one: remove it, so status and token agree with the message.
		if err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: store, Key: key}); err != nil {
			return e.fail(fmt.Errorf("login: removing the earlier refresh token from the %s store: %w", p.storeKind(), err))
		}
	} else if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, t); err != nil {
		return e.fail(fmt.Errorf("login: keeping the refresh token in the %s store: %w", p.storeKind(), err))
	}
	if old != nil {
		if oldKey := old.storeKey(name); oldKey != key || old.storeKind() != p.storeKind() || old.StoreFile != p.StoreFile {
			// Another account (or store) was used under this profile:
			// forget its refresh token locally so accounts never mix.
			oldStore, err := openStore(e, old, false)
			if err == nil {
				err = tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: oldStore, Key: oldKey})
			}
			if err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
				e.errorf("login: could not remove the previous account's refresh token: %v", err)
			}
		}
	}
	if err := saveProfile(name, p); err != nil {
		return e.fail(fmt.Errorf("login: saving the profile: %w", err))
	}
	agentForget(ctx, e, name)
	who := "(no ID token)"
	if p.Subject != "" {
		who = safetext.Quote(p.Subject, 200)
	}
	where := "the OS keyring"
	if p.storeKind() == storeFile {
		where = "the encrypted token file"
	}
	bound := ""
	if t.TokenType() == "DPoP" {
		bound = ", with the DPoP key its tokens are bound to"
	}
	fmt.Fprintf(e.stderr, "Logged in as %s at %s (profile %q); the refresh token is in %s%s.\n", who, p.Issuer, name, where, bound)
	return exitOK
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// checkResource accepts an RFC 8707 resource indicator: an absolute URI
// without a fragment.
func checkResource(r string) error {
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") || len(r) > 2048 {
		return fmt.Errorf("--resource %q is not an absolute URI without a fragment (RFC 8707)", clean(r))
	}
	return nil
}

// agentForget tells a running agent to drop what it holds for a profile
// (after login and logout). No agent running is fine.
func agentForget(ctx context.Context, e *env, name string) {
	if _, err := agentCall(ctx, e.getenv, agentRequest{Op: "forget", Profile: name}, 5*time.Second); err != nil && !errors.Is(err, errNoAgent) && !errors.Is(err, errAgentUnsupported) {
		e.errorf("could not reach the agent to forget profile %q: %v", name, err)
	}
}
