package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/internal/registration"
	"github.com/oauthsafe/oauthsafe/internal/storekey"
	"github.com/oauthsafe/oauthsafe/secret"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/pkg/browser"
)

// This file is the resource-first side of the CLI: `oauthsafe login URL`
// and `oauthsafe token URL` with nothing but a resource's URL (an MCP
// server, an API). Discovery, registration and scopes come from the
// resource (package resourceclient); the profile then names the issuer
// and client found, so token, status, logout, accounts and the agent
// treat it like any other.

// resourceRedirect is the redirect URI a resource-first login registers:
// the loopback receiver's, whose port the server ignores (RFC 8252 §7.3).
const resourceRedirect = "http://127.0.0.1/callback"

// parseFlagsResource parses args that may hold one resource URL, before
// or after the flags. It returns the URL ("" when there is none).
func parseFlagsResource(e *env, fs *flag.FlagSet, args []string) (resource string, code int, ok bool) {
	if code, ok := parseFlagsN(e, fs, args, 1<<30); !ok {
		return "", code, false
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return "", 0, true
	}
	if u, err := url.Parse(rest[0]); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", e.usageError(fs.Name(), "unexpected argument %q (the one argument is a resource URL, https://…)", clean(rest[0])), false
	}
	if code, ok := parseFlagsN(e, fs, rest[1:], 0); !ok {
		return "", code, false
	}
	return rest[0], 0, true
}

// resourceProfileName is the profile a resource's login is saved under
// when --profile is not given: readable (host and path) and unique (a
// hash of the whole URL).
func resourceProfileName(resource string) string {
	sum := sha256.Sum256([]byte(resource))
	base := resource
	if u, err := url.Parse(resource); err == nil {
		base = u.Host + u.Path
	}
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), "_.-")
	if len(name) > 40 {
		name = name[:40]
	}
	return "r-" + name + "-" + hex.EncodeToString(sum[:4])
}

// resourceProfileFor picks the profile of a command given a resource URL:
// --profile when set, else the resource's own profile.
func resourceProfileFor(fs *flag.FlagSet, profileFlag *string, resource string) {
	if resource != "" && !flagSet(fs, "profile") {
		*profileFlag = resourceProfileName(resource)
	}
}

// resourceLogin are the login flags a resource-first login uses.
type resourceLogin struct {
	profile       string
	noBrowser     bool
	listen        string
	timeout       time.Duration
	store         string
	storeFile     string
	caFile        string
	scopeCeiling  []string // nil: no ceiling
	allowLoopback bool
}

// runResourceLogin is `oauthsafe login URL`.
func runResourceLogin(ctx context.Context, e *env, resource string, o resourceLogin) int {
	p, code, ok := o.newProfile(e, resource)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout+30*time.Second)
	defer cancel()
	store, code := workingStore(ctx, e, p)
	if store == nil {
		return code
	}
	if err := o.loginAtResource(ctx, e, resource, p, store); err != nil {
		return e.fail(fmt.Errorf("login: %w", err))
	}
	p.LoggedInAt = time.Now().UTC().Truncate(time.Second)
	if err := saveProfile(o.profile, p); err != nil {
		return e.fail(fmt.Errorf("login: saving the profile: %w", err))
	}
	if c, err := newClient(ctx, e, p); err == nil {
		_ = saveMetadata(o.profile, c)
	}
	agentForget(ctx, e, o.profile)
	if _, err := engine.LoadRecord(ctx, store, p.storeKey(o.profile)); errors.Is(err, tokenstore.ErrNotFound) {
		e.errorf("login: the server issued no refresh token; `oauthsafe token` will ask for a new login")
	}
	printResourceLoggedIn(e, resource, o.profile, p)
	return exitOK
}

// newProfile is the profile of a resource-first login before the
// resource names its issuer and client: the store and the CA file.
func (o *resourceLogin) newProfile(e *env, resource string) (p *profile, code int, ok bool) {
	if _, err := profilePath(o.profile); err != nil {
		return nil, e.usageError("login", "%v", err), false
	}
	p = &profile{Resource: resource, CAFile: o.caFile, Store: o.store, StoreFile: o.storeFile, AllowLoopbackHTTP: o.allowLoopback}
	if p.StoreFile != "" {
		abs, err := filepath.Abs(p.StoreFile)
		if err != nil {
			return nil, e.usageError("login", "--store-file: %v", err), false
		}
		p.StoreFile = abs
	}
	if p.Store == storeKeyring {
		p.Store = ""
	}
	return p, exitOK, true
}

// loginAtResource runs the resource-first login: discovery from the
// resource, registration and the code flow through the loopback
// receiver, the client and tokens kept in store; p gets the issuer,
// client and resource found.
func (o *resourceLogin) loginAtResource(ctx context.Context, e *env, resource string, p *profile, store tokenstore.Store) error {
	hc, err := p.httpConfig(e)
	if err != nil {
		return err
	}
	l := callback.Loopback{Listen: o.listen, Timeout: o.timeout, Out: e.stderr}
	if !o.noBrowser {
		if browserUsable(e) {
			l.Open = openBrowser(e)
		} else {
			fmt.Fprintln(e.stderr, "No browser can be opened here: open the URL below yourself.")
		}
	}
	rc, err := resourceclient.New(ctx, resourceclient.Config{
		Resource:         resource,
		Store:            store,
		ClientName:       "oauthsafe CLI",
		RedirectURL:      resourceRedirect,
		Loopback:         l,
		ScopeCeiling:     o.scopeCeiling,
		WantRefreshToken: true,
		HTTP:             hc,
		ConfirmIssuer: func(_ context.Context, issuer string) error {
			fmt.Fprintf(e.stderr, "%s asks you to sign in at %s.\n", clean(resource), clean(issuer))
			return nil
		},
	})
	if err != nil {
		return err
	}
	s, err := rc.Login(ctx)
	if err != nil {
		return err
	}
	p.Issuer, p.ClientID, p.Resources = s.Issuer, s.ClientID, []string{s.Resource}
	return nil
}

// printResourceLoggedIn says on stderr where the login went and where
// the refresh token is.
func printResourceLoggedIn(e *env, resource, name string, p *profile) {
	where := "the OS keyring"
	if p.storeKind() == storeFile {
		where = "the encrypted token file"
	}
	fmt.Fprintf(e.stderr, "Logged in at %s for %s (profile %q); the refresh token is in %s.\n", clean(p.Issuer), clean(resource), name, where)
}

// workingStore opens p's store and checks that it works (a throwaway
// write, read and delete) before a login: on failure it reports why and
// returns nil with the exit code.
func workingStore(ctx context.Context, e *env, p *profile) (tokenstore.Store, int) {
	store, err := openStore(e, p, true)
	if err == nil {
		err = probeStore(ctx, store)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, e.fail(ctx.Err())
		}
		e.errorf("the %s store does not work: %s; %s", p.storeKind(), describe(err), storeAdvice(p.storeKind(), err))
		return nil, exitError
	}
	return store, exitOK
}

// httpConfig is the strict client configuration of a profile: its CA
// file, and plain http to loopback hosts when the login allowed it (a
// warning on stderr says so, once per client).
func (p *profile) httpConfig(e *env) (strictnet.Config, error) {
	var hc strictnet.Config
	if p.CAFile != "" {
		pool, err := loadCAFile(p.CAFile)
		if err != nil {
			return hc, err
		}
		hc.RootCAs = pool
	}
	if p.AllowLoopbackHTTP {
		hc.AllowLoopbackHTTP = true
		hc.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return hc, nil
}

// resourceClient completes cfg for a resource-first profile: the client
// registered dynamically at its issuer (kept in the store, secret
// included) when it is one, and plain http to loopback hosts when the
// login allowed it.
func resourceClient(ctx context.Context, e *env, p *profile, cfg *oauthclient.Config) error {
	hc, err := p.httpConfig(e)
	if err != nil {
		return err
	}
	cfg.HTTP.AllowLoopbackHTTP, cfg.HTTP.Logger = hc.AllowLoopbackHTTP, hc.Logger
	if p.Resource == "" {
		return nil
	}
	store, err := openStore(e, p, e.stdin != nil)
	if err != nil {
		return err
	}
	// The client resourceclient registered dynamically there, if any.
	b, err := store.Get(ctx, storekey.Registration(p.Issuer, resourceRedirect))
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil // pre-registered or a metadata document: a public client
	case err != nil:
		return err
	}
	r, err := registration.Parse(b, p.Issuer)
	if err != nil {
		return fmt.Errorf("%w: %w", tokenstore.ErrCorrupt, err)
	}
	if r.ClientID != p.ClientID {
		return nil
	}
	// The registration's own secret, or none: never one from elsewhere.
	cfg.ClientSecret = secret.Value{}
	if r.ClientSecret != "" {
		if cfg.ClientSecret, err = secret.FromReader(strings.NewReader(r.ClientSecret)); err != nil {
			return fmt.Errorf("%w: %w", tokenstore.ErrCorrupt, err)
		}
	}
	cfg.AuthMethod = r.AuthMethod
	return nil
}

// openBrowser opens a URL in the user's browser, keeping stdout for
// tokens only (pkg/browser copies the opener's output to its Stdout).
func openBrowser(e *env) func(string) error {
	return func(u string) error {
		browser.Stdout, browser.Stderr = e.stderr, e.stderr
		return browser.OpenURL(u)
	}
}

// printResourceStatus adds to `status` what a resource-first login and
// --allow-loopback-http change.
func printResourceStatus(w io.Writer, st *statusJSON) {
	if st.ResourceURL != "" {
		fmt.Fprintf(w, "Resource:   %s (issuer and client discovered from it)\n", clean(st.ResourceURL))
	}
	if st.AllowLoopbackHTTP {
		fmt.Fprintf(w, "Loopback:   plain http to localhost, 127.0.0.0/8 and ::1 allowed (--allow-loopback-http)\n")
	}
}
