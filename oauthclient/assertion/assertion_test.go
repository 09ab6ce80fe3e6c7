package assertion

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// unsigned makes a compact JWS-shaped token with payload (the signature
// is not checked here).
func unsigned(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestFuncSource(t *testing.T) {
	ctx := context.Background()
	a, err := jwtassert.Parse(unsigned(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Func passes the audience, checks the answer and caches nothing.
	calls := 0
	var gotAud string
	f := Func(func(_ context.Context, aud string) (string, error) {
		calls++
		gotAud = aud
		return "  " + a.Reveal() + "\n", nil
	})
	for range 2 {
		if got, err := f.Assertion(ctx, "https://as.example"); err != nil || got != a.Reveal() {
			t.Fatalf("Func answer: %v (trimmed: %v)", err, got == a.Reveal())
		}
	}
	if calls != 2 || gotAud != "https://as.example" {
		t.Fatalf("Func: %d calls, audience %q", calls, gotAud)
	}
	expired := Func(func(context.Context, string) (string, error) { return unsigned(`{"exp":1000}`), nil })
	if _, err := expired.Assertion(ctx, "x"); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired Func answer: %v", err)
	}
	boom := errors.New("metadata server down")
	failing := Func(func(context.Context, string) (string, error) { return "", boom })
	if _, err := failing.Assertion(ctx, "x"); !errors.Is(err, ErrSource) || !errors.Is(err, boom) {
		t.Fatalf("failing Func: %v", err)
	}
	if _, err := Func(nil).Assertion(ctx, "x"); !errors.Is(err, ErrSource) {
		t.Fatalf("nil Func: %v", err)
	}
}

// TestFileKeepsUntilChangeOrExpiry: a File is read again when the file
// changes, and never serves an assertion past its exp.
func TestFileKeepsUntilChangeOrExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := now
	path := filepath.Join(t.TempDir(), "token")
	write := func(raw string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(raw), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	first := unsigned(fmt.Sprintf(`{"exp":%d,"n":1}`, now.Add(time.Minute).Unix()))
	write(first)
	f := &fileSource{path: path, now: func() time.Time { return clock }}
	a, err := f.Assertion(ctx, "ignored")
	if err != nil || a != first {
		t.Fatalf("first read: %v", err)
	}
	// Unchanged and valid: the same assertion, from memory.
	if a2, err := f.Assertion(ctx, ""); err != nil || a2 != a {
		t.Fatalf("second read: %v", err)
	}
	// Rotated: the new one.
	second := unsigned(fmt.Sprintf(`{"exp":%d,"n":2}`, now.Add(time.Minute).Unix()))
	write(second)
	if a, err = f.Assertion(ctx, ""); err != nil || a != second {
		t.Fatalf("after rotation: %v", err)
	}
	// Past its exp, not rotated: refused, never served from memory.
	clock = now.Add(2 * time.Minute)
	if _, err := f.Assertion(ctx, ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("past exp: %v, want ErrExpired", err)
	}
	// Secret-file checks.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	clock = now
	if _, err := File(path).Assertion(ctx, ""); !errors.Is(err, strictnet.ErrPolicy) || !errors.Is(err, secret.ErrSource) || !errors.Is(err, ErrSource) {
		t.Fatalf("0640 file: %v", err)
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")).Assertion(ctx, ""); !errors.Is(err, ErrSource) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := File("").Assertion(ctx, ""); !errors.Is(err, ErrSource) {
		t.Fatalf("no path: %v", err)
	}
}
