package oauthclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestRefreshOmitsScope: against the OP configured to grant fewer scopes
// than asked (it withholds api.write, as providers with granular consent
// do), login then refresh succeeds, the refresh form carries no scope, and
// the granted scopes are recorded. A narrowing refresh (a subset) works
// and keeps the recorded grant; a
// widening one is refused before any request (S10).
func TestRefreshOmitsScope(t *testing.T) {
	srv := startAS(t, oauthtest.Options{WithheldScopes: []string{oauthtest.ScopeAPIWrite}})
	ctx := context.Background()
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead, oauthtest.ScopeAPIWrite},
		HTTP:   strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice")
	granted := toks.Scopes()
	if slices.Contains(granted, oauthtest.ScopeAPIWrite) || !slices.Contains(granted, oauthtest.ScopeAPIRead) {
		t.Fatalf("granted %v: the server did not narrow the grant, the test would prove nothing", granted)
	}
	var mu sync.Mutex
	var forms []url.Values
	srv.SetHook(func(r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		f, _ := url.ParseQuery(string(b))
		mu.Lock()
		forms = append(forms, f)
		mu.Unlock()
	})
	lastForm := func() url.Values {
		mu.Lock()
		defer mu.Unlock()
		return forms[len(forms)-1]
	}

	store := &tokenstore.Memory{}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: "k"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); err != nil {
		t.Fatalf("refresh after a narrowed grant: %v", err)
	}
	if f := lastForm(); f.Get("grant_type") != "refresh_token" || f.Has("scope") {
		t.Fatalf("refresh form %v: want no scope parameter", f)
	}
	rec, err := engine.LoadRecord(ctx, store, "k")
	if err != nil || slices.Contains(rec.Scopes, oauthtest.ScopeAPIWrite) || !slices.Contains(rec.Scopes, oauthtest.ScopeAPIRead) {
		t.Fatalf("recorded scopes %v (%v), want the granted set", rec, err)
	}
	if got := src.Scopes(); !slices.Equal(got, rec.Scopes) {
		t.Fatalf("Source.Scopes = %v, want %v", got, rec.Scopes)
	}

	// Narrowing to a subset of the grant works, and is recorded.
	narrow, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: "k",
		Scopes: []string{"openid", oauthtest.ScopeAPIRead}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := narrow.Token(); err != nil {
		t.Fatalf("narrowing refresh: %v", err)
	}
	if f := lastForm(); f.Get("scope") != "openid "+oauthtest.ScopeAPIRead {
		t.Fatalf("narrowing refresh sent scope %q", f.Get("scope"))
	}
	if s := narrow.Scopes(); !slices.Equal(s, rec.Scopes) {
		t.Fatalf("recorded %v after narrowing, want the grant %v kept", s, rec.Scopes)
	}

	// Widening beyond the grant is refused before any request.
	before := srv.TokenRequests("refresh_token")
	wide, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: "k",
		Scopes: []string{"openid", oauthtest.ScopeAPIWrite}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wide.Token(); !errors.Is(err, strictnet.ErrPolicy) || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("widening refresh: %v, want a policy refusal about scope", err)
	}
	if n := srv.TokenRequests("refresh_token"); n != before {
		t.Fatalf("%d refresh requests for a widening refresh, want none", n-before)
	}
}
