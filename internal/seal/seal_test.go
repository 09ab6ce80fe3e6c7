package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func key(t *testing.T) []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// TestSealOpen: the first key seals, every key opens (rotation); other
// additional data, another key, a flipped bit, a short or unversioned
// value do not open; key errors name a position only.
func TestSealOpen(t *testing.T) {
	k1, k2 := key(t), key(t)
	old, err := New([][]byte{k1})
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := New([][]byte{k2, k1})
	v := old.Seal([]byte("secret"), []byte("ad"))
	if len(v) != Overhead+6 || v[0] != 1 {
		t.Fatalf("layout: %d bytes, version %d", len(v), v[0])
	}
	for _, tc := range []struct {
		s  *Sealer
		i  int
		ad string
		ok bool
	}{
		{old, -1, "ad", true}, {old, 0, "ad", true}, {rotated, -1, "ad", true}, {rotated, 1, "ad", true},
		{rotated, 0, "ad", false}, {old, -1, "other", false}, {old, 5, "ad", false},
	} {
		pt, err := tc.s.Open(tc.i, v, []byte(tc.ad))
		if tc.ok != (err == nil) || tc.ok && !bytes.Equal(pt, []byte("secret")) || !tc.ok && !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%d, %q) = %q, %v", tc.i, tc.ad, pt, err)
		}
	}
	bad := bytes.Clone(v)
	bad[len(bad)-1] ^= 1
	for _, b := range [][]byte{bad, v[:Overhead-1], append([]byte{2}, v[1:]...)} {
		if _, err := old.Open(-1, b, []byte("ad")); !errors.Is(err, ErrOpen) {
			t.Errorf("a damaged value opened: %v", err)
		}
	}
	if _, err := New([][]byte{k1, k1[:16]}); err == nil || bytes.Contains([]byte(err.Error()), k1[:4]) {
		t.Errorf("a short key: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("no key accepted")
	}
}
