package tokenstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/storelimit"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	m := &Memory{}
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing = %v, want ErrNotFound", err)
	}
	if err := delKey(m, ctx, "k"); err != nil {
		t.Fatalf("Delete missing = %v, want nil", err)
	}
	v := []byte("value")
	if err := putKey(m, ctx, "k", v); err != nil {
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
	if err := putKey(m, ctx, "k", make([]byte, storelimit.MaxValueSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put huge = %v, want ErrTooLarge", err)
	}
	if err := delKey(m, ctx, "k"); err != nil {
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
			putKey(m, ctx, "c", []byte("x"))
			m.Get(ctx, "c")
			delKey(m, ctx, "c")
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

// putKey and delKey write through a one-step transaction.
func putKey(st Store, ctx context.Context, key string, v []byte) error {
	return st.Update(ctx, key, func(ctx context.Context, tx Tx) error { return tx.Put(ctx, v) })
}

func delKey(st Store, ctx context.Context, key string) error {
	return st.Update(ctx, key, func(ctx context.Context, tx Tx) error { return tx.Delete(ctx) })
}
