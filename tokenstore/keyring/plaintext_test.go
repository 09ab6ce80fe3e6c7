package keyring

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"

	"github.com/oauthsafe/oauthsafe/internal/testkit/storetest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// TestNoPlaintextTokensOnDisk runs refreshes with the real keyring as the
// store, then searches every file under the keyring's HOME/XDG directories
// (the lock directory included) for the refresh and access token bytes.
// (TestNoPlaintextRefreshToken does this after a real login against the
// in-process server.)
func TestNoPlaintextTokensOnDisk(t *testing.T) {
	k, d := newTestKeyring(t)
	k.LockDir = filepath.Join(d.Dir, "run", "locks")
	ctx := context.Background()
	key := tokenstore.Key("https://issuer", "client", "plaintext")
	keyringFile := filepath.Join(d.Home, ".local", "share", "keyrings", "login.keyring")
	before, err := os.ReadFile(keyringFile)
	if err != nil {
		t.Fatal(err)
	}
	first := "rt-INITIAL-" + randomHex(t)
	if err := engine.SaveRecord(ctx, k, key, &engine.Record{RefreshToken: first, Subject: "s"}); err != nil {
		t.Fatal(err)
	}
	var rotated, access []string
	fetch := func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
		rt, at := "rt-ROTATED-"+randomHex(t), "at-ACCESS-"+randomHex(t)
		rotated, access = append(rotated, rt), append(access, at)
		r.Rotated(rt)
		return &engine.Result{Token: &oauth2.Token{AccessToken: at, Expiry: time.Now().Add(time.Hour)}}, nil
	}
	s, err := engine.NewSource(engine.SourceConfig{Store: k, Key: key, Fetch: fetch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		tok, err := s.Token()
		if err != nil {
			t.Fatal(err)
		}
		s.Invalidate(tok)
	}
	if rec, err := engine.LoadRecord(ctx, k, key); err != nil || rec.RefreshToken != rotated[len(rotated)-1] {
		t.Fatalf("keyring holds %v (%v), want the last rotation", rec, err)
	}
	after, err := os.ReadFile(keyringFile)
	if err != nil || sha256.Sum256(before) == sha256.Sum256(after) {
		t.Fatalf("login.keyring did not change (%v): the search below would prove nothing", err)
	}
	var needles [][]byte
	for _, s := range append(append([]string{first}, rotated...), access...) {
		needles = append(needles, []byte(s))
	}
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

func randomHex(t *testing.T) string { return strings.ToUpper(hex.EncodeToString(randomBytes(8))) }

const envKeyringLockDir = "OAUTHSAFE_XPROC_KEYRING_LOCKDIR"

func openKeyring(t testing.TB) tokenstore.Store {
	return &Store{Service: "oauthsafe-xproc", Timeout: 10 * time.Second, UnlockTimeout: 20 * time.Second,
		LockDir: os.Getenv(envKeyringLockDir)}
}

// TestStoreTransactionChild is the children's body.
func TestStoreTransactionChild(t *testing.T) { storetest.Child(t, openKeyring) }

// TestStoreTransactionAcrossProcesses: N processes × M goroutines refresh
// one key in the real keyring for a few hundred rotations: one token
// request per refresh token, none reused, no deadlock, and a process
// SIGKILLed inside the transaction releases it.
func TestStoreTransactionAcrossProcesses(t *testing.T) {
	d := keyringtest.New(t)
	lockDir := filepath.Join(t.TempDir(), "locks")
	t.Setenv(envKeyringLockDir, lockDir)
	storetest.CrossProcess(t, storetest.Config{Open: openKeyring, ChildTest: "TestStoreTransactionChild",
		Env: append(d.Env(), envKeyringLockDir+"="+lockDir), Procs: 3, Goroutines: 2, Rotations: 200})
}

// TestCrossProcessRefresh (the accepted criterion): two processes that
// each need an access token refresh once each, with different refresh
// tokens; none is sent twice, each ends with a valid token, and the store
// holds the final refresh token.
func TestCrossProcessRefresh(t *testing.T) {
	d := keyringtest.New(t)
	lockDir := filepath.Join(t.TempDir(), "locks")
	t.Setenv(envKeyringLockDir, lockDir)
	storetest.CrossProcess(t, storetest.Config{Open: openKeyring, ChildTest: "TestStoreTransactionChild",
		Env: append(d.Env(), envKeyringLockDir+"="+lockDir), Procs: 2, Goroutines: 1, Rotations: 2})
}
