package vault_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"golang.org/x/oauth2"
)

func put(t *testing.T, s *sqlstore.Store, key, value string) {
	t.Helper()
	err := s.Update(context.Background(), key, func(ctx context.Context, tx tokenstore.Tx) error {
		return tx.Put(ctx, []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVaultRowSwapRefused: a sealed value copied into another user's row
// (by someone with write access to the database, without the key) does not
// open there, gives an *OpenError naming the key, and is neither used nor
// deleted (S26).
func TestVaultRowSwapRefused(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			s := b.store(t, sqlstore.Config{DB: db})
			put(t, s, "alice", "alice-record")
			put(t, s, "mallory", "mallory-record")
			put(t, s, "mallory", "mallory-record-2") // versions differ too: copy them as well
			// Copy alice's sealed value, key id and version over mallory's row.
			_, err := db.Exec(`UPDATE oauthsafe_tokens SET sealed = (SELECT sealed FROM oauthsafe_tokens WHERE key_hash <> x.key_hash),
				version = (SELECT version FROM oauthsafe_tokens WHERE key_hash <> x.key_hash)
				FROM (SELECT key_hash FROM oauthsafe_tokens) AS x WHERE oauthsafe_tokens.key_hash = x.key_hash
				AND oauthsafe_tokens.version = (SELECT max(version) FROM oauthsafe_tokens)`) // mallory's: written last
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Get(ctx, "mallory")
			var oe *sqlstore.OpenError
			if !errors.As(err, &oe) || oe.Missing || oe.KeyID != "k1" {
				t.Fatalf("Get of the swapped row = %v, want *OpenError{k1}", err)
			}
			// Inside a transaction too; fn decides, the row is not deleted.
			err = s.Update(ctx, "mallory", func(ctx context.Context, tx tokenstore.Tx) error {
				_, err := tx.Get(ctx)
				return err
			})
			if !errors.As(err, &oe) {
				t.Fatalf("tx.Get = %v", err)
			}
			var n int
			db.QueryRow(`SELECT count(*) FROM oauthsafe_tokens WHERE sealed IS NOT NULL`).Scan(&n)
			if n != 2 {
				t.Fatalf("%d sealed rows left, want 2 (nothing deleted)", n)
			}
			if got, err := s.Get(ctx, "alice"); err != nil || string(got) != "alice-record" {
				t.Fatalf("alice = %q, %v", got, err)
			}
		})
	}
}

// TestVaultKeyRotation: rows sealed under an old key open under a list that
// puts a new key first; Reseal moves them to the new key; a list without
// the key that sealed a row gives *OpenError{Missing} naming that key.
func TestVaultKeyRotation(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			old := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key1)})
			for _, u := range []string{"u1", "u2", "u3"} {
				put(t, old, u, "record-"+u)
			}
			rotated := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key2, key1)})
			for _, u := range []string{"u1", "u2", "u3"} {
				if got, err := rotated.Get(ctx, u); err != nil || string(got) != "record-"+u {
					t.Fatalf("old row under the new list: %q, %v", got, err)
				}
			}
			put(t, rotated, "u4", "record-u4") // sealed under k2 at once
			n, err := rotated.Reseal(ctx)
			if err != nil || n != 3 {
				t.Fatalf("Reseal = %d, %v; want 3", n, err)
			}
			var oldRows int
			db.QueryRow(`SELECT count(*) FROM oauthsafe_tokens WHERE key_id <> 'k2' AND sealed IS NOT NULL`).Scan(&oldRows)
			if oldRows != 0 {
				t.Fatalf("%d rows still under the old key", oldRows)
			}
			if n, err := rotated.Reseal(ctx); n != 0 || err != nil {
				t.Fatalf("second Reseal = %d, %v", n, err)
			}
			onlyNew := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key2)})
			for _, u := range []string{"u1", "u2", "u3", "u4"} {
				if got, err := onlyNew.Get(ctx, u); err != nil || string(got) != "record-"+u {
					t.Fatalf("after reseal, without the old key: %q, %v", got, err)
				}
			}
			// Removed too early: a key3-only list cannot open k2 rows.
			key3 := fixedKey("k3", 201)
			wrong := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key3)})
			_, err = wrong.Get(ctx, "u1")
			var oe *sqlstore.OpenError
			if !errors.As(err, &oe) || !oe.Missing || oe.KeyID != "k2" {
				t.Fatalf("Get under a list without k2 = %v", err)
			}
			if n, err := wrong.Reseal(ctx); n != 0 || !errors.As(err, &oe) || oe.KeyID != "k2" {
				t.Fatalf("Reseal without the key = %d, %v", n, err)
			}
			if got, err := onlyNew.Get(ctx, "u1"); err != nil || string(got) != "record-u1" {
				t.Fatalf("a failed Reseal changed the row: %q, %v", got, err)
			}
		})
	}
}

// TestVaultUnopenableRecordNotALogout: through the engine, a record that
// does not open (its key removed from the list, or moved from another
// row) is a permanent failure carrying the *OpenError with the key id (a
// key to restore, not something to wait for: never a *TemporaryError, and
// no "temporary" in its message): no token request, no deletion, and
// Logout refuses rather than delete what it cannot read. With the key
// back, the user refreshes.
func TestVaultUnopenableRecordNotALogout(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			good := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key1)})
			if err := engine.SaveRecord(ctx, good, "u", &engine.Record{RefreshToken: "rt-1", Subject: "s",
				Issuer: "https://issuer.example", ClientID: "c"}); err != nil {
				t.Fatal(err)
			}
			fetches := 0
			fetch := func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
				fetches++
				return &engine.Result{Token: &oauth2.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}}, nil
			}
			wrong := b.store(t, sqlstore.Config{DB: db, Keys: keyList(key2)})
			src, err := engine.NewSource(engine.SourceConfig{Store: wrong, Key: "u", Fetch: fetch}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Token()
			var te *tokenstore.TemporaryError
			var oe *sqlstore.OpenError
			if errors.As(err, &te) || strings.Contains(err.Error(), "temporary") || !errors.As(err, &oe) || !oe.Missing || oe.KeyID != "k1" || errors.Is(err, tokenstore.ErrLoginRequired) {
				t.Fatalf("Token on an unopenable record = %v, want a permanent *OpenError{k1, Missing}", err)
			}
			if err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: wrong, Key: "u"}); !errors.As(err, &oe) {
				t.Fatalf("Logout of an unopenable record = %v, want the *OpenError", err)
			}
			if fetches != 0 {
				t.Fatalf("%d token requests with an unopenable record", fetches)
			}
			src, _ = engine.NewSource(engine.SourceConfig{Store: good, Key: "u", Fetch: fetch}, nil)
			if _, err := src.Token(); err != nil || fetches != 1 {
				t.Fatalf("with the key back: %v (%d requests)", err, fetches)
			}
		})
	}
}

// TestVaultRefusesRollback: an older (version, key id, sealed) row written
// back over a newer one (a restored backup, someone with write access to
// the table) opens under the key, since it was sealed for that version,
// but a Store that has seen the newer version refuses it with
// sqlstore.ErrRollback: a read, and a refresh, which makes no token
// request and is not a logout (the record stays). A fresh process cannot
// tell (the documented limit). A new login over it, and a logout followed
// by a login written by another process, are read back fine: versions
// only grow, also across the deletion of the row. SQLite and
// PostgreSQL.
func TestVaultRefusesRollback(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			db := b.open(t)
			st := b.store(t, sqlstore.Config{DB: db})
			save := func(rt string) {
				t.Helper()
				if err := engine.SaveRecord(ctx, st, "u", &engine.Record{RefreshToken: rt, Subject: "s",
					Issuer: "https://issuer.example", ClientID: "c"}); err != nil {
					t.Fatal(err)
				}
			}
			load := func(s *sqlstore.Store) (string, error) {
				rec, err := engine.LoadRecord(ctx, s, "u")
				if err != nil {
					return "", err
				}
				return rec.RefreshToken, nil
			}
			save("rt-old")
			var hash, keyID string
			var version int64
			var sealed []byte
			if err := db.QueryRowContext(ctx, `SELECT key_hash, version, key_id, sealed FROM oauthsafe_tokens`).Scan(&hash, &version, &keyID, &sealed); err != nil {
				t.Fatal(err)
			}
			save("rt-new")
			if got, err := load(st); err != nil || got != "rt-new" {
				t.Fatalf("before the rollback: %q, %v", got, err)
			}
			q := `UPDATE oauthsafe_tokens SET version = $1, key_id = $2, sealed = $3 WHERE key_hash = $4`
			if b.pg == nil {
				q = strings.NewReplacer("$", "?").Replace(q)
			}
			if _, err := db.ExecContext(ctx, q, version, keyID, sealed, hash); err != nil {
				t.Fatal(err)
			}
			if _, err := load(st); !errors.Is(err, sqlstore.ErrRollback) {
				t.Fatalf("reading the rolled-back row = %v, want ErrRollback", err)
			}
			fetches := 0
			src, err := engine.NewSource(engine.SourceConfig{Store: st, Key: "u",
				Fetch: func(context.Context, *engine.Refresh) (*engine.Result, error) {
					fetches++
					return &engine.Result{Token: &oauth2.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}}, nil
				}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Token()
			var te *tokenstore.TemporaryError
			if !errors.Is(err, sqlstore.ErrRollback) || errors.Is(err, tokenstore.ErrLoginRequired) || errors.As(err, &te) || fetches != 0 {
				t.Fatalf("refresh on the rolled-back row = %v (%d requests), want a permanent ErrRollback and no request", err, fetches)
			}
			fresh := b.store(t, sqlstore.Config{})
			if got, err := load(fresh); err != nil || got != "rt-old" {
				t.Fatalf("a process that never saw the newer row: %q, %v (it cannot tell)", got, err)
			}
			save("rt-relogin")
			if got, err := load(st); err != nil || got != "rt-relogin" {
				t.Fatalf("a new login over the rolled-back row: %q, %v", got, err)
			}
			if err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: st, Key: "u"}); err != nil {
				t.Fatal(err)
			}
			// The new login is written by another process: this one must
			// still read it (the new row's versions are above the old).
			if err := engine.SaveRecord(ctx, fresh, "u", &engine.Record{RefreshToken: "rt-after-logout", Subject: "s",
				Issuer: "https://issuer.example", ClientID: "c"}); err != nil {
				t.Fatal(err)
			}
			if got, err := load(st); err != nil || got != "rt-after-logout" {
				t.Fatalf("a login by another process after a logout: %q, %v", got, err)
			}
		})
	}
}
