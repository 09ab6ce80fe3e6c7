package engine

import (
	"errors"
	"slices"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"
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
			if !errors.Is(err, tokenstore.ErrCorrupt) && !errors.Is(err, ErrOldRecord) {
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
