package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// demo prints what was checked and what was blocked. It never prints a token.
type demo struct {
	w      io.Writer
	tmp    string // scratch directory (refresh lock files)
	failed bool
}

func (d *demo) section(title string) { fmt.Fprintf(d.w, "\n== %s\n", title) }
func (d *demo) ok(format string, args ...any) {
	fmt.Fprintf(d.w, "  ok       "+format+"\n", args...)
}
func (d *demo) blocked(format string, args ...any) {
	fmt.Fprintf(d.w, "  blocked  "+format+"\n", args...)
}
func (d *demo) fail(format string, args ...any) {
	d.failed = true
	fmt.Fprintf(d.w, "  FAILED   "+format+"\n", args...)
}

// expectBlocked reports an attack that must fail with want and reach no endpoint.
func (d *demo) expectBlocked(what string, err, want error, extra string) {
	if err != nil && errors.Is(err, want) {
		d.blocked("%s: %v%s", what, err, extra)
		return
	}
	d.fail("%s was not blocked (err = %v)", what, err)
}

func runDemo(ctx context.Context, e *env, args []string) int {
	if code, ok := parseDemoFlags(e, args); !ok {
		return code
	}
	// The embedded server's library logs request errors through the default
	// slog logger; the attacks below provoke some on purpose.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	tmp, err := os.MkdirTemp("", "oauthsafe-demo-")
	if err != nil {
		e.errorf("demo: %v", err)
		return exitError
	}
	defer os.RemoveAll(tmp)
	d := &demo{w: e.stdout, tmp: tmp}
	if err := d.run(ctx); err != nil {
		e.errorf("demo: %v", err)
		return exitError
	}
	if d.failed {
		e.errorf("demo: some checks failed")
		return exitError
	}
	fmt.Fprintln(d.w, "\nAll checks passed; all attacks were blocked.")
	return exitOK
}

// parseDemoFlags parses the demo's arguments (none but --help); ok is
// false with the exit code when the demo ends there.
func parseDemoFlags(e *env, args []string) (code int, ok bool) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, `Usage: oauthsafe demo

Starts a real OpenID Provider in process on 127.0.0.1 (with its own CA), runs
the authorization-code flow, refresh and client credentials against it with
the login completed programmatically, and tries the classic attacks. Prints
each check and each blocked attack; never prints a token.

Example:
  go run ./cmd/oauthsafe demo`)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return exitOK, true
}

// run starts the embedded server and runs the sections in order: each
// checks a flow and tries the attacks it stops.
func (d *demo) run(ctx context.Context) error {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		return fmt.Errorf("starting the embedded server: %w", err)
	}
	defer srv.Close()
	fmt.Fprintf(d.w, "Embedded OpenID Provider (zitadel op) at %s, TLS with its own CA.\n", srv.Issuer)
	c, err := d.discoverySection(ctx, srv)
	if err != nil {
		return err
	}
	toks, err := d.codeFlowSection(ctx, srv, c)
	if err != nil {
		return err
	}
	if err := d.webSection(ctx, srv); err != nil {
		return err
	}
	if err := d.loopbackSection(ctx, srv); err != nil {
		return err
	}
	logout, err := d.refreshSection(ctx, srv, c, toks)
	if err != nil {
		return err
	}
	svc, err := d.serviceSection(ctx, srv)
	if err != nil {
		return err
	}
	if err := d.apiSection(ctx, srv, svc); err != nil {
		return err
	}
	if err := d.dpopSection(ctx, srv); err != nil {
		return err
	}
	if err := d.parSection(ctx, srv); err != nil {
		return err
	}
	return logout(ctx)
}

// discoverySection builds the web client (discovery through the strict
// HTTP/TLS profile) and shows the configurations it refuses.
func (d *demo) discoverySection(ctx context.Context, srv *oauthtest.Server) (*oauthclient.Client, error) {
	webSecret, err := secret.FromReader(strings.NewReader(oauthtest.WebSecret))
	if err != nil {
		return nil, err
	}
	cfg := oauthclient.Config{
		Issuer:       srv.Issuer,
		ClientID:     oauthtest.ClientWeb,
		ClientSecret: webSecret,
		RedirectURL:  oauthtest.WebRedirectURI,
		Scopes:       []string{"openid", "profile", "email", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:         strictnet.Config{RootCAs: srv.RootCAs()},
	}

	d.section("Strict HTTP/TLS profile and discovery")
	c, err := oauthclient.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	md := c.Metadata()
	d.ok("issuer in the discovery document equals the configured issuer exactly")
	d.ok("every endpoint is https (token, JWKS, revocation, introspection, userinfo, device)")
	d.ok("server supports PKCE S256 (%s) and response_type=code", strings.Join(md.CodeChallengeMethodsSupported, ","))
	d.ok("server advertises RFC 9207 iss in authorization responses: %v", md.AuthorizationResponseIssParameter)
	d.ok("client authentication: exactly one method, %s", c.Config().AuthMethod)

	bad := cfg
	bad.Issuer = strings.Replace(srv.Issuer, "https://", "http://", 1)
	_, err = oauthclient.New(ctx, bad)
	d.expectBlocked("plain-http issuer", err, strictnet.ErrPolicy, "")
	bad = cfg
	bad.HTTP.Wrap = func(http.RoundTripper) http.RoundTripper {
		return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	_, err = oauthclient.New(ctx, bad)
	d.expectBlocked("a tracing wrapper replacing the transport with an InsecureSkipVerify one", err, strictnet.ErrPolicy, "")
	bad = cfg
	bad.HTTP.RootCAs = nil
	if _, err = oauthclient.New(ctx, bad); err != nil {
		d.blocked("server certificate from an untrusted CA: %v", errors.Unwrap(err))
	} else {
		d.fail("untrusted CA accepted")
	}
	bad = cfg
	bad.RedirectURL = "http://localhost:8080/callback"
	_, err = oauthclient.New(ctx, bad)
	d.expectBlocked("http redirect URI on a host name", err, strictnet.ErrPolicy, "")
	return c, nil
}

// codeFlowSection runs the authorization-code flow, forged callbacks
// first (refused before any token request), and returns the login.
func (d *demo) codeFlowSection(ctx context.Context, srv *oauthtest.Server, c *oauthclient.Client) (*oauthclient.Tokens, error) {
	d.section("Authorization-code flow")
	p, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		return nil, err
	}
	q := mustQuery(authURL)
	d.ok("state: %d bits from crypto/rand, kept in the pending flow", 8*b64len(q.Get("state")))
	d.ok("PKCE: code_challenge_method=%s", q.Get("code_challenge_method"))
	d.ok("nonce: %d bits from crypto/rand", 8*b64len(q.Get("nonce")))
	d.ok("response_type=%s, scope=%q", q.Get("response_type"), q.Get("scope"))
	d.ok("the pending flow prints as %v", p)

	cb, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		return nil, fmt.Errorf("login at the embedded server: %w", err)
	}
	params := mustQuery(cb)
	d.ok("user alice logged in at the server; the callback carries code, state and iss")
	d.forgedCallbacks(ctx, srv, c, p, params)

	toks, err := c.Exchange(ctx, p, params)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	id := toks.IDToken()
	d.ok("state matched in constant time; iss equals the issuer; then exactly one token request")
	d.ok("token_type %s understood; granted scope %q within the request", toks.OAuth2Token().TokenType, strings.Join(toks.Scopes(), " "))
	d.ok("ID token: signature (JWKS), iss, aud=%s, exp %s, nonce matched, sub=%s",
		strings.Join(id.Audience, ","), id.Expiry.UTC().Format("15:04:05Z"), id.Subject)
	d.ok("tokens print as %v", toks)
	d.algNone(ctx, c)

	_, err = c.Exchange(ctx, p, params)
	d.expectBlocked("replay of the same authorization code", err, oauthclient.ErrAuthorizationServer, "")
	return toks, nil
}

// forgedCallbacks presents callbacks an attacker forged from the real
// one (params): each is refused and no token request is made.
func (d *demo) forgedCallbacks(ctx context.Context, srv *oauthtest.Server, c *oauthclient.Client, p *oauthclient.Pending, params url.Values) {
	noToken := func() string {
		return fmt.Sprintf(" (token requests reaching the server: %d)", srv.TokenRequests("authorization_code"))
	}
	forged := cloneValues(params)
	forged.Set("state", "attacker-chosen")
	_, err := c.Exchange(ctx, p, forged)
	d.expectBlocked("callback with a forged state (CSRF / login injection)", err, oauthclient.ErrStateMismatch, noToken())
	forged = cloneValues(params)
	forged.Del("state")
	_, err = c.Exchange(ctx, p, forged)
	d.expectBlocked("callback without state", err, oauthclient.ErrStateMismatch, noToken())
	forged = cloneValues(params)
	forged.Set("iss", "https://evil.example")
	_, err = c.Exchange(ctx, p, forged)
	d.expectBlocked("callback with another issuer's iss (mix-up)", err, oauthclient.ErrIssuerMismatch, noToken())
	forged = cloneValues(params)
	forged.Del("iss")
	_, err = c.Exchange(ctx, p, forged)
	d.expectBlocked("callback without iss although advertised", err, oauthclient.ErrIssuerMismatch, noToken())
	forged = url.Values{"error": {"access_denied"}, "state": {"attacker-chosen"}}
	_, err = c.Exchange(ctx, p, forged)
	d.expectBlocked("forged error callback with a wrong state", err, oauthclient.ErrStateMismatch, noToken())
	if n := srv.TokenRequests("authorization_code"); n != 0 {
		d.fail("%d token requests were made for forged callbacks", n)
	}
}

// refreshSection refreshes the login with rotation and shows the spent
// refresh token refused; it returns the logout section, which revokes
// the rotated refresh token at the end of the demo.
func (d *demo) refreshSection(ctx context.Context, srv *oauthtest.Server, c *oauthclient.Client, toks *oauthclient.Tokens) (func(context.Context) error, error) {
	d.section("Refresh with rotation")
	mem := &tokenstore.Memory{} // the CLI uses keyring.Store: the OS keyring
	key := tokenstore.Key(srv.Issuer, c.Config().ClientID, toks.Subject())
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: mem, Key: key}, toks)
	if err != nil {
		return nil, err
	}
	src.Invalidate(toks.OAuth2Token()) // as if the access token had expired
	cur, err := src.Token()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	rec, err := engine.LoadRecord(ctx, mem, key)
	if err == nil && rec.RefreshToken != toks.OAuth2Token().RefreshToken {
		d.ok("the server rotated the refresh token; the new one was stored inside the refresh transaction (granted: %s)", strings.Join(src.Scopes(), " "))
	} else {
		d.fail("refresh token was not rotated (%v)", err)
	}
	spent, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{}, toks) // memory only, holding the spent token
	if err != nil {
		return nil, err
	}
	spent.Invalidate(toks.OAuth2Token())
	_, err = spent.Token()
	d.expectBlocked("reuse of the spent refresh token", err, tokenstore.ErrLoginRequired, "")
	return func(ctx context.Context) error {
		d.section("Logout")
		if err := c.Revoke(ctx, rec.RefreshToken, "refresh_token"); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		d.ok("refresh token revoked at the server (RFC 7009)")
		src.Invalidate(cur)
		_, err := src.Token()
		d.expectBlocked("use of the revoked refresh token", err, tokenstore.ErrLoginRequired, "")
		return nil
	}, nil
}

// serviceSection gets a client-credentials token for the service client,
// which the API section then uses.
func (d *demo) serviceSection(ctx context.Context, srv *oauthtest.Server) (*oauthclient.Client, error) {
	d.section("Service: client credentials")
	svcSecret, err := secret.FromReader(strings.NewReader(oauthtest.ServiceSecret))
	if err != nil {
		return nil, err
	}
	svc, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientService, ClientSecret: svcSecret,
		Scopes: []string{oauthtest.ScopeAPIRead}, HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		return nil, err
	}
	st, err := svc.ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* the bearer story; DPoP has its own section */}).TokenContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("client credentials: %w", err)
	}
	d.ok("client_credentials with %s: a Bearer token valid until %s, kept in memory only", svc.Config().AuthMethod, st.Expiry.UTC().Format("15:04:05Z"))
	return svc, nil
}

func mustQuery(raw string) url.Values {
	u, err := url.Parse(raw)
	if err != nil {
		return url.Values{}
	}
	return u.Query()
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

func b64len(s string) int {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0
	}
	return len(b)
}
