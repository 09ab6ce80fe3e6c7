package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit/pgtest"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// TestDemo runs the example's demo on each vault (the default SQLite file,
// and PostgreSQL through -postgres): alice signs in, the page shows an API
// call made on her behalf, a restarted app resumes her from the vault with
// one refresh, and signing out revokes her refresh token and deletes her
// record. No token of hers appears in the output, and none (nor the sealing
// key) in the vault's files or in a pg_dump while her record is stored.
func TestDemo(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		runDemoTest(t, nil, func(t *testing.T, dir string) []byte {
			var all []byte
			for _, suffix := range []string{"", "-wal", "-shm"} {
				b, _ := os.ReadFile(filepath.Join(dir, "vault.db"+suffix))
				all = append(all, b...)
			}
			return all
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.New(t)
		if err := pg.CreateDB("webapp"); err != nil {
			t.Fatal(err)
		}
		runDemoTest(t, []string{"-postgres", pg.DSN("webapp")}, func(t *testing.T, dir string) []byte {
			dump, err := pg.Dump("webapp")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(dump, []byte("oauthsafe_tokens")) {
				t.Fatal("the dump has no vault table")
			}
			return dump
		})
	})
}

func runDemoTest(t *testing.T, args []string, vaultBytes func(*testing.T, string) []byte) {
	var mu sync.Mutex
	var logins []*oauthclient.Tokens
	var apiTokens []string
	var stored []byte
	var sealingKey []byte
	demoTokensSeen = func(tk *oauthclient.Tokens) { mu.Lock(); logins = append(logins, tk); mu.Unlock() }
	demoAPISeen = func(tok string) { mu.Lock(); apiTokens = append(apiTokens, tok); mu.Unlock() }
	demoInspect = func(dir string) {
		stored = vaultBytes(t, dir)
		keyFile := filepath.Join(dir, "vault-keys")
		if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file: %v, %v", fi, err)
		}
		text, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatalf("key file: %v", err)
		}
		_, b64, _ := strings.Cut(strings.TrimSpace(string(text)), ":")
		if sealingKey, err = base64.StdEncoding.DecodeString(b64); err != nil {
			t.Fatalf("key file: %v", err)
		}
	}
	t.Cleanup(func() { demoTokensSeen, demoAPISeen, demoInspect = nil, nil, nil })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errb)
	}
	for _, want := range []string{
		"signed in: GET / -> 200 OK\nHello, sub-alice",
		"API on your behalf: 200 OK {\"contacts\":2}",
		"vault: alice's record is stored, sealed",
		"after a restart: GET / -> 200 OK",
		"resumed from the vault with 1 refresh",
		"signed out: 1 revocation request, record deleted from the vault",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, &out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logins) != 1 {
		t.Fatalf("want exactly one login, got %d", len(logins))
	}
	tk := logins[0]
	if tk.OAuth2Token().AccessToken == "" || tk.OAuth2Token().RefreshToken == "" || tk.RawIDToken() == "" {
		t.Fatal("the login returned no access, refresh or ID token")
	}
	if len(apiTokens) != 2 || apiTokens[0] != tk.OAuth2Token().AccessToken || apiTokens[1] == apiTokens[0] {
		t.Errorf("the API should have seen the login's access token, then the resumed one (%d tokens)", len(apiTokens))
	}
	secrets := append([]string{tk.OAuth2Token().AccessToken, tk.OAuth2Token().RefreshToken, tk.RawIDToken()}, apiTokens...)
	all := out.String() + errb.String()
	if strings.Contains(all, "eyJ") {
		t.Error("output contains a JWT")
	}
	if len(stored) < 1000 || len(sealingKey) != 32 {
		t.Fatalf("nothing inspected: %d vault bytes", len(stored))
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Error("output contains a token")
		}
		for i := 0; i+16 <= len(s); i += 8 {
			if bytes.Contains(stored, []byte(s[i:i+16])) {
				t.Fatalf("the vault holds token bytes in clear")
			}
		}
	}
	for _, k := range [][]byte{sealingKey, []byte(base64.StdEncoding.EncodeToString(sealingKey))} {
		if bytes.Contains(stored, k) {
			t.Fatal("the vault holds the sealing key")
		}
	}
}
