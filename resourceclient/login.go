package resourceclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// session is one authorization of the resource: the issuer, the client
// there, the token source and the API transport that sends its tokens.
type session struct {
	f         *found
	cl        *client
	oc        *oauthclient.Client // nil for a Grant
	src       oauth2.TokenSource
	api       http.RoundTripper // an apiclient client's transport
	requested []string          // the scopes asked for
	granted   []string          // the scopes granted at the login (nil: as requested)
	key       string            // storekey.Resource of the refresh token
}

func (s *session) public() *Session {
	return &Session{Resource: s.f.resource, Issuer: s.f.issuer, ClientID: s.cl.id, Scopes: s.scopes(), StoreKey: s.key}
}

// scopes are the scopes granted as last known.
func (s *session) scopes() []string {
	if ts := engine.SourceOf(s.src); ts != nil {
		if sc := ts.Scopes(); sc != nil {
			return sc
		}
	}
	if s.granted != nil {
		return slices.Clone(s.granted)
	}
	return slices.Clone(s.requested)
}

func (s *session) revoke(ctx context.Context, refreshToken string) error {
	return s.oc.Revoke(ctx, refreshToken, "refresh_token")
}

// authMode says whether an authorization may resume a stored token and
// whether it may open the browser.
type authMode int

const (
	authAuto       authMode = iota // resume from the store, else the browser
	authForce                      // the browser, even with a stored token
	authResumeOnly                 // the store only: ErrLoginRequired when empty
)

// current returns the session, resuming or authorizing when there is none.
func (c *Client) current(ctx context.Context) (*session, error) {
	if s := c.sess.Load(); s != nil {
		return s, nil
	}
	resp, err := c.probe(ctx)
	if err != nil {
		return nil, err
	}
	return c.authorize(ctx, resp, authAuto, nil)
}

// resumed returns the session, resuming it from the store when there is
// none in memory; it never opens the browser.
func (c *Client) resumed(ctx context.Context) (*session, error) {
	if s := c.sess.Load(); s != nil {
		return s, nil
	}
	resp, err := c.probe(ctx)
	if err != nil {
		return nil, err
	}
	return c.authorize(ctx, resp, authResumeOnly, nil)
}

// probe asks the resource for its challenge with a GET without a token:
// its 401 (body closed, headers kept), or nil for any other answer.
func (c *Client) probe(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Resource, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.plain.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusUnauthorized {
		return nil, nil
	}
	return resp, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// authorize runs the chain from resp (the resource's 401, or nil): it
// discovers, picks or registers the client, and resumes the stored token
// or runs a new authorization. prev is the session whose token the
// resource refused (nil for none): the same authorization is then not
// resumed but run again.
func (c *Client) authorize(ctx context.Context, resp *http.Response, mode authMode, prev *session) (*session, error) {
	if resp != nil && resp.Body != nil {
		drain(resp)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.sess.Load(); cur != nil && cur != prev && mode != authForce {
		return cur, nil // another request authorized meanwhile
	}
	f, err := c.discover(ctx, resp)
	if err != nil {
		return nil, err
	}
	scopes := c.scopesFor(f, f.scopes)
	if c.cfg.Grant != nil {
		return c.grantSession(ctx, f, scopes)
	}
	confirmed := false
	cl, err := c.clientFor(ctx, f, false)
	if errors.Is(err, tokenstore.ErrLoginRequired) && mode != authResumeOnly {
		if err := c.confirm(ctx, f.issuer); err != nil {
			return nil, err
		}
		confirmed = true
		cl, err = c.clientFor(ctx, f, true)
	}
	if err != nil {
		return nil, err
	}
	key := storekey.Resource(f.resource, f.issuer, cl.id)
	if mode != authForce && (prev == nil || prev.key != key) {
		s, err := c.resume(ctx, f, cl, key, scopes)
		if err == nil || mode == authResumeOnly || !errors.Is(err, tokenstore.ErrLoginRequired) && !errors.Is(err, tokenstore.ErrCorrupt) {
			return s, err // a store that fails is reported, not answered with a new login
		}
	}
	if mode == authResumeOnly {
		return nil, tokenstore.ErrLoginRequired
	}
	if !confirmed {
		if err := c.confirm(ctx, f.issuer); err != nil {
			return nil, err
		}
	}
	return c.login(ctx, f, cl, scopes)
}

// confirm shows the issuer to the caller before anything is sent to it.
func (c *Client) confirm(ctx context.Context, issuer string) error {
	if c.cfg.ConfirmIssuer == nil {
		return nil
	}
	return c.cfg.ConfirmIssuer(ctx, issuer)
}

// scopesFor is the scope request: want within the ceiling, and
// offline_access when wanted and listed by the server.
func (c *Client) scopesFor(f *found, want []string) []string {
	var out []string
	for _, s := range union(want, nil) {
		if c.cfg.ScopeCeiling == nil || slices.Contains(c.cfg.ScopeCeiling, s) {
			out = append(out, s)
		}
	}
	if c.cfg.WantRefreshToken && slices.Contains(f.md.ScopesSupported, "offline_access") &&
		(c.cfg.ScopeCeiling == nil || slices.Contains(c.cfg.ScopeCeiling, "offline_access")) {
		out = union(out, []string{"offline_access"})
	}
	return out
}

// oauthClient is the oauthclient.Client of cl at f's issuer, with f's
// metadata (no second discovery).
func (c *Client) oauthClient(ctx context.Context, f *found, cl *client, scopes []string) (*oauthclient.Client, error) {
	md := f.md
	return oauthclient.New(ctx, oauthclient.Config{
		Issuer:       f.issuer,
		ClientID:     cl.id,
		ClientSecret: cl.secret,
		PrivateKey:   cl.signer,
		KeyID:        cl.kid,
		AuthMethod:   cl.method,
		RedirectURL:  c.redirectURL(),
		Scopes:       scopes,
		Metadata:     &md,
		HTTP:         c.cfg.HTTP,
		Now:          c.cfg.Now,
		DPoP:         f.dpop,
	})
}

// resume builds a session on the refresh token stored under key.
func (c *Client) resume(ctx context.Context, f *found, cl *client, key string, scopes []string) (*session, error) {
	rec, err := engine.LoadRecord(ctx, c.store, key)
	if errors.Is(err, tokenstore.ErrNotFound) {
		return nil, tokenstore.ErrLoginRequired
	}
	if err != nil {
		return nil, err
	}
	oc, err := c.oauthClient(ctx, f, cl, scopes)
	if err != nil {
		return nil, err
	}
	src, err := oc.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: c.store, Key: key, Resource: []string{f.resource}, Logger: c.cfg.Logger}, nil)
	if err != nil {
		return nil, err
	}
	return c.install(f, cl, oc, src, scopes, rec.Scopes, key)
}

// login runs a new authorization in the browser; a dynamic registration
// the server no longer knows (invalid_client) is redone once.
func (c *Client) login(ctx context.Context, f *found, cl *client, scopes []string) (*session, error) {
	for attempt := 0; ; attempt++ {
		oc, err := c.oauthClient(ctx, f, cl, scopes)
		if err != nil {
			return nil, err
		}
		c.log(ctx, "oauthsafe: authorizing", "issuer", f.issuer, "client", cl.kind, "scopes", len(scopes))
		tokens, err := c.browser(ctx, oc, f)
		var ae *oauthclient.AuthError
		if errors.As(err, &ae) && ae.Code == "invalid_client" && cl.kind == "dynamic" && attempt == 0 {
			if err := c.forget(ctx, cl); err != nil {
				return nil, err
			}
			if cl, err = c.register(ctx, f, cl.key); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		key := storekey.Resource(f.resource, f.issuer, cl.id)
		if tokens.OAuth2Token().RefreshToken == "" {
			// No refresh token: an older one stored for the resource must
			// not outlive this login.
			if err := c.store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Delete(ctx) }); err != nil {
				return nil, err
			}
		}
		src, err := oc.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: c.store, Key: key, Resource: []string{f.resource}, Logger: c.cfg.Logger}, tokens)
		if err != nil {
			return nil, err
		}
		return c.install(f, cl, oc, src, scopes, tokens.Scopes(), key)
	}
}

// browser runs the browser step of one authorization.
func (c *Client) browser(ctx context.Context, oc *oauthclient.Client, f *found) (*oauthclient.Tokens, error) {
	opts := oauthclient.StartOptions{Resource: []string{f.resource}}
	if c.cfg.Browser == nil {
		l := c.cfg.Loopback
		l.Client, l.StartOptions = oc, opts
		return l.Login(ctx)
	}
	p, authURL, err := oc.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	landed, err := c.cfg.Browser(ctx, authURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBrowser, err)
	}
	if landed == nil {
		return nil, fmt.Errorf("%w: no redirect URL", ErrBrowser)
	}
	return oc.Exchange(ctx, p, landed.Query())
}

// install makes s the current session.
func (c *Client) install(f *found, cl *client, oc *oauthclient.Client, src oauth2.TokenSource, requested, granted []string, key string) (*session, error) {
	origin := c.res.Scheme + "://" + c.res.Host
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{origin}, HTTP: c.cfg.HTTP, Now: c.cfg.Now})
	if err != nil {
		return nil, err
	}
	s := &session{f: f, cl: cl, oc: oc, src: src, api: api.Transport, requested: slices.Clone(requested), granted: slices.Clone(granted), key: key}
	c.sess.Store(s)
	return s, nil
}

// grantSession gets the token source from Config.Grant.
func (c *Client) grantSession(ctx context.Context, f *found, scopes []string) (*session, error) {
	if err := c.confirm(ctx, f.issuer); err != nil {
		return nil, err
	}
	src, err := c.cfg.Grant.TokenSource(ctx, Server{Resource: f.resource, Issuer: f.issuer, Metadata: f.md, Scopes: slices.Clone(scopes), HTTP: c.cfg.HTTP, DPoP: f.dpop})
	if err != nil {
		return nil, err
	}
	return c.install(f, &client{kind: "grant"}, nil, src, scopes, nil, "")
}

// stepUp re-authorizes s with the scopes granted and those the resource
// requires (need), within the ceiling: the attempt-th re-authorization of
// one request. When that asks for nothing new (the resource wants a scope
// already granted, or one beyond the ceiling), no authorization can help:
// the request fails with a *StepUpError at once.
func (c *Client) stepUp(ctx context.Context, s *session, need []string, attempt int) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.sess.Load(); cur != nil && cur != s {
		return cur, nil // another request stepped up meanwhile
	}
	have := union(s.scopes(), s.requested)
	scopes := c.scopesFor(s.f, union(s.scopes(), need))
	if len(union(have, scopes)) == len(have) {
		return nil, &StepUpError{Attempts: attempt - 1, Scopes: need}
	}
	c.log(ctx, "oauthsafe: step-up", "issuer", s.f.issuer, "scopes", len(scopes))
	if c.cfg.Grant != nil {
		return c.grantSession(ctx, s.f, scopes)
	}
	return c.login(ctx, s.f, s.cl, scopes)
}

func (c *Client) log(ctx context.Context, msg string, args ...any) {
	if c.cfg.Logger != nil {
		c.cfg.Logger.InfoContext(ctx, msg, args...)
	}
}

// union returns the scopes of a then those of b not in a, without repeats.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(slices.Clone(a), b...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
