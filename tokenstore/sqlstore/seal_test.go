package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func testKeys(t testing.TB, ids ...string) []sealingKey {
	t.Helper()
	var keys []sealingKey
	for _, id := range ids {
		v, err := NewSealingKey(id)
		if err != nil {
			t.Fatal(err)
		}
		k, err := parseKeys(v.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k...)
	}
	return keys
}

// keyText is a Config.Keys holding the "id:base64" items of list.
func keyText(t testing.TB, list string) secret.Value {
	t.Helper()
	v, err := secret.FromReader(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSealer(t testing.TB, keys []sealingKey) *sealer {
	t.Helper()
	s, err := newSealer(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSealBindsRow: a value opens only in its own table, row, version and
// under its own key id (S26: a value moved to another row does not open).
func TestSealBindsRow(t *testing.T) {
	s := mustSealer(t, testKeys(t, "k1"))
	secret := []byte("refresh-token-secret")
	id, sealed := s.seal("t", "row-a", 3, secret)
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := s.open("t", "row-a", 3, id, sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v", got, err)
	}
	for _, tc := range []struct {
		name, table, row string
		version          int64
	}{
		{"other row", "t", "row-b", 3},
		{"other version", "t", "row-a", 2},
		{"other table", "u", "row-a", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.open(tc.table, tc.row, tc.version, id, sealed)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Missing || oe.KeyID != "k1" {
				t.Fatalf("err = %v, want *OpenError{k1}", err)
			}
			if errors.Is(err, tokenstore.ErrCorrupt) || errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatal("an unopenable row must not look corrupt or missing (the engine would log the user out)")
			}
		})
	}
	t.Run("tampered", func(t *testing.T) {
		b := bytes.Clone(sealed)
		b[len(b)-1] ^= 1
		var oe *OpenError
		if _, err := s.open("t", "row-a", 3, id, b); !errors.As(err, &oe) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, b := range [][]byte{nil, {1}, append([]byte{2}, sealed[1:]...)} {
			if _, err := s.open("t", "row-a", 3, id, b); !errors.Is(err, tokenstore.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		}
	})
}

// TestKeyListRotation: the first key seals, every key opens, a removed key
// gives *OpenError{Missing} naming its id.
func TestKeyListRotation(t *testing.T) {
	old := testKeys(t, "old")
	neu := testKeys(t, "new")
	s1 := mustSealer(t, old)
	id, sealed := s1.seal("t", "r", 1, []byte("v"))
	both := mustSealer(t, append(append([]sealingKey{}, neu...), old...))
	if got, err := both.open("t", "r", 1, id, sealed); err != nil || string(got) != "v" {
		t.Fatalf("old value under new list: %q, %v", got, err)
	}
	if id2, _ := both.seal("t", "r", 2, []byte("v")); id2 != "new" {
		t.Fatalf("sealed under %q, want the first key", id2)
	}
	_, err := mustSealer(t, neu).open("t", "r", 1, id, sealed)
	var oe *OpenError
	if !errors.As(err, &oe) || !oe.Missing || oe.KeyID != "old" || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("err = %v, want *OpenError{old, Missing}", err)
	}
}

func TestParseKeys(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, 32)
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.RawURLEncoding.EncodeToString(raw)
	keys, err := parseKeys("a:" + std + ", b:" + url + "\n")
	if err != nil || len(keys) != 2 || keys[0].id != "a" || !bytes.Equal(keys[1].secret, raw) {
		t.Fatalf("parseKeys = %v, %v", keys, err)
	}
	for _, bad := range []string{"", "a", "a:" + std + ",a:" + std, "a:" + base64.StdEncoding.EncodeToString(raw[:16]),
		"a b:" + std, "bad id!:" + std, "a:!!!!"} {
		if _, err := parseKeys(bad); err == nil {
			t.Errorf("parseKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), std) {
			t.Errorf("error shows key material: %v", err)
		}
	}
}

// TestNewSealingKey: a new key is one "id:base64" item of 32 fresh bytes
// under its id, ready for Config.Keys; a bad id is refused.
func TestNewSealingKey(t *testing.T) {
	v, err := NewSealingKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseKeys(v.Reveal())
	if err != nil || len(keys) != 1 || keys[0].id != "k1" || len(keys[0].secret) != keySize {
		t.Fatalf("NewSealingKey gave %d keys, %v", len(keys), err)
	}
	w, _ := NewSealingKey("k1")
	if v.Reveal() == w.Reveal() {
		t.Fatal("two new keys are equal")
	}
	if _, err := NewSealingKey("bad id!"); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("bad id: %v", err)
	}
}

// TestKeyRedacts: neither a Config holding the key list nor a Store
// holding the keys prints or encodes a key.
func TestKeyRedacts(t *testing.T) {
	v, err := NewSealingKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseKeys(v.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	k := keys[0]
	_, secretB64, _ := strings.Cut(v.Reveal(), ":")
	cfg := Config{Keys: v}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "config", cfg)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "config", cfg)
	j, _ := json.Marshal(cfg)
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	outs = append(outs, logBuf.String(), string(j))
	for _, o := range outs {
		if strings.Contains(o, secretB64) || strings.Contains(o, fmt.Sprint(k.secret)) ||
			strings.Contains(o, fmt.Sprintf("%x", k.secret)) || bytes.Contains([]byte(o), k.secret) {
			t.Fatalf("output shows the secret: %s", o)
		}
	}
	st := &Store{table: "t", seal: mustSealer(t, []sealingKey{k})}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		if o := fmt.Sprintf(verb, st); strings.Contains(o, fmt.Sprintf("%x", k.secret)) || strings.Contains(o, "secret") {
			t.Fatalf("store output: %s", o)
		}
	}
}

func TestIdentifiers(t *testing.T) {
	for _, ok := range []string{"t", "oauthsafe_tokens", "a1_b2"} {
		if !validIdent(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "1t", "T", `t"`, "t;drop", "t-x", "t x", "é", strings.Repeat("a", 49), "public.t"} {
		if validIdent(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	v, err := NewSealingKey("k")
	if err != nil {
		t.Fatal(err)
	}
	keys := v
	db := new(sql.DB) // never used: every case is refused before any I/O
	for _, cfg := range []Config{
		{Keys: keys},
		{DB: db},
		{DB: db, Keys: keys, Table: "T"},
		{DB: db, Keys: keys, Schema: "a;b"},
		{DB: db, Keys: keys, LeaseTTL: time.Millisecond},
	} {
		if _, err := New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
