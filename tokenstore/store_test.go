package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	var m Memory
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete missing = %v, want nil", err)
	}
	v := []byte("value")
	if err := m.Put(ctx, "k", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // the store must have copied
	got, err := m.Get(ctx, "k")
	if err != nil || string(got) != "value" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	got[0] = 'Y'
	if again, _ := m.Get(ctx, "k"); string(again) != "value" {
		t.Fatalf("Get returned shared memory: %q", again)
	}
	if err := m.Put(ctx, "k", make([]byte, MaxValueSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put huge = %v, want ErrTooLarge", err)
	}
	if err := m.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Put(ctx, "c", []byte("x"))
			m.Get(ctx, "c")
			m.Delete(ctx, "c")
		}()
	}
	wg.Wait()
}

func TestKeyDerivation(t *testing.T) {
	seen := map[string]string{}
	add := func(name, k string) {
		t.Helper()
		if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" {
			t.Fatalf("%s: key %q is not 64 lowercase hex", name, k)
		}
		if prev, ok := seen[k]; ok {
			t.Fatalf("%s collides with %s", name, prev)
		}
		seen[k] = name
	}
	add("a|bc|d", Key("a", "bc", "d"))
	add("ab|c|d", Key("ab", "c", "d"))
	add("a|b|cd", Key("a", "b", "cd"))
	add("empty", Key("", "", ""))
	add("profile a|bc|d", ProfileKey("a", "bc", "d"))
	add("https://issuer|client|alice", Key("https://issuer", "client", "alice"))
	add("https://issuer|client|bob", Key("https://issuer", "client", "bob"))
	if k1, k2 := Key("x", "y", "z"), Key("x", "y", "z"); k1 != k2 {
		t.Fatal("Key is not deterministic")
	}
	k := Key("https://issuer.example", "my-client", "alice@example.com")
	for _, part := range []string{"issuer", "client", "alice"} {
		if strings.Contains(k, part) {
			t.Fatalf("key reveals %q", part)
		}
	}
}

func TestRecordRoundTripAndRejects(t *testing.T) {
	b, err := encodeRecord("rt-123")
	if err != nil {
		t.Fatal(err)
	}
	if rt, err := decodeRecord(b); err != nil || rt != "rt-123" {
		t.Fatalf("decode = %q, %v", rt, err)
	}
	for _, bad := range []string{
		``, `{}`, `{"v":2,"refresh_token":"x"}`, `{"v":1}`, `{"v":1,"refresh_token":""}`,
		`{"v":1,"refresh_token":"x","access_token":"y"}`, `{"v":1,"refresh_token":"a\nb"}`,
		`{"v":1,"refresh_token":"x"} {}`, `[1]`, "\x00",
	} {
		if _, err := decodeRecord([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeRecord(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	if _, err := encodeRecord("bad\x00token"); err == nil || strings.Contains(err.Error(), "bad\x00token") {
		t.Fatalf("encodeRecord of a control character = %v", err)
	}
}

func TestLockExcludesAndHonoursContext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	unlock, err := Lock(context.Background(), dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir mode = %v, %v; want 0700", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, dir, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock = %v, want DeadlineExceeded while held", err)
	}
	// A different key is independent.
	u2, err := Lock(context.Background(), dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), dir, "k")
		if err == nil {
			err = u()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lock after unlock = %v", err)
	}
	if err := unlock(); err == nil {
		t.Fatal("double unlock not reported")
	}
}

func TestLockRefusesSharedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if _, err := Lock(context.Background(), dir, "k"); !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("Lock in a 0777 dir = %v, want ErrInsecurePermissions", err)
	}
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	lockDir := t.TempDir()
	errRevoke := errors.New("server said no")
	tests := []struct {
		name        string
		stored      bool
		revoke      error
		nilRevoke   bool
		wantCalled  bool
		wantErrIs   []error
		wantDeleted bool
	}{
		{name: "revoked and deleted", stored: true, wantCalled: true, wantDeleted: true},
		{name: "revocation fails, still deleted", stored: true, revoke: errRevoke, wantCalled: true,
			wantErrIs: []error{ErrRevocationFailed, errRevoke}, wantDeleted: true},
		{name: "no revocation endpoint", stored: true, nilRevoke: true, wantDeleted: true},
		{name: "nothing stored", stored: false, wantDeleted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st Memory
			if tt.stored {
				if err := SaveRefreshToken(ctx, &st, "k", "rt-logout"); err != nil {
					t.Fatal(err)
				}
			}
			var called []string
			cfg := LogoutConfig{Store: &st, Key: "k", LockDir: lockDir}
			if !tt.nilRevoke {
				cfg.Revoke = func(ctx context.Context, rt string) error {
					called = append(called, rt)
					return tt.revoke
				}
			}
			err := Logout(ctx, cfg)
			if len(tt.wantErrIs) == 0 && err != nil {
				t.Fatalf("Logout = %v", err)
			}
			for _, want := range tt.wantErrIs {
				if !errors.Is(err, want) {
					t.Fatalf("Logout = %v, want errors.Is %v", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), "rt-logout") {
				t.Fatal("error string contains the refresh token")
			}
			if tt.wantCalled != (len(called) == 1) || (tt.wantCalled && called[0] != "rt-logout") {
				t.Fatalf("revoke calls = %q", called)
			}
			if _, err := st.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after Logout Get = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestSaveLoadRefreshToken(t *testing.T) {
	ctx := context.Background()
	var st Memory
	if _, err := LoadRefreshToken(ctx, &st, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := SaveRefreshToken(ctx, &st, "k", "rt"); err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Get(ctx, "k")
	if !bytes.Contains(raw, []byte(`"v":1`)) {
		t.Fatalf("record = %s", raw)
	}
	st.Put(ctx, "k", []byte("garbage"))
	if _, err := LoadRefreshToken(ctx, &st, "k"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load garbage = %v", err)
	}
}
