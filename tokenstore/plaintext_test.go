package tokenstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNoPlaintextTokensOnDisk runs a refresh with the real keyring as the
// store, then searches every file under the keyring's HOME/XDG directories
// and the lock directory for the refresh and access token bytes. (The
// issue's TestNoPlaintextRefreshToken does this after a real login against
// the in-process server; that needs oauthclient and comes in a later pass.)
func TestNoPlaintextTokensOnDisk(t *testing.T) {
	k, d := newTestKeyring(t)
	ctx := context.Background()
	lockDir := filepath.Join(d.Dir, "home", ".cache", "oauthsafe", "locks")
	srv := newTokenServer(time.Now)
	srv.current = "rt-INITIAL-" + randHex() + randHex()
	key := Key("https://issuer", "client", "plaintext")
	keyringFile := filepath.Join(d.Home, ".local", "share", "keyrings", "login.keyring")
	before, err := os.ReadFile(keyringFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveRefreshToken(ctx, k, key, srv.current); err != nil {
		t.Fatal(err)
	}
	s, err := NewSource(SourceConfig{Store: k, Key: key, Refresh: srv.refresh, LockDir: lockDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := srv.current
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, current := srv.stats()
	if got, _ := LoadRefreshToken(ctx, k, key); got != current {
		t.Fatalf("keyring holds %q, want %q", got, current)
	}
	after, err := os.ReadFile(keyringFile)
	if err != nil || sha256.Sum256(before) == sha256.Sum256(after) {
		t.Fatalf("login.keyring did not change (%v): the search below would prove nothing", err)
	}
	needles := [][]byte{[]byte(first), []byte(current), []byte(tok.AccessToken)}
	files := 0
	err = filepath.WalkDir(d.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains a token in plaintext", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files searched; the keyring wrote nothing to disk?")
	}
}
