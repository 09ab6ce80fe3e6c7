package oauthclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

// syncWriter is a log destination safe for the concurrent writes of a flow.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLoggerRedacts runs a whole flow against the real server with the
// logging hook on: discovery, authorization code with PKCE, JWKS, userinfo,
// refresh, introspection, client credentials and revocation. Every call is
// logged, and the log holds no token, code, verifier, secret or body: every
// value the server received in a request is collected through its hook and
// looked for in the log.
func TestLoggerRedacts(t *testing.T) {
	srv := startAS(t, oauthtest.Options{})
	var sentMu sync.Mutex
	var sent []string // every form value and credential the server received
	srv.SetHook(func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		sentMu.Lock()
		defer sentMu.Unlock()
		for _, vs := range form {
			sent = append(sent, vs...)
		}
		for _, vs := range r.URL.Query() {
			sent = append(sent, vs...)
		}
		if a := r.Header.Get("Authorization"); a != "" {
			_, cred, _ := strings.Cut(a, " ")
			sent = append(sent, cred)
		}
	})
	var logs syncWriter
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hc := strictnet.Config{RootCAs: srv.RootCAs(), Logger: logger}
	ctx := context.Background()

	web, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientWeb, ClientSecret: secretFromEnv(t, oauthtest.WebSecret),
		RedirectURL: oauthtest.WebRedirectURI,
		Scopes:      []string{"openid", "profile", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:        hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, authURL, err := web.Start(ctx, oauthclient.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := srv.Login(ctx, authURL, oauthtest.UserAlice)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cb)
	toks, err := web.Exchange(ctx, p, u.Query())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := web.UserInfo(ctx, toks); err != nil {
		t.Fatal(err)
	}
	var rotated string // the engine's record, kept in memory here
	src, err := web.TokenSource(ctx, oauthclient.TokenSourceConfig{OnRecordChange: func(_ context.Context, r *tokenstore.Record) error {
		rotated = r.RefreshToken
		return nil
	}}, toks)
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(toks.OAuth2Token()) // as if expired: one refresh
	refreshed, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	rsClient, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientResource, ClientSecret: secretFromEnv(t, oauthtest.ResourceSecret), HTTP: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := rsClient.Introspector(validate.IntrospectionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Verify(ctx, refreshed.AccessToken); err != nil {
		t.Fatal(err)
	}
	svc, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientService, ClientSecret: secretFromEnv(t, oauthtest.ServiceSecret),
		Scopes: []string{oauthtest.ScopeAPIRead}, HTTP: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := web.Revoke(ctx, rotated, "refresh_token"); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	events := strings.Split(strings.TrimSpace(out), "\n")
	kinds := map[string]bool{}
	for _, line := range events {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		if k, ok := ev["endpoint"].(string); ok {
			kinds[k] = true
		}
	}
	if len(events) < 8 {
		t.Fatalf("%d log events for a whole flow, want one per server call:\n%s", len(events), out)
	}
	for _, k := range []string{"discovery", "token", "jwks", "userinfo", "introspection", "revocation"} {
		if !kinds[k] {
			t.Errorf("no log event for the %s endpoint (saw %v)", k, kinds)
		}
	}
	secrets := []string{
		toks.OAuth2Token().AccessToken, toks.OAuth2Token().RefreshToken, refreshed.AccessToken, rotated, st.AccessToken,
		oauthtest.WebSecret, oauthtest.ResourceSecret, oauthtest.ServiceSecret, u.Query().Get("code"), u.Query().Get("state"),
	}
	if raw, ok := toks.OAuth2Token().Extra("id_token").(string); ok {
		secrets = append(secrets, raw)
	}
	sentMu.Lock()
	for _, v := range sent {
		if len(v) >= 16 { // tokens, codes, verifiers, assertions, Basic credentials
			secrets = append(secrets, v)
		}
	}
	sentMu.Unlock()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a value to look for is empty; the flow did not run as expected")
		}
		if strings.Contains(out, s) {
			t.Errorf("the log holds a secret value (%d bytes)", len(s))
		}
	}
	for _, word := range []string{"Bearer", "Basic ", "code_verifier", "refresh_token=", "client_secret"} {
		if strings.Contains(out, word) {
			t.Errorf("the log holds %q", word)
		}
	}
}
