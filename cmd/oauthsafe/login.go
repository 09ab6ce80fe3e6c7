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

// loginOptions are the flags and the argument of `oauthsafe login`.
type loginOptions struct {
	client       clientFlags
	profile      string
	noBrowser    bool
	device       bool
	listen       string
	timeout      time.Duration
	store        string
	storeFile    string
	resources    stringList
	dpop         bool
	loopbackHTTP bool
	// resource is the URL of a resource-first login ("" for none).
	resource string
	// given holds the flags given on the command line: the others keep
	// the saved profile's values when logging in again.
	given map[string]bool
}

func runLogin(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseLoginOptions(e, args)
	if !ok {
		return code
	}
	if o.resource != "" {
		return runResourceLogin(ctx, e, o.resource, o.resourceLogin())
	}
	p, code, ok := o.loginProfile(e)
	if !ok {
		return code
	}
	return loginWithProfile(ctx, e, o, p)
}

// parseLoginOptions parses login's flags and resource URL and checks the
// flags that do not depend on a saved profile; ok is false with the exit
// code when the command ends there (--help, a usage error).
func parseLoginOptions(e *env, args []string) (o *loginOptions, code int, ok bool) {
	o = &loginOptions{}
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	o.bind(fs)
	fs.Usage = usageFunc(e, fs, loginHelp)
	if o.resource, code, ok = parseFlagsResource(e, fs, args); !ok {
		return nil, code, false
	}
	o.given = flagsGiven(fs)
	if code, ok := o.check(e); !ok {
		return nil, code, false
	}
	resourceProfileFor(fs, &o.profile, o.resource)
	return o, exitOK, true
}

func (o *loginOptions) bind(fs *flag.FlagSet) {
	o.client.bind(fs, "openid offline_access")
	fs.StringVar(&o.profile, "profile", currentProfile(), "profile `NAME` to save the login under")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "do not open a browser: print the URL alone on one line of stderr and wait for the callback")
	fs.BoolVar(&o.device, "device", false, "use the device grant (RFC 8628) instead of a browser redirect")
	fs.StringVar(&o.listen, "listen", "", "fixed loopback `address` 127.0.0.1:PORT for servers that demand one (default: a free port)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long to wait for the login")
	fs.StringVar(&o.store, "store", storeKeyring, "where to keep the refresh token: `keyring` (the OS keyring) or file (an encrypted file)")
	fs.StringVar(&o.storeFile, "store-file", "", "`path` of the encrypted file for --store file (default: tokens.enc in the profile directory)")
	fs.Var(&o.resources, "resource", "RFC 8707 resource indicator `URI` to ask tokens for (repeatable)")
	fs.BoolVar(&o.dpop, "dpop", false, "bind the tokens to a key kept with the refresh token in the store (DPoP, RFC 9449)")
	fs.BoolVar(&o.loopbackHTTP, "allow-loopback-http", false, "allow plain http to localhost, 127.0.0.0/8 and ::1 (local development and test servers only; remembered in the profile)")
}

// check refuses the store flags, resources and, with a resource URL, the
// flags that do not go together.
func (o *loginOptions) check(e *env) (code int, ok bool) {
	if o.store != storeKeyring && o.store != storeFile {
		return e.usageError("login", "--store must be keyring or file, not %q", clean(o.store)), false
	}
	if o.storeFile != "" && o.store != storeFile {
		return e.usageError("login", "--store-file goes with --store file"), false
	}
	for _, r := range o.resources {
		if err := checkResource(r); err != nil {
			return e.usageError("login", "%v", err), false
		}
	}
	cf := &o.client
	if o.resource != "" && (cf.issuer != "" || cf.clientID != "" || cf.secretFile != "" || o.device || o.dpop || len(o.resources) > 0) {
		return e.usageError("login", "a resource URL is all a resource-first login needs: --issuer, --client-id, --client-secret-file, --resource, --device and --dpop do not go with it"), false
	}
	return exitOK, true
}

// resourceLogin is what a resource-first login takes of the options:
// --scope, when given, bounds the scopes the resource asks for.
func (o *loginOptions) resourceLogin() resourceLogin {
	var ceiling []string
	if o.given["scope"] {
		ceiling = strings.Fields(o.client.scope)
	}
	return resourceLogin{profile: o.profile, noBrowser: o.noBrowser, listen: o.listen, timeout: o.timeout,
		store: o.store, storeFile: o.storeFile, caFile: o.client.caFile, scopeCeiling: ceiling, allowLoopback: o.loopbackHTTP}
}

// loginProfile is the profile to log in with: the flags' client, or the
// saved profile's with the flags given applied over it.
func (o *loginOptions) loginProfile(e *env) (p *profile, code int, ok bool) {
	cf := &o.client
	p = &profile{Issuer: cf.issuer, ClientID: cf.clientID, Scopes: strings.Fields(cf.scope), CAFile: cf.caFile, ClientSecretFile: cf.secretFile, Resources: o.resources, DPoP: o.dpop}
	p.AllowLoopbackHTTP = o.loopbackHTTP
	if o.store == storeFile {
		p.Store = storeFile
		p.StoreFile = o.storeFile
		if p.StoreFile != "" {
			abs, err := filepath.Abs(p.StoreFile)
			if err != nil {
				return nil, e.usageError("login", "--store-file: %v", err), false
			}
			p.StoreFile = abs
		}
	}
	if (p.Issuer == "") != (p.ClientID == "") {
		// A client id belongs to one issuer: never pair a new issuer with
		// the profile's client id, or the reverse.
		return nil, e.usageError("login", "--issuer and --client-id go together (give both, or neither to log in again with the saved profile)"), false
	}
	if p.Issuer == "" {
		if code, ok := o.mergeSavedProfile(e, p); !ok {
			return nil, code, false
		}
	}
	if o.device && (o.noBrowser || o.listen != "") {
		return nil, e.usageError("login", "--device cannot be combined with --no-browser or --listen"), false
	}
	if _, err := profilePath(o.profile); err != nil {
		return nil, e.usageError("login", "%v", err), false
	}
	return p, exitOK, true
}

// mergeSavedProfile reuses the saved profile's client, and its other
// settings where no flag was given (and named on stderr).
func (o *loginOptions) mergeSavedProfile(e *env, p *profile) (code int, ok bool) {
	old, err := loadProfile(o.profile)
	if err != nil {
		return e.usageError("login", "--issuer and --client-id are required"), false
	}
	fmt.Fprintf(e.stderr, "Logging in again with profile %q: client %s at %s.\n", o.profile, clean(old.ClientID), clean(old.Issuer))
	p.Issuer, p.ClientID = old.Issuer, old.ClientID
	if p.CAFile == "" {
		p.CAFile = old.CAFile
	}
	if p.ClientSecretFile == "" {
		p.ClientSecretFile = old.ClientSecretFile
	}
	if !o.given["scope"] {
		p.Scopes = old.Scopes
	}
	if !o.given["resource"] {
		p.Resources = old.Resources
	}
	if !o.given["store"] && !o.given["store-file"] {
		p.Store, p.StoreFile = old.Store, old.StoreFile
	}
	if !o.given["dpop"] {
		p.DPoP = old.DPoP
	}
	if !o.given["allow-loopback-http"] {
		p.AllowLoopbackHTTP = old.AllowLoopbackHTTP
	}
	return exitOK, true
}

// loginWithProfile checks the store, runs the grant and keeps the login.
// A failed login leaves no store file or lock it created.
func loginWithProfile(ctx context.Context, e *env, o *loginOptions, p *profile) (code int) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout+30*time.Second)
	defer cancel()
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
	tokens, err := o.runGrant(ctx, e, c, p)
	if err != nil {
		return e.fail(fmt.Errorf("login: %w", err))
	}
	_ = saveMetadata(o.profile, c)
	return finishLogin(ctx, e, o.profile, p, c, store, tokens)
}

// runGrant runs the device grant or the code flow through the loopback
// receiver, opening the browser where one can be opened.
func (o *loginOptions) runGrant(ctx context.Context, e *env, c *oauthclient.Client, p *profile) (*oauthclient.Tokens, error) {
	if !o.device && !o.noBrowser && !browserUsable(e) {
		fmt.Fprintln(e.stderr, "No browser can be opened here: open the URL below yourself (on a machine without a browser, use --device).")
	}
	if o.device {
		return deviceLogin(ctx, e, c, o.timeout, p.Resources)
	}
	l := &callback.Loopback{Client: c, Listen: o.listen, Timeout: o.timeout, Out: e.stderr,
		StartOptions: oauthclient.StartOptions{Resource: p.Resources}}
	if !o.noBrowser && browserUsable(e) {
		l.Open = openBrowser(e)
	}
	return l.Login(ctx)
}

// flagsGiven is the set of the flags given on the command line.
func flagsGiven(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
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
	da, err := c.DeviceAuth(ctx, resources...)
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
	if err := keepLoginRecord(ctx, e, p, c, store, p.storeKey(name), t); err != nil {
		return e.fail(err)
	}
	if old != nil {
		forgetPreviousAccount(ctx, e, name, old, p)
	}
	if err := saveProfile(name, p); err != nil {
		return e.fail(fmt.Errorf("login: saving the profile: %w", err))
	}
	agentForget(ctx, e, name)
	printLoggedIn(e, name, p, t)
	return exitOK
}

// keepLoginRecord writes the login's record under key; without a refresh
// token it says so and removes the record of an earlier login instead.
func keepLoginRecord(ctx context.Context, e *env, p *profile, c *oauthclient.Client, store tokenstore.Store, key string, t *oauthclient.Tokens) error {
	if t.OAuth2Token().RefreshToken == "" {
		e.errorf("login: the server issued no refresh token (request the offline_access scope?); `oauthsafe token` will ask for a new login")
		// A record of an earlier login of this account would outlive
		// this one: remove it, so status and token agree with the message.
		if err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: store, Key: key}); err != nil {
			return fmt.Errorf("login: removing the earlier refresh token from the %s store: %w", p.storeKind(), err)
		}
	} else if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, t); err != nil {
		return fmt.Errorf("login: keeping the refresh token in the %s store: %w", p.storeKind(), err)
	}
	return nil
}

// forgetPreviousAccount removes the refresh token of the profile's
// previous login when it was another account (or store), so accounts
// never mix.
func forgetPreviousAccount(ctx context.Context, e *env, name string, old, p *profile) {
	if oldKey := old.storeKey(name); oldKey != p.storeKey(name) || old.storeKind() != p.storeKind() || old.StoreFile != p.StoreFile {
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

// printLoggedIn says on stderr who logged in and where the refresh token is.
func printLoggedIn(e *env, name string, p *profile, t *oauthclient.Tokens) {
	who := "(no ID token)"
	if p.Subject != "" {
		who = safetext.Quote(p.Subject, 200)
	}
	where := "the OS keyring"
	if p.storeKind() == storeFile {
		where = "the encrypted token file"
	}
	bound := ""
	if t.OAuth2Token().TokenType == "DPoP" {
		bound = ", with the DPoP key its tokens are bound to"
	}
	fmt.Fprintf(e.stderr, "Logged in as %s at %s (profile %q); the refresh token is in %s%s.\n", who, p.Issuer, name, where, bound)
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
