package tokenstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzDecodeRecord(f *testing.F) {
	good, _ := encodeRecord("rt-abc")
	for _, s := range []string{string(good), `{"v":1,"refresh_token":"x"}`, `{}`, `{"v":1,"refresh_token":"\u0000"}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rt, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := encodeRecord(rt)
		if err != nil {
			t.Fatalf("accepted a token it cannot encode: %v", err)
		}
		if rt2, err := decodeRecord(again); err != nil || rt2 != rt {
			t.Fatal("round trip changed the token")
		}
	})
}

func FuzzParseKeyringEntry(f *testing.F) {
	m := manifest{gen: strings.Repeat("ab", 16), count: 2, size: 2000}
	for _, s := range []string{m.String(), inlinePrefix + "aGVsbG8=", "osk1:c:", "osk1:c:x:1:1:y", "", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		per := (&Keyring{}).rawPerChunk()
		_, m, err := parseEntry(s, per)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m != nil && (m.count < 1 || m.size > MaxValueSize || m.count > MaxValueSize/per+1) {
			t.Fatalf("accepted an out-of-range manifest %+v", m)
		}
	})
}

// FuzzEncryptedFile feeds arbitrary bytes to the file parser and decrypter.
// Inputs keeping the seed's salt and parameters reuse its derived key (so
// the fuzzer is not bound by scrypt); others stop after header parsing,
// which is where bounds on the scrypt parameters are enforced.
func FuzzEncryptedFile(f *testing.F) {
	dir := f.TempDir()
	ef := &EncryptedFile{Path: filepath.Join(dir, "d", "f.enc"), Passphrase: passphrase("fuzz")}
	if err := ef.Put(context.Background(), "k", []byte("value")); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(ef.Path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:headerLen])
	f.Add([]byte("OSEF\x01"))
	sh, _, _, _ := parseFile(seed)
	key, check := ef.key, ef.check
	f.Fuzz(func(t *testing.T, b []byte) {
		h, nonce, ct, err := parseFile(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if string(h.raw[:14]) != string(sh.raw[:14]) || string(h.salt) != string(sh.salt) {
			return
		}
		if string(h.check) != string(check) {
			return // would be ErrWrongPassphrase
		}
		if _, err := openPayload(key, h.raw, nonce, ct); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
