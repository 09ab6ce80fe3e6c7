package resourceclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestRegistrationStoredSealedPerIssuer (S28): a dynamic registration is
// kept in the store (sealed: the encrypted file holds no client id),
// reused by the next process without registering again, never used at
// another issuer (a resource that moves to a new authorization server
// gets a new registration and login there), and redone after the server
// answers invalid_client.
func TestRegistrationStoredSealedPerIssuer(t *testing.T) {
	as1, as2 := startAS(t), startAS(t)
	log1, log2 := watch(as1), watch(as2)
	ctx := context.Background()

	// One resource URL whose metadata and token checks follow the
	// authorization server it currently uses.
	host := newResourceHost(t, as1)
	resource := host.URL + "/mcp"
	var current atomic.Pointer[demoapi.API]
	apis := map[*oauthtest.Server]*demoapi.API{}
	for _, as := range []*oauthtest.Server{as1, as2} {
		api, err := demoapi.NewResource(ctx, as, demoapi.ResourceConfig{Resource: resource, ChallengeScope: []string{oauthtest.ScopeAPIRead}})
		if err != nil {
			t.Fatal(err)
		}
		apis[as] = api
	}
	current.Store(apis[as1])
	host.mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) { current.Load().ServeMetadata(w, r) })
	host.mux.HandleFunc("/mcp/read", func(w http.ResponseWriter, r *http.Request) {
		current.Load().Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })(w, r)
	})

	dir := filepath.Join(t.TempDir(), "store")
	path := filepath.Join(dir, "tokens")
	newStore := func() *tokenstore.EncryptedFile {
		return &tokenstore.EncryptedFile{Path: path, Passphrase: func() ([]byte, error) { return []byte("correct horse"), nil }}
	}
	cfgFor := func() resourceclient.Config {
		cfg := config(as1, resource, newStore())
		cfg.WantRefreshToken = true
		pool := as1.RootCAs()
		pool.AppendCertsFromPEM(as2.CACertPEM)
		cfg.HTTP.RootCAs = pool
		// The browser signs in wherever the authorization URL points.
		cfg.Browser = func(ctx context.Context, authURL string) (*url.URL, error) {
			for _, as := range []*oauthtest.Server{as1, as2} {
				if bytes.HasPrefix([]byte(authURL), []byte(as.Issuer+"/")) {
					return browser(as, oauthtest.UserAlice)(ctx, authURL)
				}
			}
			t.Fatalf("authorization URL at an unknown server")
			return nil, nil
		}
		return cfg
	}
	run := func(name string) *resourceclient.Session {
		t.Helper()
		rc, err := resourceclient.New(ctx, cfgFor())
		if err != nil {
			t.Fatal(err)
		}
		if code, err := get(t, rc.HTTPClient(), resource+"/read"); err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d, %v", name, code, err)
		}
		s, err := rc.Session(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// First process: registers at as1, logs in.
	s1 := run("first run")
	if as1.Count("/register") != 1 || len(log1.authorizations()) != 1 {
		t.Fatalf("first run: %d registrations, %d authorizations; want 1 and 1", as1.Count("/register"), len(log1.authorizations()))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(s1.ClientID)) || bytes.Contains(raw, []byte("client_id")) {
		t.Fatal("the store file holds the registration in the clear")
	}
	b, err := newStore().Get(ctx, storekey.Registration(as1.Issuer, redirect))
	var reg struct{ Issuer, ClientID string }
	if err != nil || json.Unmarshal(b, &reg) != nil {
		t.Fatalf("registration not stored under RegistrationKey(issuer): %v", err)
	}

	// Second process: the stored registration and refresh token, no
	// registration, no login.
	if s := run("second run"); s.ClientID != s1.ClientID {
		t.Fatalf("second run uses client %q, want the stored %q", s.ClientID, s1.ClientID)
	}
	if as1.Count("/register") != 1 || len(log1.authorizations()) != 1 {
		t.Fatal("second run registered or logged in again")
	}

	// The resource moves to as2: a new registration and login there, and
	// as1's client id never reaches as2.
	current.Store(apis[as2])
	s3 := run("after the move")
	if s3.Issuer != as2.Issuer || s3.ClientID == s1.ClientID {
		t.Fatalf("after the move: session %+v", s3)
	}
	if as2.Count("/register") != 1 || len(log2.authorizations()) != 1 {
		t.Fatalf("as2: %d registrations, %d authorizations; want 1 and 1", as2.Count("/register"), len(log2.authorizations()))
	}
	if slices.Contains(log2.ids(), s1.ClientID) {
		t.Fatal("as1's client id was sent to as2")
	}
	if slices.Contains(log1.ids(), s3.ClientID) {
		t.Fatal("as2's client id was sent to as1")
	}

	// as2 forgets its clients: the refresh answers invalid_client, and the
	// next process registers anew (once) and logs in.
	as2.ForgetRegistrations()
	s4 := run("after invalid_client")
	if as2.Count("/register") != 2 || s4.ClientID == s3.ClientID || len(log2.authorizations()) != 2 {
		t.Fatalf("after invalid_client: %d registrations, client %q (was %q), %d authorizations", as2.Count("/register"), s4.ClientID, s3.ClientID, len(log2.authorizations()))
	}
	if s := run("and again"); s.ClientID != s4.ClientID || as2.Count("/register") != 2 {
		t.Fatal("the new registration was not kept")
	}
}
