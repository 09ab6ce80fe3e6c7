package engine

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func TestRecordRoundTripAndRejects(t *testing.T) {
	in := &Record{RefreshToken: "rt-123", Subject: "alice", Scopes: []string{"openid", "email"},
		Issuer: "https://issuer", ClientID: "cli", Generation: 7}
	b, err := encodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"v":2`)) {
		t.Fatalf("record = %s, want version 2", b)
	}
	out, err := decodeRecord(b)
	if err != nil || out.RefreshToken != in.RefreshToken || out.Subject != in.Subject ||
		!slices.Equal(out.Scopes, in.Scopes) || out.Issuer != in.Issuer || out.ClientID != in.ClientID || out.Generation != 7 {
		t.Fatalf("decode = %+v, %v", out, err)
	}
	// A record of the earlier version is never misread: it asks for a new login.
	if _, err := decodeRecord([]byte(`{"v":1,"refresh_token":"x"}`)); !errors.Is(err, ErrOldRecord) || !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("v1 record = %v, want ErrOldRecord matching ErrLoginRequired", err)
	}
	for _, bad := range []string{
		``, `{}`, `{"v":3,"refresh_token":"x"}`, `{"v":2}`, `{"v":2,"refresh_token":""}`,
		`{"v":2,"refresh_token":"x","access_token":"y"}`, `{"v":2,"refresh_token":"a\nb"}`,
		`{"v":2,"refresh_token":"x"} {}`, `[1]`, "\x00", `{"v":"2","refresh_token":"x"}`,
		`{"v":2,"refresh_token":"x","scope":["a b"]}`,
	} {
		if _, err := decodeRecord([]byte(bad)); !errors.Is(err, tokenstore.ErrCorrupt) {
			t.Errorf("decodeRecord(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	if _, err := encodeRecord(&Record{RefreshToken: "bad\x00token"}); err == nil || strings.Contains(err.Error(), "bad\x00token") {
		t.Fatalf("encodeRecord of a control character = %v", err)
	}
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	errRevoke := errors.New("server said no")
	tests := []struct {
		name        string
		stored      bool
		raw         string // a stored value that is not a current record
		revoke      error
		nilRevoke   bool
		wantCalled  bool
		wantErrIs   []error
		wantDeleted bool
	}{
		{name: "revoked and deleted", stored: true, wantCalled: true, wantDeleted: true},
		{name: "revocation fails, still deleted", stored: true, revoke: errRevoke, wantCalled: true,
			wantErrIs: []error{tokenstore.ErrRevocationFailed, errRevoke}, wantDeleted: true},
		{name: "no revocation endpoint", stored: true, nilRevoke: true, wantDeleted: true},
		{name: "nothing stored", stored: false, wantDeleted: true},
		{name: "unreadable record deleted without revocation", raw: `{"v":2,"refresh_token":"rt-logout\u0000"}`, wantDeleted: true},
		{name: "record of an earlier version deleted without revocation", raw: `{"v":1,"refresh_token":"rt-logout"}`, wantDeleted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st tokenstore.Memory
			if tt.stored {
				saveRT(t, &st, "k", "rt-logout")
			}
			if tt.raw != "" {
				if err := st.Update(ctx, "k", func(ctx context.Context, tx tokenstore.Tx) error {
					return tx.Put(ctx, []byte(tt.raw))
				}); err != nil {
					t.Fatal(err)
				}
			}
			var called []string
			cfg := tokenstore.LogoutConfig{Store: &st, Key: "k"}
			if !tt.nilRevoke {
				cfg.Revoke = func(ctx context.Context, rt string) error {
					called = append(called, rt)
					return tt.revoke
				}
			}
			err := tokenstore.Logout(ctx, cfg)
			if len(tt.wantErrIs) == 0 && err != nil {
				t.Fatalf("Logout = %v", err)
			}
			for _, want := range tt.wantErrIs {
				if !errors.Is(err, want) {
					t.Fatalf("Logout = %v, want errors.Is %v", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), "rt-logout") {
				t.Fatal("error string contains the refresh token")
			}
			if tt.wantCalled != (len(called) == 1) || (tt.wantCalled && called[0] != "rt-logout") {
				t.Fatalf("revoke calls = %q", called)
			}
			if _, err := st.Get(ctx, "k"); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatalf("after Logout Get = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestSaveLoadRecord(t *testing.T) {
	ctx := context.Background()
	var st tokenstore.Memory
	if _, err := LoadRecord(ctx, &st, "k"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatal(err)
	}
	saveRT(t, &st, "k", "rt")
	if rec, err := LoadRecord(ctx, &st, "k"); err != nil || rec.RefreshToken != "rt" || rec.Subject != "alice" {
		t.Fatalf("LoadRecord = %v, %v", rec, err)
	}
	putKey(&st, ctx, "k", []byte("garbage"))
	if _, err := LoadRecord(ctx, &st, "k"); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Fatalf("Load garbage = %v", err)
	}
	if err := SaveRecord(ctx, nil, "k", &Record{RefreshToken: "x"}); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("SaveRecord(nil store) = %v", err)
	}
}

// putKey and delKey write through a one-step transaction.
func putKey(st tokenstore.Store, ctx context.Context, key string, v []byte) error {
	return st.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, v) })
}

// newTestFile is an EncryptedFile in a fresh directory.
func newTestFile(t *testing.T) *tokenstore.EncryptedFile {
	t.Helper()
	return &tokenstore.EncryptedFile{Path: filepath.Join(t.TempDir(), "store", "tokens.enc"), Passphrase: passphrase("correct horse")}
}

func passphrase(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}
