package sqlstore

import (
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// FuzzOpen feeds the decoder of the sealed column and key id (read from a
// database an attacker may write to) arbitrary bytes: it must return a
// typed error or the sealed plaintext, never panic.
func FuzzOpen(f *testing.F) {
	keys := testKeys(f, "k1", "k0")
	s := mustSealer(f, keys)
	id, sealed := s.seal("t", "row", 1, []byte("record"))
	f.Add(id, sealed, int64(1))
	f.Add("k0", sealed[:20], int64(1))
	f.Add("zz\x00", []byte{1, 2, 3}, int64(-1))
	f.Fuzz(func(t *testing.T, keyID string, b []byte, version int64) {
		pt, err := s.open("t", "row", version, keyID, b)
		var oe *OpenError
		switch {
		case err == nil:
			if string(pt) != "record" {
				t.Fatalf("opened to %q", pt)
			}
		case errors.As(err, &oe), errors.Is(err, tokenstore.ErrCorrupt):
		default:
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzParseKeys: key text (Config.Keys) from the environment or a file never panics and
// never yields a key that newSealer refuses.
func FuzzParseKeys(f *testing.F) {
	v, _ := NewSealingKey("k1")
	f.Add(v.Reveal())
	f.Add("a:,b:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := parseKeys(s)
		if err == nil {
			if _, err := newSealer(keys); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// The engine renews a vault transaction's lease through LeaseTx.
var _ engine.LeaseTx = (*tx)(nil)
