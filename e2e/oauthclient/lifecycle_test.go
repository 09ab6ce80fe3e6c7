package oauthclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// login runs a real authorization-code flow for alice with the public client.
func login(t *testing.T, srv *oauthtest.Server, timeout time.Duration) (*oauthclient.Client, *oauthclient.Tokens) {
	t.Helper()
	ctx := context.Background()
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: srv.RootCAs(), Timeout: timeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice")
	if toks.OAuth2Token().RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return c, toks
}

// waitExpired sleeps until a token issued now with lifetime life is past
// the point where callers must wait for a refresh.
func waitExpired(life time.Duration) { time.Sleep(life + 50*time.Millisecond) }

func TestNoPlaintextRefreshToken(t *testing.T) {
	d := keyringtest.New(t)
	for _, kv := range [][2]string{{"HOME", d.Home}, {"XDG_CACHE_HOME", filepath.Join(d.Home, ".cache")}, {"XDG_CONFIG_HOME", filepath.Join(d.Home, ".config")}, {"XDG_DATA_HOME", filepath.Join(d.Home, ".local", "share")}} {
		t.Setenv(kv[0], kv[1])
	}
	keyringFile := filepath.Join(d.Home, ".local", "share", "keyrings", "login.keyring")
	before, err := os.ReadFile(keyringFile)
	if err != nil {
		t.Fatal(err)
	}
	const life = 2 * time.Second
	srv := startAS(t, oauthtest.Options{AccessTokenLifetime: life})
	c, toks := login(t, srv, 0)
	ctx := context.Background()
	store := &keyring.Store{LockDir: filepath.Join(d.Dir, "locks")}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store}, toks)
	if err != nil {
		t.Fatal(err)
	}
	waitExpired(life)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if srv.TokenRequests("refresh_token") != 1 {
		t.Fatal("the access token was not refreshed")
	}
	key := tokenstore.Key(srv.Issuer, oauthtest.ClientNative, toks.Subject())
	rotated, err := storedRT(ctx, store, key)
	if err != nil || rotated == toks.OAuth2Token().RefreshToken {
		t.Fatalf("keyring does not hold the rotated refresh token (%v)", err)
	}
	after, err := os.ReadFile(keyringFile)
	if err != nil || sha256.Sum256(before) == sha256.Sum256(after) {
		t.Fatalf("login.keyring did not change (%v): the search below would prove nothing", err)
	}
	needles := map[string][]byte{
		"first refresh token": []byte(toks.OAuth2Token().RefreshToken), "rotated refresh token": []byte(rotated),
		"first access token": []byte(toks.OAuth2Token().AccessToken), "refreshed access token": []byte(tok.AccessToken),
	}
	files := 0
	err = filepath.WalkDir(d.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // sockets and vanished files
		}
		files++
		for name, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains the %s in plaintext", path, name)
			}
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("searched %d files (%v)", files, err)
	}
}

func TestConcurrentRefreshSingleRequest(t *testing.T) {
	const life = 2 * time.Second
	srv := startAS(t, oauthtest.Options{AccessTokenLifetime: life})
	c, toks := login(t, srv, 0)
	store := &tokenstore.Memory{}
	src, err := c.TokenSource(context.Background(), oauthclient.TokenSourceConfig{Store: store}, toks)
	if err != nil {
		t.Fatal(err)
	}
	waitExpired(life)
	const n = 10000
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := src.Token()
			errs[i] = err
			if err == nil {
				got[i] = tok.AccessToken
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] || got[i] == toks.OAuth2Token().AccessToken {
			t.Fatalf("caller %d: %v (same token as the others: %v)", i, errs[i], got[i] == got[0])
		}
	}
	if r := srv.TokenRequests("refresh_token"); r != 1 {
		t.Fatalf("%d refresh requests reached the server, want exactly 1", r)
	}
}

func TestRefreshFailures(t *testing.T) {
	const life = 2 * time.Second
	ctx := context.Background()

	t.Run("invalid_grant wipes the stored token", func(t *testing.T) {
		srv := startAS(t, oauthtest.Options{AccessTokenLifetime: life})
		c, toks := login(t, srv, 0)
		store := &tokenstore.Memory{}
		src, _ := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store}, toks)
		if err := c.Revoke(ctx, toks.OAuth2Token().RefreshToken, "refresh_token"); err != nil {
			t.Fatal(err)
		}
		waitExpired(life)
		_, err := src.Token()
		if !errors.Is(err, tokenstore.ErrLoginRequired) {
			t.Fatalf("err = %v, want ErrLoginRequired", err)
		}
		key := tokenstore.Key(srv.Issuer, oauthtest.ClientNative, toks.Subject())
		if _, err := store.Get(ctx, key); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Fatalf("stored token not wiped: %v", err)
		}
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		fault   func(w http.ResponseWriter, r *http.Request)
	}{
		{"5xx keeps the stored token", 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		}},
		{"HTML 502 keeps the stored token", 0, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`<html>bad gateway</html>`))
		}},
		{"timeout keeps the stored token", 300 * time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startAS(t, oauthtest.Options{AccessTokenLifetime: life})
			c, toks := login(t, srv, tc.timeout)
			store := &tokenstore.Memory{}
			src, _ := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store}, toks)
			srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/oauth/token" {
					return false
				}
				tc.fault(w, r)
				return true
			})
			waitExpired(life)
			_, err := src.Token()
			var te *tokenstore.TemporaryError
			if !errors.As(err, &te) || errors.Is(err, tokenstore.ErrLoginRequired) {
				t.Fatalf("err = %v, want a *tokenstore.TemporaryError", err)
			}
			key := tokenstore.Key(srv.Issuer, oauthtest.ClientNative, toks.Subject())
			if rt, err := storedRT(ctx, store, key); err != nil || rt != toks.OAuth2Token().RefreshToken {
				t.Fatalf("stored token changed or lost: %v", err)
			}
			// The server recovers and the kept token still works. It is
			// refreshed by a client without the short timeout of the fault
			// (a real refresh under a loaded CI may take longer than it).
			srv.SetInterceptor(nil)
			cfg := c.Config()
			cfg.HTTP.Timeout = 0
			recovered, err := oauthclient.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := refreshOnce(ctx, recovered, toks); err != nil {
				t.Fatalf("kept refresh token refused: %v", err)
			}
		})
	}
}

// storedRT returns the refresh token of the record under key.
func storedRT(ctx context.Context, st tokenstore.Store, key string) (string, error) {
	rec, err := engine.LoadRecord(ctx, st, key)
	if err != nil {
		return "", err
	}
	return rec.RefreshToken, nil
}

// refreshOnce redeems the login's refresh token once, through a fresh
// engine over a Memory store, and returns the refresh token it ends with.
func refreshOnce(ctx context.Context, c *oauthclient.Client, toks *oauthclient.Tokens) (string, error) {
	st := &tokenstore.Memory{}
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "k"}, toks)
	if err != nil {
		return "", err
	}
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); err != nil {
		return "", err
	}
	return storedRT(ctx, st, "k")
}
