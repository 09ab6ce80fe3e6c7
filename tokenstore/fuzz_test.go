package tokenstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzEncryptedFile feeds arbitrary bytes to the file parser and decrypter.
// Inputs keeping the seed's salt and parameters reuse its derived key (so
// the fuzzer is not bound by scrypt); others stop after header parsing,
// which is where bounds on the scrypt parameters are enforced.
func FuzzEncryptedFile(f *testing.F) {
	dir := f.TempDir()
	ef := &EncryptedFile{Path: filepath.Join(dir, "d", "f.enc"), Passphrase: passphrase("fuzz")}
	if err := putKey(ef, context.Background(), "k", []byte("value")); err != nil {
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
