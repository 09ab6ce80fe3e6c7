package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// dpopSection shows sender-constrained tokens (RFC 9449): a login whose
// tokens are bound to a key only this process holds, an API that checks
// the proof, and the same token refused when it is stolen.
func (d *demo) dpopSection(ctx context.Context, srv *oauthtest.Server) error {
	d.section("DPoP: tokens bound to a key (RFC 9449)")
	api, captured, err := startDPoPAPI(ctx, srv)
	if err != nil {
		return err
	}
	defer api.Close()
	c, toks, err := d.dpopLogin(ctx, srv, api.URL)
	if err != nil {
		return err
	}
	if ok, err := d.dpopAPICall(api, toks); !ok || err != nil {
		return err
	}
	d.stolenDPoPToken(ctx, api, captured)
	return d.dpopRefresh(ctx, srv, c, toks)
}

// startDPoPAPI starts an API that requires DPoP-bound tokens for
// api.read; captured returns the Authorization and DPoP headers of the
// last request, as an attacker who saw it would have them.
func startDPoPAPI(ctx context.Context, srv *oauthtest.Server) (*httptest.Server, func() (auth, proof string), error) {
	var mu sync.Mutex
	var lastAuth, lastProof string
	mux := http.NewServeMux()
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastAuth, lastProof = r.Header.Get("Authorization"), r.Header.Get("DPoP")
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	api.StartTLS()
	checker, err := demoapi.NewResource(ctx, srv, demoapi.ResourceConfig{Resource: api.URL, RequireDPoP: true})
	if err != nil {
		api.Close()
		return nil, nil, err
	}
	mux.Handle("/v1/read", checker.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	return api, func() (string, string) {
		mu.Lock()
		defer mu.Unlock()
		return lastAuth, lastProof
	}, nil
}

// dpopLogin logs in with a new DPoP key for the API (resource) and
// returns the client and the bound tokens.
func (d *demo) dpopLogin(ctx context.Context, srv *oauthtest.Server, resource string) (*oauthclient.Client, *oauthclient.Tokens, error) {
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: srv.RootCAs()}, DPoP: true,
	})
	if err != nil {
		return nil, nil, err
	}
	p, authURL, err := c.Start(ctx, oauthclient.StartOptions{Resource: []string{resource}})
	if err != nil {
		return nil, nil, err
	}
	d.ok("a new ES256 key for this login; dpop_jkt=%s binds the code to it", mustQuery(authURL).Get("dpop_jkt"))
	cb, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		return nil, nil, err
	}
	toks, err := c.Exchange(ctx, p, mustQuery(cb))
	if err != nil {
		return nil, nil, fmt.Errorf("DPoP exchange: %w", err)
	}
	d.ok("token_type %s: access and refresh token bound to the key (cnf.jkt); the key prints as part of %v", toks.OAuth2Token().TokenType, toks)
	return c, toks, nil
}

// dpopAPICall calls the API with the bound token through the safe
// client, which adds a fresh proof; ok is false when the API refused it.
func (d *demo) dpopAPICall(api *httptest.Server, toks *oauthclient.Tokens) (ok bool, err error) {
	pool := api.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	hc, err := apiclient.New(oauth2.StaticTokenSource(toks.OAuth2Token()), apiclient.Config{
		AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool},
	})
	if err != nil {
		return false, err
	}
	resp, err := hc.Get(api.URL + "/v1/read")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.fail("API refused the legitimate DPoP call: %d", resp.StatusCode)
		return false, nil
	}
	d.ok("API call with Authorization: DPoP and a fresh proof (jti, iat, htm, htu, ath): 200")
	return true, nil
}

// stolenDPoPToken replays the captured token and proof as a thief would:
// as a Bearer token, with its proof, at another method. Each is refused.
func (d *demo) stolenDPoPToken(ctx context.Context, api *httptest.Server, captured func() (auth, proof string)) {
	lastAuth, stolenProof := captured()
	stolenAT := strings.TrimPrefix(lastAuth, "DPoP ")
	attack := func(what, method, path string, h http.Header) {
		req, _ := http.NewRequestWithContext(ctx, method, api.URL+path, nil)
		req.Header = h
		resp, err := api.Client().Do(req)
		if err != nil {
			d.fail("%s: %v", what, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			d.blocked("%s: the API answered 401", what)
		} else {
			d.fail("%s: the API answered %d", what, resp.StatusCode)
		}
	}
	attack("stolen DPoP token sent as a Bearer token", "GET", "/v1/read", http.Header{"Authorization": {"Bearer " + stolenAT}})
	attack("stolen token replayed with its captured proof", "GET", "/v1/read", http.Header{"Authorization": {"DPoP " + stolenAT}, "Dpop": {stolenProof}})
	attack("stolen token and proof aimed at another method", "DELETE", "/v1/read", http.Header{"Authorization": {"DPoP " + stolenAT}, "Dpop": {stolenProof}})
}

// dpopRefresh refreshes with the key kept in the record, then shows the
// refresh token refused without it.
func (d *demo) dpopRefresh(ctx context.Context, srv *oauthtest.Server, c *oauthclient.Client, toks *oauthclient.Tokens) error {
	// The record keeps the key with the refresh token it binds (S27), in
	// one store value: a refresh in this or any later process proves it.
	store := &tokenstore.Memory{}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: "demo-dpop"}, toks)
	if err != nil {
		return err
	}
	src.Invalidate(toks.OAuth2Token())
	tok, err := src.Token()
	if err != nil || tok.TokenType != "DPoP" {
		d.fail("refresh with the stored key: %v", err)
		return nil
	}
	rec, err := engine.LoadRecord(ctx, store, "demo-dpop")
	if err != nil {
		return err
	}
	d.ok("refreshed with a proof of the key stored in the record: %v", rec)

	stolen := *rec
	stolen.DPoPKey = engine.PrivateKey{}
	thiefStore := &tokenstore.Memory{}
	if err := engine.SaveRecord(ctx, thiefStore, "stolen", &stolen); err != nil {
		return err
	}
	thief, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		return err
	}
	ts, err := thief.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: thiefStore, Key: "stolen"}, nil)
	if err != nil {
		return err
	}
	if _, err := ts.Token(); err != nil {
		d.blocked("stolen refresh token used without the key: %v", err)
	} else {
		d.fail("a bound refresh token was accepted without a proof")
	}
	return nil
}

// parSection shows pushed authorization requests (RFC 9126): the browser
// URL carries no parameter of the request.
func (d *demo) parSection(ctx context.Context, srv *oauthtest.Server) error {
	d.section("Pushed authorization requests (RFC 9126)")
	srv.SetRequirePAR(true)
	defer srv.SetRequirePAR(false)
	cfg := oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid"}, HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	}
	c, err := oauthclient.New(ctx, cfg)
	if err != nil {
		return err
	}
	p, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		return err
	}
	q := mustQuery(authURL)
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	d.ok("the request was pushed to %s; the browser URL carries only %s", c.Metadata().PushedAuthorizationRequestEndpoint, strings.Join(sortStrings(keys), " and "))
	cb, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		return err
	}
	if _, err := c.Exchange(ctx, p, mustQuery(cb)); err != nil {
		return fmt.Errorf("PAR exchange: %w", err)
	}
	d.ok("login completed through the request_uri")
	if _, err := srv.Login(ctx, authURL, "alice"); err != nil {
		d.blocked("second use of the same request_uri")
	} else {
		d.fail("a request_uri was used twice")
	}
	md := c.Metadata()
	md.PushedAuthorizationRequestEndpoint, md.RequirePushedAuthorizationRequests = "", false
	cfg.Metadata = &md
	plain, err := oauthclient.New(ctx, cfg)
	if err != nil {
		return err
	}
	_, plainURL, err := plain.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		return err
	}
	if _, err := srv.Login(ctx, plainURL, "alice"); err != nil {
		d.blocked("an authorization request in the URL at a server that requires PAR")
	} else {
		d.fail("a server requiring PAR accepted a plain request")
	}
	return nil
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}
