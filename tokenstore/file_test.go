package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/internal/storelimit"
)

func passphrase(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}

func newTestFile(t *testing.T) *EncryptedFile {
	t.Helper()
	return &EncryptedFile{Path: filepath.Join(t.TempDir(), "store", "tokens.enc"), Passphrase: passphrase("correct horse")}
}

func TestEncryptedFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	if _, err := f.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on no file = %v, want ErrNotFound", err)
	}
	if err := delKey(f, ctx, "k"); err != nil {
		t.Fatalf("Delete missing = %v", err)
	}
	secret := []byte("refresh-token-PLAINTEXT-MARKER")
	if err := putKey(f, ctx, "k", secret); err != nil {
		t.Fatal(err)
	}
	if err := putKey(f, ctx, "k2", []byte("other")); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Get(ctx, "k"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// A second instance (another process) with the same passphrase reads it.
	f2 := &EncryptedFile{Path: f.Path, Passphrase: passphrase("correct horse")}
	if got, err := f2.Get(ctx, "k2"); err != nil || string(got) != "other" {
		t.Fatalf("second instance Get = %q, %v", got, err)
	}
	fi, _ := os.Stat(f.Path)
	di, _ := os.Stat(filepath.Dir(f.Path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes file %v dir %v, want 0600 and 0700", fi.Mode(), di.Mode())
	}
	raw, _ := os.ReadFile(f.Path)
	if bytes.Contains(raw, secret) || bytes.Contains(raw, []byte("PLAINTEXT")) {
		t.Fatal("file contains the plaintext")
	}
	if err := delKey(f, ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

func TestEncryptedFileRefusesLoosePermissions(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		setup func(f *EncryptedFile)
	}{
		{"file 0644", func(f *EncryptedFile) { os.Chmod(f.Path, 0o644) }},
		{"file 0640", func(f *EncryptedFile) { os.Chmod(f.Path, 0o640) }},
		{"dir 0755", func(f *EncryptedFile) { os.Chmod(filepath.Dir(f.Path), 0o755) }},
		{"dir 0711", func(f *EncryptedFile) { os.Chmod(filepath.Dir(f.Path), 0o711) }},
		{"symlink", func(f *EncryptedFile) {
			real := f.Path + ".real"
			os.Rename(f.Path, real)
			os.Symlink(real, f.Path)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFile(t)
			if err := putKey(f, ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			tt.setup(f)
			before, _ := os.ReadFile(f.Path)
			g := &EncryptedFile{Path: f.Path, Passphrase: passphrase("correct horse")}
			if _, err := g.Get(ctx, "k"); !errors.Is(err, ErrInsecurePermissions) {
				t.Fatalf("Get = %v, want ErrInsecurePermissions", err)
			}
			if err := putKey(g, ctx, "k", []byte("new")); !errors.Is(err, ErrInsecurePermissions) {
				t.Fatalf("Put = %v, want ErrInsecurePermissions", err)
			}
			if err := delKey(g, ctx, "k"); !errors.Is(err, ErrInsecurePermissions) {
				t.Fatalf("Delete = %v, want ErrInsecurePermissions", err)
			}
			after, _ := os.ReadFile(f.Path)
			if !bytes.Equal(before, after) {
				t.Fatal("file changed although it was refused")
			}
		})
	}
}

func TestEncryptedFileWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	if err := putKey(f, ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f.Path)
	g := &EncryptedFile{Path: f.Path, Passphrase: passphrase("wrong")}
	if _, err := g.Get(ctx, "k"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Get = %v, want ErrWrongPassphrase", err)
	}
	if err := putKey(g, ctx, "k", []byte("x")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Put = %v, want ErrWrongPassphrase", err)
	}
	if after, _ := os.ReadFile(f.Path); !bytes.Equal(before, after) {
		t.Fatal("file overwritten with a wrong passphrase")
	}
	if err := putKey(g, ctx, "k", []byte("x")); err != nil && strings.Contains(err.Error(), "wrong\"") {
		t.Fatal("passphrase in error")
	}
}

func TestEncryptedFileTruncatedOrTampered(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	if err := putKey(f, ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(f.Path)
	var cases []struct {
		name string
		data []byte
	}
	for _, n := range []int{0, 3, 10, headerLen, headerLen + nonceLen, len(good) - 1} {
		cases = append(cases, struct {
			name string
			data []byte
		}{"truncated", good[:n]})
	}
	for _, off := range []int{0, 4, 5, 7, 20, 40, headerLen + 1, headerLen + nonceLen + 2, len(good) - 1} {
		d := bytes.Clone(good)
		d[off] ^= 0x01
		cases = append(cases, struct {
			name string
			data []byte
		}{"flip", d})
	}
	cases = append(cases, struct {
		name string
		data []byte
	}{"appended", append(bytes.Clone(good), 0)})
	// One reader for all cases, as a long-lived process would be: it has
	// the key cached, so only header changes cost a key derivation.
	g := &EncryptedFile{Path: f.Path, Passphrase: passphrase("correct horse")}
	for i, c := range cases {
		if err := os.WriteFile(f.Path, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := g.Get(ctx, "k")
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("case %d (%s): Get = %v, want ErrCorrupt or ErrWrongPassphrase", i, c.name, err)
		}
		if err := putKey(g, ctx, "k", []byte("new")); err == nil {
			t.Errorf("case %d (%s): Put over a damaged file succeeded", i, c.name)
		}
		if after, _ := os.ReadFile(f.Path); !bytes.Equal(after, c.data) {
			t.Errorf("case %d (%s): damaged file was overwritten", i, c.name)
		}
	}
}

// TestEncryptedFileAtomicWrite reads the file from other instances while it
// is rewritten many times: a non-atomic write would let a reader see a
// partial file and fail with ErrCorrupt.
func TestEncryptedFileAtomicWrite(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	if err := putKey(f, ctx, "k", bytes.Repeat([]byte("a"), 50000)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &EncryptedFile{Path: f.Path, Passphrase: passphrase("correct horse")}
			for !stop.Load() {
				v, err := g.Get(ctx, "k")
				if err != nil {
					errs <- err
					return
				}
				if len(v) != 50000 || (v[0] != 'a' && v[0] != 'b') {
					errs <- errors.New("read a torn value")
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 0; i < 60; i++ {
		c := byte('a' + i%2)
		if err := putKey(f, ctx, "k", bytes.Repeat([]byte{c}, 50000)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("no concurrent reads happened")
	}
}

func TestEncryptedFileConfigErrors(t *testing.T) {
	ctx := context.Background()
	if err := putKey(&EncryptedFile{Passphrase: passphrase("x")}, ctx, "k", nil); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatal("no Path accepted")
	}
	f := &EncryptedFile{Path: filepath.Join(t.TempDir(), "d", "f")}
	if err := putKey(f, ctx, "k", nil); err == nil {
		t.Fatal("no Passphrase accepted")
	}
	f.Passphrase = passphrase("")
	if err := putKey(f, ctx, "k", nil); err == nil {
		t.Fatal("empty passphrase accepted")
	}
	f.Passphrase = passphrase("x")
	if err := putKey(f, ctx, "k", make([]byte, storelimit.MaxValueSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge Put = %v", err)
	}
}

// TestEncryptedFileUpdateReleasesLockOnPanic: a panic inside fn that the
// caller recovers from (net/http recovers a handler's) releases the file
// lock, as the Store contract asks; the next Update does not wait it out.
func TestEncryptedFileUpdateReleasesLockOnPanic(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	f.LockTimeout = 300 * time.Millisecond
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		f.Update(ctx, "k", func(context.Context, Tx) error { panic("boom") })
	}()
	if err := f.Update(ctx, "k", func(context.Context, Tx) error { return nil }); err != nil {
		t.Fatalf("Update after a recovered panic = %v; the lock was not released", err)
	}
}
