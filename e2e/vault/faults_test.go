package vault_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/authserver"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

const envHold = "OAUTHSAFE_VAULT_HOLD"

// TestVaultHoldChild takes the lease on "held", writes "written by the
// killed replica", says HELD and waits to be killed.
func TestVaultHoldChild(t *testing.T) {
	if os.Getenv(envHold) != "1" {
		t.Skip("run by TestVaultReplicaKilledHoldingLock")
	}
	db, err := sql.Open(os.Getenv(envDriver), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	dialect := sqlstore.SQLite
	if os.Getenv(envDriver) == "pgx" {
		dialect = sqlstore.Postgres
	}
	ctx := context.Background()
	st, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Dialect: dialect, Keys: keyList{key1}, LeaseTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.Update(ctx, "held", func(ctx context.Context, tx tokenstore.Tx) error {
		if err := tx.Put(ctx, []byte("written by the killed replica")); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("HELD\n")
		time.Sleep(time.Hour)
		return nil
	})
}

// TestVaultReplicaKilledHoldingLock: a replica SIGKILLed inside Update
// (after a Put) blocks the key only until its lease lapses; then another
// replica proceeds and reads what the killed one wrote (Put was durable).
func TestVaultReplicaKilledHoldingLock(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.store(t, sqlstore.Config{})
			cmd := exec.Command(os.Args[0], "-test.run=^TestVaultHoldChild$")
			cmd.Env = append(os.Environ(), envHold+"=1", envDriver+"="+b.driver, envDSN+"="+b.dsn)
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != "HELD" {
			}
			// While the child lives and renews, the key is held.
			short := b.store(t, sqlstore.Config{LockTimeout: 3 * time.Second})
			err := short.Update(context.Background(), "held", func(context.Context, tokenstore.Tx) error { return nil })
			if !errors.Is(err, tokenstore.ErrLocked) {
				t.Fatalf("Update while a live replica holds the lease = %v", err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			killed := time.Now()
			var got []byte
			err = st.Update(context.Background(), "held", func(ctx context.Context, tx tokenstore.Tx) error {
				got, err = tx.Get(ctx)
				return err
			})
			if err != nil || string(got) != "written by the killed replica" {
				t.Fatalf("after the kill: %q, %v", got, err)
			}
			// Bound: the child's LeaseTTL (2 s) plus polling.
			if d := time.Since(killed); d > 10*time.Second {
				t.Fatalf("took %v after the kill", d)
			}
		})
	}
}

// TestVaultPostgresRestartMidRefresh: the database goes away inside a
// refresh transaction (after the token endpoint answered): Put, Get and new
// Updates fail with an error matching tokenstore.ErrUnavailable, within
// their ctx, never a hang or a deletion; after the restart the record is
// intact and the next Update recovers. A crash (immediate stop) the same.
func TestVaultPostgresRestartMidRefresh(t *testing.T) {
	b := ownPostgres(t)
	for _, immediate := range []bool{false, true} {
		name := "fast"
		if immediate {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := b.store(t, sqlstore.Config{LeaseTTL: time.Second})
			put(t, st, "u", "rt-1")
			err := st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
				if _, err := tx.Get(ctx); err != nil {
					return err
				}
				b.pg.Stop(immediate) // the token endpoint answered "rt-2" now
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				return tx.Put(cctx, []byte("rt-2"))
			})
			if !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Update with the database down = %v", err)
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := st.Get(cctx, "u"); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Get while down = %v", err)
			}
			if err := st.Update(cctx, "u", func(context.Context, tokenstore.Tx) error { return nil }); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Update while down = %v", err)
			}
			if err := b.pg.Restart(); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, "u")
			if err != nil || string(got) != "rt-1" {
				t.Fatalf("after restart: %q, %v (the record must be intact)", got, err)
			}
			put(t, st, "u", "rt-2") // the next call recovers (after the dead lease lapses)
			if got, _ := st.Get(ctx, "u"); string(got) != "rt-2" {
				t.Fatalf("after recovery: %q", got)
			}
		})
	}
}

// TestVaultNoPlaintext: after a real login and refreshes through the vault,
// neither a pg_dump of the database nor the SQLite files (database, WAL)
// contain any byte string of the refresh, access or ID tokens (S26). The
// record here deliberately holds all three, the worst case.
func TestVaultNoPlaintext(t *testing.T) {
	srv, err := authserver.Start(authserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			toks := loginAlice(t, srv)
			c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
			if err != nil {
				t.Fatal(err)
			}
			st := b.store(t, sqlstore.Config{})
			var secrets []string
			rt := toks.RefreshToken()
			secrets = append(secrets, rt, toks.OAuth2Token().AccessToken)
			if id, ok := toks.OAuth2Token().Extra("id_token").(string); ok {
				secrets = append(secrets, id)
			}
			for range 3 {
				err := st.Update(ctx, fleetKey, func(ctx context.Context, tx tokenstore.Tx) error {
					tok, err := c.Refresh(ctx, rt)
					if err != nil {
						return err
					}
					rt = tok.RefreshToken
					secrets = append(secrets, tok.RefreshToken, tok.AccessToken)
					if id, ok := tok.Extra("id_token").(string); ok {
						secrets = append(secrets, id)
					}
					return tx.Put(ctx, []byte(strings.Join(secrets, "\n")))
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			var dump []byte
			if b.pg != nil {
				if dump, err = b.pg.Dump(b.pgDB); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					f, _ := os.ReadFile(b.file + suffix)
					dump = append(dump, f...)
				}
			}
			if !bytes.Contains(dump, []byte("oauthsafe_tokens")) && b.pg != nil {
				t.Fatal("the dump does not hold the table")
			}
			if len(dump) < 1000 {
				t.Fatalf("dump of %d bytes: nothing to search", len(dump))
			}
			for _, s := range secrets {
				if s == "" {
					t.Fatal("empty secret")
				}
				// Any 16-byte window of a token would be a leak.
				for i := 0; i+16 <= len(s); i += 8 {
					if bytes.Contains(dump, []byte(s[i:i+16])) {
						t.Fatalf("the dump contains token bytes at offset %d of a token", i)
					}
				}
			}
		})
	}
}
