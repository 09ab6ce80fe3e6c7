package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	gokeyring "github.com/zalando/go-keyring"
)

// newTestKeyring starts a private gnome-keyring and returns a Keyring on it.
func newTestKeyring(t *testing.T) (*Store, *keyringtest.Daemon) {
	t.Helper()
	d := keyringtest.New(t)
	return &Store{Service: "oauthsafe-test", Timeout: 10 * time.Second, UnlockTimeout: 20 * time.Second}, d
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// within fails the test if f does not return within limit: the point is
// "no hang", not speed.
func within[T any](t *testing.T, limit time.Duration, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("call hung for more than %v", limit)
		panic("unreachable")
	}
}

func TestKeyringRoundTrip(t *testing.T) {
	k, _ := newTestKeyring(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"empty", 0, false}, {"small", 100, false}, {"1KB", 1000, false},
		{"10KB", 10 << 10, true}, {"100KB", 100 << 10, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := tokenstore.Key("https://issuer", "client", tt.name)
			v := randomBytes(tt.size)
			if err := putKey(k, ctx, key, v); err != nil {
				t.Fatal(err)
			}
			got, err := k.Get(ctx, key)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Get = %d bytes, %v; want the %d bytes put", len(got), err, len(v))
			}
			raw, err := gokeyring.Get(k.service(), key)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.HasPrefix(raw, manifestPrefix); got != tt.chunked {
				t.Fatalf("chunked = %v, want %v (entry %.20q)", got, tt.chunked, raw)
			}
			if tt.chunked {
				_, m, _ := parseEntry(raw, k.rawPerChunk())
				for i := 0; i < m.count; i++ {
					c, err := gokeyring.Get(k.service(), chunkUser(key, m.gen, i))
					if err != nil || len(c) > k.chunkSize() {
						t.Fatalf("chunk %d: %d bytes, %v; limit %d", i, len(c), err, k.chunkSize())
					}
				}
			}
		})
	}
}

func TestKeyringOverwriteDeleteMissing(t *testing.T) {
	k, _ := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("https://issuer", "client", "overwrite")
	if _, err := k.Get(ctx, key); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Get missing = %v, want tokenstore.ErrNotFound", err)
	}
	if err := delKey(k, ctx, key); err != nil {
		t.Fatalf("Delete missing = %v, want nil", err)
	}
	big1, big2, small := randomBytes(20<<10), randomBytes(30<<10), []byte("small")
	var prev *manifest
	for i, v := range [][]byte{big1, small, big2, big1, small} {
		if err := putKey(k, ctx, key, v); err != nil {
			t.Fatal(err)
		}
		if got, err := k.Get(ctx, key); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("step %d: Get after overwrite = %d bytes, %v", i, len(got), err)
		}
		if prev != nil {
			// The previous generation's chunks must be gone.
			if _, err := gokeyring.Get(k.service(), chunkUser(key, prev.gen, 0)); !errors.Is(err, gokeyring.ErrNotFound) {
				t.Fatalf("step %d: old chunk still present: %v", i, err)
			}
		}
		raw, _ := gokeyring.Get(k.service(), key)
		_, prev, _ = parseEntry(raw, k.rawPerChunk())
	}
	if err := putKey(k, ctx, key, big2); err != nil {
		t.Fatal(err)
	}
	raw, _ := gokeyring.Get(k.service(), key)
	_, m, _ := parseEntry(raw, k.rawPerChunk())
	if err := delKey(k, ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get(ctx, key); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	for i := 0; i < m.count; i++ {
		if _, err := gokeyring.Get(k.service(), chunkUser(key, m.gen, i)); !errors.Is(err, gokeyring.ErrNotFound) {
			t.Fatalf("chunk %d left after Delete: %v", i, err)
		}
	}
}

func TestKeyringTooLarge(t *testing.T) {
	k, _ := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("i", "c", "huge")
	if err := putKey(k, ctx, key, make([]byte, storelimit.MaxValueSize+1)); !errors.Is(err, tokenstore.ErrTooLarge) {
		t.Fatalf("Put > 1 MiB = %v, want tokenstore.ErrTooLarge", err)
	}
	if _, err := k.Get(ctx, key); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("something was written: %v", err)
	}
}

func TestKeyringTamperedChunkDetected(t *testing.T) {
	k, _ := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("i", "c", "tamper")
	if err := putKey(k, ctx, key, randomBytes(10<<10)); err != nil {
		t.Fatal(err)
	}
	raw, _ := gokeyring.Get(k.service(), key)
	_, m, _ := parseEntry(raw, k.rawPerChunk())
	// Replace one chunk with another valid-looking chunk of the same size.
	c, _ := gokeyring.Get(k.service(), chunkUser(key, m.gen, 1))
	other := []byte(c)
	other[0] ^= 1
	if other[0] == '+' || other[0] == '/' || other[0] == '=' {
		other[0] = 'A'
	}
	gokeyring.Set(k.service(), chunkUser(key, m.gen, 1), string(other))
	if _, err := k.Get(ctx, key); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Fatalf("Get of a tampered chunk = %v, want tokenstore.ErrCorrupt", err)
	}
	gokeyring.Delete(k.service(), chunkUser(key, m.gen, 2))
	if _, err := k.Get(ctx, key); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Fatalf("Get with a missing chunk = %v, want tokenstore.ErrCorrupt", err)
	}
}

// TestKeyringNoMixedGenerations overwrites a 100 KB value with another, back
// and forth, while readers read: every read must be exactly one of the two.
func TestKeyringNoMixedGenerations(t *testing.T) {
	k, _ := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("i", "c", "mixed")
	a, b := bytes.Repeat([]byte{'a'}, 100<<10), bytes.Repeat([]byte{'b'}, 100<<10)
	if err := putKey(k, ctx, key, a); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, sawA, sawB atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := k.Get(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				switch {
				case bytes.Equal(got, a):
					sawA.Add(1)
				case bytes.Equal(got, b):
					sawB.Add(1)
				default:
					errs <- errors.New("read a value that is neither the old nor the new one")
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 0; i < 4; i++ {
		v := b
		if i%2 == 1 {
			v = a
		}
		if err := putKey(k, ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d concurrent reads (a=%d b=%d) during 4 overwrites", reads.Load(), sawA.Load(), sawB.Load())
	if reads.Load() < 2 {
		t.Fatal("readers did not overlap the writes; the test proves nothing")
	}
}

func TestKeyringKilledDaemonIsUnavailable(t *testing.T) {
	k, d := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("i", "c", "killed")
	if err := putKey(k, ctx, key, randomBytes(5000)); err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"Get":    func() error { _, err := k.Get(ctx, key); return err },
		"Put":    func() error { return putKey(k, ctx, key, []byte("x")) },
		"Delete": func() error { return delKey(k, ctx, key) },
	} {
		err := within(t, 30*time.Second, op)
		if !errors.Is(err, tokenstore.ErrUnavailable) {
			t.Errorf("%s after kill = %v, want tokenstore.ErrUnavailable", name, err)
		}
	}
}

func TestKeyringHungDaemonTimesOut(t *testing.T) {
	k, d := newTestKeyring(t)
	ctx := context.Background()
	key := tokenstore.Key("i", "c", "hung")
	if err := putKey(k, ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	k.Timeout = 300 * time.Millisecond
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	err := within(t, 30*time.Second, func() error { _, err := k.Get(ctx, key); return err })
	if !errors.Is(err, tokenstore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a frozen daemon = %v, want tokenstore.ErrUnavailable (deadline)", err)
	}
	// The caller's ctx wins over a longer Timeout.
	k.Timeout = time.Hour
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = within(t, 30*time.Second, func() error { return putKey(k, cctx, key, []byte("w")) })
	if !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("Put on a frozen daemon = %v, want tokenstore.ErrUnavailable", err)
	}
	d.Continue()
}

func TestKeyringNoServiceNoFallback(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+t.TempDir()+"/no-bus")
	home := t.TempDir()
	t.Setenv("HOME", home)
	k := &Store{Service: "oauthsafe-test", Timeout: 2 * time.Second, UnlockTimeout: 2 * time.Second}
	ctx := context.Background()
	if err := within(t, 30*time.Second, func() error { return putKey(k, ctx, "k", []byte("secret-value")) }); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("Put without a keyring = %v, want tokenstore.ErrUnavailable", err)
	}
	if _, err := within(t, 30*time.Second, func() struct {
		b []byte
		e error
	} {
		b, e := k.Get(ctx, "k")
		return struct {
			b []byte
			e error
		}{b, e}
	}).b, delKey(k, ctx, "k"); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("Delete without a keyring = %v, want tokenstore.ErrUnavailable", err)
	}
	entries, _ := os.ReadDir(home)
	if len(entries) != 0 {
		t.Fatalf("something was written under HOME: %v", entries)
	}
}

func FuzzParseKeyringEntry(f *testing.F) {
	m := manifest{gen: strings.Repeat("ab", 16), count: 2, size: 2000}
	for _, s := range []string{m.String(), inlinePrefix + "aGVsbG8=", "osk1:c:", "osk1:c:x:1:1:y", "", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		per := (&Store{}).rawPerChunk()
		_, m, err := parseEntry(s, per)
		if err != nil {
			if !errors.Is(err, tokenstore.ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m != nil && (m.count < 1 || m.size > storelimit.MaxValueSize || m.count > storelimit.MaxValueSize/per+1) {
			t.Fatalf("accepted an out-of-range manifest %+v", m)
		}
	})
}

// putKey and delKey write through a one-step transaction.
func putKey(st tokenstore.Store, ctx context.Context, key string, v []byte) error {
	return st.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, v) })
}

func delKey(st tokenstore.Store, ctx context.Context, key string) error {
	return st.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Delete(ctx) })
}

func TestSecret(t *testing.T) {
	keyringtest.New(t) // real gnome-keyring on a private D-Bus session
	ctx := context.Background()
	const service, user, value = "oauthsafe-test-client", "svc-client", "keyring-secret-4b8f2a"
	if err := gokeyring.Set(service, user, value+"\n"); err != nil {
		t.Fatal(err)
	}
	b, err := Secret(ctx, service, user)
	if err != nil {
		t.Fatal(err)
	}
	s, err := secret.FromReader(bytes.NewReader(b))
	if err != nil || s.Reveal() != value {
		t.Fatalf("secret %v, %v", s, err)
	}
	if _, err := Secret(ctx, service, "nobody"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("missing entry: err = %v", err)
	}
	if _, err := Secret(ctx, "", user); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("empty service: err = %v", err)
	}
}

// TestKeyringUpdateReleasesLockOnPanic: a panic inside fn that the caller
// recovers from (net/http recovers a handler's) releases the file lock;
// the next Update does not wait it out.
func TestKeyringUpdateReleasesLockOnPanic(t *testing.T) {
	ctx := context.Background()
	k := &Store{Service: "oauthsafe-test", LockDir: filepath.Join(t.TempDir(), "locks"), LockTimeout: 300 * time.Millisecond}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		k.Update(ctx, "k", func(context.Context, tokenstore.Tx) error { panic("boom") })
	}()
	if err := k.Update(ctx, "k", func(context.Context, tokenstore.Tx) error { return nil }); err != nil {
		t.Fatalf("Update after a recovered panic = %v; the lock was not released", err)
	}
}
