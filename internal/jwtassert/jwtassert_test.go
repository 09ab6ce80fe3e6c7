package jwtassert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
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
		{"no exp", unsigned(`{"sub":"x"}`), errMalformed},
		{"exp string", unsigned(`{"exp":"1800000060"}`), errMalformed},
		{"exp null", unsigned(`{"exp":null}`), errMalformed},
		{"exp negative", unsigned(`{"exp":-5}`), errMalformed},
		{"exp huge", unsigned(`{"exp":1e300}`), errMalformed},
		{"payload array", unsigned(`[1]`), errMalformed},
		{"trailing data", unsigned(`{"exp":1800000060}{}`), errMalformed},
		{"two parts", "a.b", errMalformed},
		{"empty part", "a..c", errMalformed},
		{"not base64", "a.!!!.c", errMalformed},
		{"empty", "", errMalformed},
		{"too long", unsigned(`{"exp":1800000060,"x":"` + strings.Repeat("a", maxSize) + `"}`), errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.raw, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Parse = %v, want %v", err, tc.want)
			}
			if err != nil {
				if a.Reveal() != "" {
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
			if !errors.Is(err, errMalformed) && !errors.Is(err, ErrExpired) {
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
	out = append(out, string(j), fmt.Sprint(a))
	payload := strings.Split(raw, ".")[1]
	for _, o := range out {
		if strings.Contains(o, payload) || strings.Contains(o, "workload-secret-part") {
			t.Fatalf("the assertion shows in %q", o)
		}
	}
	if fmt.Sprint(JWT{}) != "Assertion(empty)" {
		t.Fatal(fmt.Sprint(JWT{}))
	}
}
