package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/secret"
)

// TestValueNeverPrints: a Value, alone, by pointer or inside a struct,
// shows no byte of its value under any fmt verb, slog handler or JSON.
func TestValueNeverPrints(t *testing.T) {
	const v = "hunter2-very-secret"
	s, err := secret.FromReader(strings.NewReader("  " + v + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Reveal() != v || s.IsZero() {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
	type cfg struct {
		ID     string
		Secret secret.Value
	}
	for name, x := range map[string]any{"value": s, "pointer": &s, "struct": cfg{"id", s}, "struct pointer": &cfg{"id", s}} {
		var out bytes.Buffer
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			fmt.Fprintf(&out, verb+"\n", x)
		}
		j, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(j)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("m", "x", x)
		slog.New(slog.NewTextHandler(&out, nil)).Info("m", "x", x)
		if strings.Contains(out.String(), v) || strings.Contains(out.String(), fmt.Sprintf("%x", v)) {
			t.Errorf("%s: printed output holds the secret:\n%s", name, out.String())
		}
	}
}

func TestValueZero(t *testing.T) {
	var z secret.Value
	if !z.IsZero() || z.Reveal() != "" || fmt.Sprint(z) != "Secret(empty)" {
		t.Fatalf("zero Value: %v", z)
	}
}

func TestFromEnvAndReaderRefusals(t *testing.T) {
	t.Setenv("OAUTHSAFE_TEST_EMPTY", "   ")
	for name, load := range map[string]func() (secret.Value, error){
		"unset":      func() (secret.Value, error) { return secret.FromEnv("OAUTHSAFE_TEST_UNSET_VARIABLE") },
		"blank":      func() (secret.Value, error) { return secret.FromEnv("OAUTHSAFE_TEST_EMPTY") },
		"empty read": func() (secret.Value, error) { return secret.FromReader(strings.NewReader(" \n")) },
		"too large": func() (secret.Value, error) {
			return secret.FromReader(strings.NewReader(strings.Repeat("x", 64<<10+1)))
		},
	} {
		if s, err := load(); !errors.Is(err, secret.ErrSource) || !s.IsZero() {
			t.Errorf("%s: %v, want ErrSource and a zero Value", name, err)
		}
	}
}
