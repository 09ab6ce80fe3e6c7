package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/registration"
	"github.com/oauthsafe/oauthsafe/internal/storekey"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestResourceProfileStoredRegistration: a resource-first profile takes
// the client resourceclient registered at its issuer from the store: its
// secret and method when the client id is the profile's (and no secret
// from elsewhere when the registration has none), nothing for a record of
// another client, ErrCorrupt for a record that does not read or names
// another issuer, and nothing when there is no record.
func TestResourceProfileStoredRegistration(t *testing.T) {
	ctx := context.Background()
	const issuer = "https://as.example"
	e, _, _ := testEnv()
	e.getenv = func(k string) string {
		if k == envFilePassphrase {
			return "a passphrase for this test"
		}
		return ""
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := &profile{Issuer: issuer, ClientID: "dyn-1", Resource: "https://mcp.example/mcp", Store: "file", StoreFile: filepath.Join(dir, "tokens.enc")}
	store, err := openStore(e, p, false)
	if err != nil {
		t.Fatal(err)
	}
	put := func(raw []byte) {
		t.Helper()
		key := storekey.Registration(issuer, resourceRedirect)
		if err := store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, raw) }); err != nil {
			t.Fatal(err)
		}
	}
	record := func(r registration.Record) []byte {
		b, _ := json.Marshal(r)
		return b
	}
	elsewhere, err := secret.FromReader(strings.NewReader("a secret from the environment"))
	if err != nil {
		t.Fatal(err)
	}
	resolve := func() (oauthclient.Config, error) {
		cfg := oauthclient.Config{Issuer: issuer, ClientID: p.ClientID, ClientSecret: elsewhere}
		err := resourceClient(ctx, e, p, &cfg)
		return cfg, err
	}

	if cfg, err := resolve(); err != nil || cfg.ClientSecret.Reveal() != elsewhere.Reveal() {
		t.Fatalf("no record: %v (the configuration changed: %v)", err, cfg.ClientSecret.Reveal() != elsewhere.Reveal())
	}
	put(record(registration.Record{V: 1, Issuer: issuer, RedirectURL: resourceRedirect, ClientID: "dyn-1", ClientSecret: "registered-secret", AuthMethod: "client_secret_post"}))
	if cfg, err := resolve(); err != nil || cfg.ClientSecret.Reveal() != "registered-secret" || cfg.AuthMethod != "client_secret_post" {
		t.Fatalf("the profile's registration: %v, method %q", err, cfg.AuthMethod)
	}
	put(record(registration.Record{V: 1, Issuer: issuer, RedirectURL: resourceRedirect, ClientID: "dyn-1", AuthMethod: "none"}))
	if cfg, err := resolve(); err != nil || !cfg.ClientSecret.IsZero() || cfg.AuthMethod != "none" {
		t.Fatalf("a public registration: %v, secret kept: %v", err, !cfg.ClientSecret.IsZero())
	}
	put(record(registration.Record{V: 1, Issuer: issuer, RedirectURL: resourceRedirect, ClientID: "another", ClientSecret: "theirs", AuthMethod: "client_secret_basic"}))
	if cfg, err := resolve(); err != nil || cfg.ClientSecret.Reveal() != elsewhere.Reveal() || cfg.AuthMethod != "" {
		t.Fatalf("another client's registration: %v, method %q", err, cfg.AuthMethod)
	}
	for name, raw := range map[string][]byte{
		"not JSON":       []byte("{"),
		"another issuer": record(registration.Record{V: 1, Issuer: "https://evil.example", ClientID: "dyn-1", ClientSecret: "s"}),
		"no client id":   record(registration.Record{V: 1, Issuer: issuer}),
		"a newer format": record(registration.Record{V: 2, Issuer: issuer, ClientID: "dyn-1"}),
	} {
		put(raw)
		if _, err := resolve(); !errors.Is(err, tokenstore.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
