package assertion

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// unsigned makes a compact JWS-shaped token with payload (the signature
// is not checked here).
func unsigned(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestParse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		raw  string
		want error
	}{
		{"valid", unsigned(`{"exp":1800000060}`), nil},
		{"valid with space", "  " + unsigned(`{"exp":1800000060.5}`) + "\n", nil},
		{"expired", unsigned(`{"exp":1799999999}`), ErrExpired},
		{"exp now", unsigned(`{"exp":1800000000}`), ErrExpired},
		{"no exp", unsigned(`{"sub":"x"}`), ErrMalformed},
		{"exp string", unsigned(`{"exp":"1800000060"}`), ErrMalformed},
		{"exp null", unsigned(`{"exp":null}`), ErrMalformed},
		{"exp negative", unsigned(`{"exp":-5}`), ErrMalformed},
		{"exp huge", unsigned(`{"exp":1e300}`), ErrMalformed},
		{"payload array", unsigned(`[1]`), ErrMalformed},
		{"trailing data", unsigned(`{"exp":1800000060}{}`), ErrMalformed},
		{"two parts", "a.b", ErrMalformed},
		{"empty part", "a..c", ErrMalformed},
		{"not base64", "a.!!!.c", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"too long", unsigned(`{"exp":1800000060,"x":"` + strings.Repeat("a", maxSize) + `"}`), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.raw, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if err != nil {
				if !a.IsZero() {
					t.Fatal("an error with an assertion")
				}
				if p := strings.Split(strings.TrimSpace(tc.raw), "."); len(p) > 1 && len(p[1]) > 3 && strings.Contains(err.Error(), p[1]) {
					t.Fatal("the error holds the assertion")
				}
				return
			}
			if a.Reveal() != strings.TrimSpace(tc.raw) || !a.Expiry().Equal(time.Unix(1800000060, 0)) {
				t.Fatalf("Parse = %s exp %v", a.Reveal(), a.Expiry())
			}
		})
	}
}

// FuzzParse: the exp parser never panics, and what it accepts has an exp
// after now, three parts and no more than maxSize bytes.
func FuzzParse(f *testing.F) {
	f.Add(unsigned(`{"exp":1800000060}`))
	f.Add(unsigned(`{"exp":1e9}`))
	f.Add(unsigned(`{"exp":"x"}`))
	f.Add("a.b.c")
	f.Add("..")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := Parse(raw, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrExpired) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !a.Expiry().After(now) || strings.Count(a.Reveal(), ".") != 2 || len(a.Reveal()) > maxSize {
			t.Fatalf("accepted %q (exp %v)", raw, a.Expiry())
		}
	})
}

// TestJWTRedacts: an assertion never shows in fmt, slog or JSON output.
func TestJWTRedacts(t *testing.T) {
	raw := unsigned(`{"exp":4000000000,"sub":"workload-secret-part"}`)
	a, err := Parse(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		out = append(out, fmt.Sprintf(verb, a), fmt.Sprintf(verb, struct{ A JWT }{a}))
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "assertion", a)
	out = append(out, buf.String())
	j, _ := json.Marshal(struct{ A JWT }{a})
	txt, _ := a.MarshalText()
	out = append(out, string(j), string(txt), a.String(), a.GoString())
	payload := strings.Split(raw, ".")[1]
	for _, o := range out {
		if strings.Contains(o, payload) || strings.Contains(o, "workload-secret-part") {
			t.Fatalf("the assertion shows in %q", o)
		}
	}
	if (JWT{}).String() != "Assertion(empty)" {
		t.Fatal(JWT{}.String())
	}
}

func TestJWTAndFuncSources(t *testing.T) {
	ctx := context.Background()
	a, err := Parse(unsigned(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Assertion(ctx, "aud"); err != nil || got != a {
		t.Fatalf("JWT.Assertion = %v", err)
	}
	old, _ := Parse(unsigned(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Second).Unix())), time.Now().Add(-time.Hour))
	old.exp = time.Now().Add(-time.Second)
	if _, err := old.Assertion(ctx, "aud"); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired JWT.Assertion = %v", err)
	}
	if _, err := (JWT{}).Assertion(ctx, "aud"); !errors.Is(err, ErrSource) {
		t.Fatalf("zero JWT.Assertion = %v", err)
	}
	// Func passes the audience, checks the answer and caches nothing.
	calls := 0
	var gotAud string
	f := Func(func(_ context.Context, aud string) (string, error) {
		calls++
		gotAud = aud
		return a.Reveal(), nil
	})
	for range 2 {
		if _, err := f.Assertion(ctx, "https://as.example"); err != nil {
			t.Fatal(err)
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
	f := &File{Path: path, Now: func() time.Time { return clock }}
	a, err := f.Assertion(ctx, "ignored")
	if err != nil || a.Reveal() != first {
		t.Fatalf("first read: %v", err)
	}
	// Unchanged and valid: the same assertion, from memory.
	if a2, err := f.Assertion(ctx, ""); err != nil || a2 != a {
		t.Fatalf("second read: %v", err)
	}
	// Rotated: the new one.
	second := unsigned(fmt.Sprintf(`{"exp":%d,"n":2}`, now.Add(time.Minute).Unix()))
	write(second)
	if a, err = f.Assertion(ctx, ""); err != nil || a.Reveal() != second {
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
	if _, err := (&File{Path: path}).Assertion(ctx, ""); !errors.Is(err, strictnet.ErrPolicy) || !errors.Is(err, secret.ErrSource) || !errors.Is(err, ErrSource) {
		t.Fatalf("0640 file: %v", err)
	}
	if _, err := (&File{Path: filepath.Join(t.TempDir(), "missing")}).Assertion(ctx, ""); !errors.Is(err, ErrSource) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := (&File{}).Assertion(ctx, ""); !errors.Is(err, ErrSource) {
		t.Fatalf("no path: %v", err)
	}
}

// TestSigned: the claims and header S16 asks of a signed assertion.
func TestSigned(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s := Signed{Key: key, KeyID: "k1", Issuer: "svc", Subject: "svc", Now: func() time.Time { return now }}
	a, err := s.Assertion(ctx, "https://as.example")
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(a.Reveal(), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	if c["aud"] != "https://as.example" || c["iss"] != "svc" || c["sub"] != "svc" || c["jti"] == "" ||
		c["exp"].(float64)-c["iat"].(float64) != Lifetime.Seconds() || Lifetime > 60*time.Second ||
		jws.Signatures[0].Header.KeyID != "k1" || jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != "JWT" {
		t.Fatalf("claims %v header %+v", c, jws.Signatures[0].Header)
	}
	if !a.Expiry().Equal(now.Add(Lifetime)) {
		t.Fatalf("exp %v", a.Expiry())
	}
	b, _ := s.Assertion(ctx, "https://as.example")
	if b.Reveal() == a.Reveal() {
		t.Fatal("two assertions are the same (jti reused)")
	}
	s.Type = "client-authentication+jwt"
	c2, _ := s.Assertion(ctx, "x")
	if j, _ := jose.ParseSignedCompact(c2.Reveal(), []jose.SignatureAlgorithm{jose.ES256}); j.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != "client-authentication+jwt" {
		t.Fatal("Type not in typ")
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Signed{Key: weak, Issuer: "a", Subject: "a"}).Assertion(ctx, "x"); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("1024-bit RSA: %v", err)
	}
	if _, err := (Signed{Key: key, Issuer: "a"}).Assertion(ctx, "x"); !errors.Is(err, ErrSource) {
		t.Fatalf("no subject: %v", err)
	}
}
