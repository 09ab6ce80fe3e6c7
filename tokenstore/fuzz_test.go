package tokenstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func FuzzDecodeRecord(f *testing.F) {
	good, _ := encodeRecord(&Record{RefreshToken: "rt-abc", Subject: "s", Scopes: []string{"a", "b"}, Issuer: "https://i", ClientID: "c", Generation: 3})
	k, _ := newTestKey(f)
	withKey, _ := encodeRecord(&Record{RefreshToken: "rt-abc", Issuer: "https://i", ClientID: "c", DPoPKey: k})
	for _, s := range []string{string(good), string(withKey), `{"v":1,"refresh_token":"x"}`, `{"v":2,"refresh_token":"x","iss":"","client_id":"","gen":0,"dpop":{"k":1}}`,
		`{}`, `{"v":2,"refresh_token":"\u0000"}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrOldRecord) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatalf("accepted a record it cannot encode: %v", err)
		}
		rec2, err := decodeRecord(again)
		if err != nil || rec2.RefreshToken != rec.RefreshToken || rec2.Subject != rec.Subject ||
			!slices.Equal(rec2.Scopes, rec.Scopes) || rec2.Generation != rec.Generation || !rec2.DPoPKey.Equal(rec.DPoPKey) {
			t.Fatal("round trip changed the record")
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
